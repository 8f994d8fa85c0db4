"""What the host needs before the lab creates anything: checked first, so a missing piece
is a clear error with the command that fixes it, and nothing is left half-built.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from dnabox.errors import EnvironmentProblem

# host command -> Debian package that provides it
RUN_TOOLS = {
    "ip": "iproute2", "unshare": "util-linux", "mount": "mount", "umount": "mount",
    "chroot": "coreutils", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
}
BUILD_TOOLS = {"debootstrap": "debootstrap", "dpkg-scanpackages": "dpkg-dev"}


def check_host(*, building: bool, euid: int | None = None,
               which: Callable[[str], str | None] = shutil.which,
               filesystems: str | None = None, tun: Path = Path("/dev/net/tun"),
               cgroup_hierarchies: int | None = None) -> None:
    """Raise EnvironmentProblem naming the fix; ``building``: caches must be built too."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise EnvironmentProblem(
            "the lab needs root: it creates network namespaces, mounts and cgroups",
            hint="run it as root, e.g. `sudo dnabox lab up`",
        )
    tools = {**RUN_TOOLS, **(BUILD_TOOLS if building else {})}
    missing = sorted({package for tool, package in tools.items() if which(tool) is None})
    if missing:
        absent = ", ".join(t for t, p in tools.items() if p in missing)
        raise EnvironmentProblem(f"the lab needs host commands that are missing: {absent}",
                                 hint=f"apt-get install -y {' '.join(missing)}")
    if filesystems is None:
        filesystems = Path("/proc/filesystems").read_text()
    if "overlay" not in filesystems.split():
        raise EnvironmentProblem("the kernel has no overlay filesystem (boxes need one each)",
                                 hint="modprobe overlay")
    if not tun.exists():
        raise EnvironmentProblem(f"{tun} is missing (Open vSwitch in a box needs tap devices)",
                                 hint="modprobe tun")
    if cgroup_hierarchies is None:
        from dnabox.lab.cgroups import host_hierarchies
        cgroup_hierarchies = len(host_hierarchies())
    if cgroup_hierarchies == 0:
        raise EnvironmentProblem("no cgroup filesystem is mounted under /sys/fs/cgroup",
                                 hint="mount -t cgroup2 none /sys/fs/cgroup")
