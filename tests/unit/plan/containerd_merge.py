"""Run a box's real containerd files: render dnabox.toml and dnabox-containerd-config for the
box exactly as the planner does, then run the program on a config.toml in a temp dir."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnabox.inventory import Fleet
from dnabox.locations import Locations
from dnabox.plan.desired import plan_fleet

ROOT = Path(__file__).resolve().parents[3]
PROJECT = Locations.discover(ROOT)
INTENT = "/etc/dnabox/containerd/dnabox.toml"
PROGRAM = "/usr/local/sbin/dnabox-containerd-config"
V2_CRI = "io.containerd.grpc.v1.cri"
V3_RUNTIME = "io.containerd.cri.v1.runtime"
V3_IMAGES = "io.containerd.cri.v1.images"


@dataclass
class BoxContainerd:
    """One box's containerd files in ``where``; ``merge`` runs the program on them."""

    where: Path

    @property
    def config(self) -> Path:
        return self.where / "config.toml"

    @property
    def owned(self) -> Path:
        return self.where / "owned.json"

    def merge(self, version: str, *, check: bool = False) -> str:
        argv = [sys.executable, str(self.where / "program.py"), "--intent",
                str(self.where / "dnabox.toml"), "--config", str(self.config), "--owned",
                str(self.owned), "--containerd-version", version]
        done = subprocess.run([*argv, *(["--check"] if check else [])], capture_output=True,
                              text=True, check=True)
        return done.stdout

    def parsed(self) -> dict[str, Any]:
        return tomllib.loads(self.config.read_text())


def box_containerd(fleet: Fleet, box: str, where: Path) -> BoxContainerd:
    files = {f.dest: f for f in plan_fleet(fleet, PROJECT)[box].files}
    where.mkdir(parents=True, exist_ok=True)
    (where / "dnabox.toml").write_text(files[INTENT].content)
    (where / "program.py").write_text(files[PROGRAM].content)
    return BoxContainerd(where)


def runtimes_of(config: dict[str, Any]) -> dict[str, Any]:
    """The runtime tables of a merged config, wherever its version keeps them."""
    plugin = V3_RUNTIME if config["version"] == 3 else V2_CRI
    tables: dict[str, Any] = config["plugins"][plugin]["containerd"]["runtimes"]
    return tables
