"""What a box is made of: its start script (mounts, hostname, sshd) and its own files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dnabox.inventory import load_fleet
from dnabox.lab import boxes
from dnabox.lab.boxes import BoxDirs
from dnabox.lab.cgroups import box_hierarchies, parse_mountinfo
from dnabox.lab.layout import BoxLayout, plan_lab
from dnabox.lab.paths import LabPaths

LAB = Path(__file__).resolve().parents[3] / "inventory" / "lab.yaml"
HYBRID = """\
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
"""


def core() -> BoxLayout:
    return plan_lab(load_fleet(LAB), LabPaths()).box("core-1")


def test_start_script_mounts_the_box_then_execs_sshd(tmp_path: Path) -> None:
    dirs = BoxDirs(tmp_path / "core-1")
    script = boxes.start_script(core(), dirs, Path("/cache/rootfs"),
                                box_hierarchies(parse_mountinfo(HYBRID)))
    lines = script.splitlines()
    root = dirs.root
    assert (f"mount -t overlay overlay -o lowerdir=/cache/rootfs,upperdir={dirs.upper},"
            f"workdir={dirs.work} {root}") in lines
    for needed in (f"mount -t proc proc {root}/proc",
                   f"touch {root}/dev/net/tun && mount --bind /dev/net/tun {root}/dev/net/tun",
                   f"mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts {root}/dev/pts",
                   f"mkdir {root}/sys/fs/cgroup/memory && mount -t cgroup -o memory cgroup "
                   f"{root}/sys/fs/cgroup/memory",
                   "echo core-1 > /proc/sys/kernel/hostname"):
        assert needed in lines
    assert "unified" not in script
    assert lines[-1] == f"exec chroot {root} /bin/sh -c '/usr/sbin/sshd -D -e & wait $!'"


def test_launch_enters_the_netns_and_fresh_namespaces() -> None:
    argv = boxes.launch_argv(core(), Path("/s/start.sh"))
    assert argv[:4] == ["ip", "netns", "exec", "dnabox.lab.core-1"]
    for flag in ("--mount", "--pid", "--uts", "--cgroup", "--fork", "--kill-child"):
        assert flag in argv


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are device nodes: root only")
def test_prepare_writes_the_boxs_own_files(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "root").mkdir(parents=True)
    os.chmod(rootfs / "root", 0o700)
    (rootfs / "etc/ssh").mkdir(parents=True)
    (rootfs / "etc/ssh/ssh_host_rsa_key").write_text("shared secret")
    dirs = BoxDirs(tmp_path / "core-1")
    public = boxes.prepare(core(), dirs, rootfs, "ssh-ed25519 AAAA lab", "http://r:80/")
    upper = dirs.upper
    assert public.startswith("ssh-ed25519 ") and public.endswith("root@core-1")
    assert (upper / "etc/hostname").read_text() == "core-1\n"
    assert (upper / "etc/apt/sources.list").read_text() == \
        "deb [trusted=yes] http://r:80/ ./\n"
    assert "HostKey /etc/ssh/ssh_host_ed25519_key" in \
        (upper / "etc/ssh/sshd_config.d/dnabox-lab.conf").read_text()
    assert stat.S_IMODE((upper / "root").stat().st_mode) == 0o700  # as in the rootfs
    assert stat.S_IMODE((upper / "root/.ssh/authorized_keys").stat().st_mode) == 0o600
    whiteout = (upper / "etc/ssh/ssh_host_rsa_key").stat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    # a restart keeps the host key, like a reboot
    assert boxes.prepare(core(), dirs, rootfs, "ssh-ed25519 AAAA lab", "http://r:80/") == public
