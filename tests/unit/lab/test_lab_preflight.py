"""A host that cannot run the lab is told exactly what to do, before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnabox.errors import EnvironmentProblem
from dnabox.lab.preflight import check_host

FILESYSTEMS = "nodev\tproc\nnodev\toverlay\n\text4\n"


def everything(tool: str) -> str | None:
    return f"/usr/bin/{tool}"


def test_not_root_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem) as caught:
        check_host(building=False, euid=1000, which=everything)
    assert "needs root" in caught.value.message
    assert "sudo dnabox lab up" in caught.value.hint
    assert caught.value.exit_code == 3


def test_missing_tools_name_the_packages_to_install(tmp_path: Path) -> None:
    def no_ip_no_debootstrap(tool: str) -> str | None:
        return None if tool in ("ip", "debootstrap") else f"/usr/bin/{tool}"

    with pytest.raises(EnvironmentProblem) as caught:
        check_host(building=True, euid=0, which=no_ip_no_debootstrap,
                   filesystems=FILESYSTEMS, tun=tmp_path, cgroup_hierarchies=1)
    assert caught.value.hint == "apt-get install -y debootstrap iproute2"
    assert "ip" in caught.value.message and "debootstrap" in caught.value.message


def test_build_tools_are_needed_only_to_build_the_caches(tmp_path: Path) -> None:
    def no_build_tools(tool: str) -> str | None:
        return None if tool in ("debootstrap", "dpkg-scanpackages") else f"/bin/{tool}"

    check_host(building=False, euid=0, which=no_build_tools, filesystems=FILESYSTEMS,
               tun=tmp_path, cgroup_hierarchies=1)
    with pytest.raises(EnvironmentProblem, match="debootstrap, dpkg-scanpackages"):
        check_host(building=True, euid=0, which=no_build_tools, filesystems=FILESYSTEMS,
                   tun=tmp_path, cgroup_hierarchies=1)


@pytest.mark.parametrize(("filesystems", "tun", "hierarchies", "fix"), [
    ("nodev\tproc\n", True, 1, "modprobe overlay"),
    (FILESYSTEMS, False, 1, "modprobe tun"),
    (FILESYSTEMS, True, 0, "mount -t cgroup2 none /sys/fs/cgroup"),
])
def test_missing_kernel_features_name_the_fix(tmp_path: Path, filesystems: str, tun: bool,
                                              hierarchies: int, fix: str) -> None:
    with pytest.raises(EnvironmentProblem) as caught:
        check_host(building=False, euid=0, which=everything, filesystems=filesystems,
                   tun=tmp_path if tun else tmp_path / "absent",
                   cgroup_hierarchies=hierarchies)
    assert caught.value.hint == fix
