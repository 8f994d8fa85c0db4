"""The lab's shape from the inventory: names fit the kernel, addresses follow the planes,
adding a box changes no other box, and fleets the lab cannot build are refused clearly."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from dnabox.errors import DnaboxError
from dnabox.inventory import load_fleet
from dnabox.lab.layout import IFNAMSIZ, MEMORY_LIMITS, Route, fingerprint, plan_lab
from dnabox.lab.paths import LabPaths

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "inventory" / "lab.yaml"


def lab_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(LAB.read_text())
    return data


def plan_from(data: dict[str, Any], tmp_path: Path) -> Any:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data))
    return plan_lab(load_fleet(path), LabPaths())


def test_sample_lab_layout() -> None:
    layout = plan_lab(load_fleet(LAB), LabPaths())
    net = layout.network
    assert net.router_ns == "dnabox.lab._router"
    assert net.host_link == "dnx-lab"
    # 4 sites x (P+M, D): no C subnet in lab.yaml, so no C bridge
    assert sorted((b.site, b.plane) for b in net.bridges) == sorted(
        (s, p) for s in ("core", "edge-a", "edge-b", "end-a") for p in ("P+M", "D"))
    core = layout.box("core-1")
    eth0, eth1 = core.nics
    assert (eth0.name, eth0.address, eth0.routes) == (
        "eth0", "10.201.1.11/24", (Route("default", "10.201.1.1"),))
    assert (eth1.name, eth1.address, eth1.routes) == (
        "eth1", "10.203.1.11/24", (Route("10.203.0.0/16", "10.203.1.1"),))
    assert core.memory_limit == MEMORY_LIMITS["large"]
    assert layout.box("end-a-1").memory_limit == MEMORY_LIMITS["small"]
    assert net.repo_url == "http://10.201.255.254:80/"


def test_interface_names_fit_the_kernel_and_never_collide() -> None:
    layout = plan_lab(load_fleet(ROOT / "inventory" / "lab.yaml"), LabPaths())
    names = [b.name for b in layout.network.bridges]
    names += [n.peer for box in layout.boxes for n in box.nics]
    assert len(set(names)) == len(names)
    assert all(len(name) <= IFNAMSIZ for name in [*names, layout.network.host_link])
    macs = [n.mac for box in layout.boxes for n in box.nics]
    macs += [b.mac for b in layout.network.bridges]
    assert len(set(macs)) == len(macs)
    assert all(int(mac.split(":")[0], 16) & 0b11 == 0b10 for mac in macs)  # local, unicast


def test_host_link_is_outside_every_site_subnet() -> None:
    fleet = load_fleet(LAB)
    net = plan_lab(fleet, LabPaths()).network
    link = IPv4Interface(net.host_address).network
    assert IPv4Interface(net.router_address).network == link
    assert link.subnet_of(IPv4Network(net.management_cidr))
    assert not any(s.cidr.overlaps(link) for site in fleet.sites for s in site.subnets.values())


def test_adding_a_box_changes_no_other_box(tmp_path: Path) -> None:
    before = plan_lab(load_fleet(LAB), LabPaths())
    data = lab_data()
    # A core box joins the D-N-A hub, which its leaves reach on the overlay.
    data["boxes"].insert(0, {"name": "aaa-first", "site": "core", "address": "10.201.1.99",
                             "interfaces": {"D": {"nic": "eth1", "address": "10.203.1.99/24"}},
                             "overlay_addresses": {"dataplane": "10.250.0.99/24"}})
    after = plan_from(data, tmp_path)
    assert fingerprint(after.network) == fingerprint(before.network)
    for box in before.boxes:
        assert after.box(box.name) == box
        assert fingerprint(after.box(box.name)) == fingerprint(box)


def test_changing_a_box_changes_its_fingerprint(tmp_path: Path) -> None:
    data = lab_data()
    data["boxes"][0]["size"] = "small"
    changed = plan_from(data, tmp_path)
    original = plan_lab(load_fleet(LAB), LabPaths())
    assert fingerprint(changed.box("core-1")) != fingerprint(original.box("core-1"))
    assert fingerprint(changed.box("edge-a-1")) == fingerprint(original.box("edge-a-1"))


def test_a_fleet_the_lab_cannot_build_is_refused_with_every_reason(tmp_path: Path) -> None:
    data = lab_data()
    data["defaults"]["ssh"] = {"user": "netcs", "key": "~/.ssh/other"}
    del data["sites"][1]["subnets"]["P+M"]["gateway"]
    with pytest.raises(DnaboxError) as caught:
        plan_from(data, tmp_path)
    message = str(caught.value)
    assert "ssh user must be root" in message
    assert "ssh key must be /var/lib/dnabox/lab/lab/id_ed25519" in message
    assert "box edge-a-1: site edge-a needs a P+M subnet with a gateway" in message
    assert "nothing was changed" in message


def test_the_playground_is_not_a_lab_fleet() -> None:
    with pytest.raises(DnaboxError, match="ssh user must be root"):
        plan_lab(load_fleet(ROOT / "inventory" / "smartx-playground.yaml"), LabPaths())


def test_declared_management_nic_is_used(tmp_path: Path) -> None:
    data = lab_data()
    data["boxes"][0]["interfaces"]["P+M"] = {"nic": "eno1", "address": "10.201.1.11/24"}
    layout = plan_from(data, tmp_path)
    assert [n.name for n in layout.box("core-1").nics] == ["eno1", "eth1"]


def test_each_box_runs_its_own_debian_release() -> None:
    fleet = load_fleet(LAB)
    layout = plan_lab(fleet, LabPaths())
    releases = {b.name: b.suite for b in layout.boxes}
    assert releases == {b.name: fleet.os_of(b) for b in fleet.boxes}
    assert set(layout.suites) == {"bookworm", "trixie"}, "the lab fleet mixes Debian 12 and 13"
    assert layout.network.repo_url_for("trixie") == layout.network.repo_url + "trixie/"
