"""Which cgroup hierarchies a box gets, read from the host's mount table."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnabox.lab.cgroups import (
    CGROUP_FS,
    box_hierarchies,
    cgroup_paths,
    kill_all,
    parse_mountinfo,
    pids_in,
    set_frozen,
)

HYBRID = """\
30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset,clone_children
36 24 0:5 / /proc rw - proc proc rw
"""
PURE_V2 = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_hybrid_host_hierarchies() -> None:
    found = parse_mountinfo(HYBRID)
    assert [(str(h.mountpoint), h.version) for h in found] == [
        ("/sys/fs/cgroup/unified", 2), ("/sys/fs/cgroup/systemd", 1),
        ("/sys/fs/cgroup/memory", 1), ("/sys/fs/cgroup/cpu,cpuacct", 1),
        ("/sys/fs/cgroup/cpuset", 1)]
    options = {h.mountpoint.name: h.mount_options for h in found if h.version == 1}
    assert options == {"systemd": "none,name=systemd", "memory": "memory",
                       "cpu,cpuacct": "cpu,cpuacct", "cpuset": "cpuset,clone_children"}


def test_a_box_on_a_hybrid_host_mounts_v1_only() -> None:
    # crun refuses a hybrid layout; runc and containerd are happy with v1 alone.
    mounted = box_hierarchies(parse_mountinfo(HYBRID))
    assert all(h.version == 1 for h in mounted) and len(mounted) == 4


def test_a_box_on_a_v2_host_mounts_v2() -> None:
    mounted = box_hierarchies(parse_mountinfo(PURE_V2))
    assert [(str(h.mountpoint), h.version) for h in mounted] == [("/sys/fs/cgroup", 2)]


def test_each_box_has_its_own_cgroup_in_every_hierarchy() -> None:
    paths = cgroup_paths(parse_mountinfo(HYBRID), "lab", "core-1")
    assert Path("/sys/fs/cgroup/memory/dnabox/lab/core-1") in paths
    assert Path("/sys/fs/cgroup/unified/dnabox/lab/core-1") in paths
    assert len(paths) == 5


@pytest.fixture
def freezer_cgroup() -> Iterator[Path]:
    """A real freezer cgroup of this test's own, removed afterwards."""
    root = CGROUP_FS / "freezer"
    if os.geteuid() != 0 or not root.is_dir():
        pytest.skip("needs root and the cgroup v1 freezer")
    path = root / f"dnabox-test-{os.getpid()}"
    path.mkdir()
    try:
        yield path
    finally:
        kill_all([path])
        path.rmdir()


def _sleeper_in(path: Path) -> int:
    child = subprocess.Popen(["sh", "-c", f"echo $$ > {path}/cgroup.procs; exec sleep 600"])
    while child.pid not in pids_in(path):  # the shell joins the cgroup as its first step
        assert child.poll() is None, "the sleeper exited"
    return child.pid


def test_a_frozen_cgroup_is_frozen_and_thaws(freezer_cgroup: Path) -> None:
    pid = _sleeper_in(freezer_cgroup)
    set_frozen([freezer_cgroup], True)
    assert (freezer_cgroup / "freezer.state").read_text().strip() == "FROZEN"
    set_frozen([freezer_cgroup], False)
    assert (freezer_cgroup / "freezer.state").read_text().strip() == "THAWED"
    assert pid in pids_in(freezer_cgroup)


def test_kill_all_ends_frozen_processes(freezer_cgroup: Path) -> None:
    """A frozen process ignores SIGKILL until thawed: `lab down` must still end it."""
    _sleeper_in(freezer_cgroup)
    set_frozen([freezer_cgroup], True)
    kill_all([freezer_cgroup], timeout=5)
    assert pids_in(freezer_cgroup) == []
