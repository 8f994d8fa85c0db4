"""Where the lab keeps its state (per fleet) and its caches (shared by every fleet)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_ROOT = Path("/var/lib/dnabox/lab")
CACHE_ROOT = Path("/var/cache/dnabox")


@dataclass(frozen=True)
class LabPaths:
    """State lives under ``state_root/<fleet>``; ``lab down`` removes that directory.

    Caches (the Debian root filesystem, the local package repository) survive ``lab down``:
    they cost minutes to build and are identical for every fleet.
    """

    state_root: Path = STATE_ROOT
    cache_root: Path = CACHE_ROOT

    def fleet_dir(self, fleet: str) -> Path:
        return self.state_root / fleet

    def state_file(self, fleet: str) -> Path:
        return self.fleet_dir(fleet) / "state.json"

    def private_key(self, fleet: str) -> Path:
        return self.fleet_dir(fleet) / "id_ed25519"

    def known_hosts(self, fleet: str) -> Path:
        return self.fleet_dir(fleet) / "known_hosts"

    def box_dir(self, fleet: str, box: str) -> Path:
        return self.fleet_dir(fleet) / "boxes" / box

    def router_dir(self, fleet: str) -> Path:
        return self.fleet_dir(fleet) / "router"

    def rootfs(self, suite: str) -> Path:
        return self.cache_root / "rootfs" / suite

    def repo_root(self) -> Path:
        return self.cache_root / "apt-repo"
