"""The Debian root filesystems boxes start from: one per release, debootstrapped once,
then cached.

Boxes never write to one (each box has an overlay on top), so one copy serves every box
of that release in every fleet. It is built in a `.partial` directory and renamed when
complete: a build interrupted at any point is redone, never used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dnabox.lab.files import remove_tree
from dnabox.lab.paths import LabPaths
from dnabox.lab.run import run

MIRROR = "http://deb.debian.org/debian"
# What every box needs before any role runs: sshd to be reached, python3 for Ansible,
# iproute2 for the lab's own network setup checks, CA certificates for TLS.
INCLUDE = ("openssh-server", "python3", "iproute2", "ca-certificates")


def debootstrap_argv(target: Path, suite: str) -> list[str]:
    # Inside its own mount namespace: whatever debootstrap mounts (proc, sys) cannot
    # outlive it, even if it is killed.
    return ["unshare", "--mount", "--fork", "debootstrap", "--variant=minbase",
            f"--include={','.join(INCLUDE)}", suite, str(target), MIRROR]


def ensure_rootfs(paths: LabPaths, suite: str, log: Callable[[str], None]) -> Path:
    target = paths.rootfs(suite)
    if target.is_dir():
        return target
    partial = target.with_name(target.name + ".partial")
    remove_tree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log(f"building the Debian {suite} root filesystem in {target} (once; about a minute)")
    run(debootstrap_argv(partial, suite))
    # openssh-server made host keys while installing; every box makes its own instead.
    for key in (partial / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    partial.rename(target)
    return target
