"""What dnabox supports underneath the fleet: Kubernetes minors, Debian releases, CPU
architectures, containerd series. One table each, read by validation, the planner, the
layers, the runbooks and the tests, so "supported" means one thing everywhere.

Facts behind the numbers (late 2026): upstream Kubernetes supports its three newest minors;
Kubernetes 1.35 is the last minor that runs on containerd 1.x (1.6 reached end of life in
August 2025, 1.7 in September 2026); Debian 12 ships containerd 1.6.20, Debian 13 1.7.24.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# --- Kubernetes ---------------------------------------------------------------------------

# Minors upstream supports now; every object the stacks declare is schema-checked on each.
KUBERNETES_MINORS: tuple[str, ...] = ("1.35", "1.36", "1.37")
# The default is the newest minor that still runs on Debian's own containerd (1.x): a fleet
# that declares nothing about containerd is valid out of the box. Newer minors need the
# containerd 2 static release (`containerd.version`), which validation asks for.
DEFAULT_KUBERNETES = "1.35"
# Version skew policy: a kubelet is never newer than the API server and at most this many
# minors older (three since Kubernetes 1.28).
KUBELET_MAX_SKEW = 3
# The newest Kubernetes minor whose kubelet still supports a containerd 1.x runtime.
LAST_KUBERNETES_ON_CONTAINERD_1 = "1.35"


def minor_number(version: str) -> int:
    """``"1.36"`` -> 36 (the model's pattern guarantees the ``1.NN`` shape)."""
    return int(version.split(".")[1])


# --- Debian releases ----------------------------------------------------------------------

DebianRelease = Literal["bookworm", "trixie"]


@dataclass(frozen=True)
class ReleaseSpec:
    codename: DebianRelease
    version: str  # VERSION_ID in /etc/os-release
    # The containerd version the release's own package installs.
    containerd: str
    # Packages that differ per release, by role (added to the role's common list).
    extra_packages: dict[str, tuple[str, ...]]


RELEASES: dict[str, ReleaseSpec] = {
    "bookworm": ReleaseSpec("bookworm", "12", "1.6.20", {}),
    "trixie": ReleaseSpec("trixie", "13", "1.7.24", {}),
}
DEFAULT_RELEASE: DebianRelease = "bookworm"

# --- CPU architectures --------------------------------------------------------------------

Architecture = Literal["amd64", "arm64"]
# Debian's architecture name -> what `uname -m` prints on it.
ARCHITECTURES: dict[str, str] = {"amd64": "x86_64", "arm64": "aarch64"}
DEFAULT_ARCHITECTURE: Architecture = "amd64"


def architecture_of(machine: str) -> str:
    """`uname -m` (or `dpkg --print-architecture`) output -> Debian architecture name;
    '' when unknown."""
    for debian, uname in ARCHITECTURES.items():
        if machine in {debian, uname}:
            return debian
    return ""


# --- containerd ---------------------------------------------------------------------------


def containerd_major(version: str) -> int:
    """``"1.7.24"`` / ``"1.6.20~ds1"`` / ``"v2.1.4"`` -> 1 / 1 / 2; 0 when unreadable."""
    head = version.strip().lstrip("v").split(".")[0]
    return int(head) if head.isdigit() else 0
