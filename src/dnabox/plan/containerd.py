"""Which containerd a box runs: its Debian release's package, or the containerd 2 static
release the fleet asks for (``containerd.version``), an artifact like kubeadm.

The box's config format follows the containerd actually installed (the on-box merge program
asks the binary); this module says what the plan expects, which the artifacts, the
containerd service's drop-in and `dnabox plan` show.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnabox.inventory.model import Box, Fleet
from dnabox.inventory.platforms import RELEASES, containerd_major

STATIC_ARTIFACT = "containerd-static"
DEBIAN_BINARY = "/usr/bin/containerd"
STATIC_ROOT = "/opt/dnabox"


@dataclass(frozen=True)
class ContainerdPlan:
    version: str
    source: str  # "debian" | "static"
    bin_dir: str

    @property
    def binary(self) -> str:
        return f"{self.bin_dir}/containerd"

    @property
    def config_version(self) -> int:
        """The containerd config format the version reads: 2 for 1.x, 3 for 2.x."""
        return 3 if containerd_major(self.version) >= 2 else 2


def containerd_for(fleet: Fleet, box: Box) -> ContainerdPlan:
    if fleet.containerd.version is not None:
        version = fleet.containerd.version
        return ContainerdPlan(version, "static", f"{STATIC_ROOT}/containerd-{version}/bin")
    return ContainerdPlan(RELEASES[fleet.os_of(box)].containerd, "debian", "/usr/bin")
