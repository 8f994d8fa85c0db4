"""The ip commands the lab runs, and its refusal to shadow a network the host uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnabox.errors import EnvironmentProblem
from dnabox.inventory import load_fleet
from dnabox.lab import network
from dnabox.lab.layout import LabLayout, plan_lab
from dnabox.lab.paths import LabPaths

LAB = Path(__file__).resolve().parents[3] / "inventory" / "lab.yaml"


def layout() -> LabLayout:
    return plan_lab(load_fleet(LAB), LabPaths())


def test_host_gets_one_address_and_a_route_for_the_management_plane_only() -> None:
    net = layout().network
    assert network.host_commands(net) == [
        "addr add 10.201.255.253/30 dev dnx-lab",
        "link set dnx-lab up",
        "route add 10.201.0.0/16 via 10.201.255.254 dev dnx-lab",
    ]


def test_router_holds_every_gateway_and_no_default_route() -> None:
    commands = network.router_commands(layout().network)
    assert "addr add 10.201.255.254/30 dev uplink" in commands
    gateways = [c.split()[2] for c in commands if c.startswith("addr add") and "dev br" in c]
    assert sorted(gateways) == sorted(
        [f"10.201.{i}.1/24" for i in range(1, 5)] + [f"10.203.{i}.1/24" for i in range(1, 5)])
    assert not any("default" in c for c in commands)


def test_box_links_and_addresses() -> None:
    lab = layout()
    box = lab.box("edge-b-1")
    veths = network.veth_commands(box, lab.network.router_ns)
    assert veths[0].startswith("link add eth0 netns dnabox.lab.edge-b-1 address 02:")
    assert veths[0].endswith("netns dnabox.lab._router mtu 1500")
    assert network.box_commands(box) == [
        "link set lo up",
        "addr add 10.201.3.11/24 dev eth0", "link set eth0 up",
        "route add default via 10.201.3.1 dev eth0",
        "addr add 10.203.3.11/24 dev eth1", "link set eth1 up",
        "route add 10.203.0.0/16 via 10.203.3.1 dev eth1",
    ]
    bridges = {b.name: (b.site, b.plane) for b in lab.network.bridges}
    for command in network.attach_commands(box):
        assert bridges[command.split()[4]][0] == "edge-b"


def test_a_host_route_overlapping_the_management_plane_is_refused() -> None:
    net = layout().network
    routes = [{"dst": "default", "dev": "eth0"}, {"dst": "10.201.7.0/24", "dev": "eth0"}]
    with pytest.raises(EnvironmentProblem, match=r"10\.201\.7\.0/24"):
        network.check_host_routes(net, json.dumps(routes))


def test_unrelated_routes_and_the_labs_own_route_are_fine() -> None:
    net = layout().network
    routes = [{"dst": "default", "dev": "eth0"}, {"dst": "10.255.0.0/16", "dev": "eth0"},
              {"dst": "10.201.0.0/16", "dev": "dnx-lab"}]
    network.check_host_routes(net, json.dumps(routes))


def test_the_neighbour_table_grows_with_the_lab_and_never_shrinks(tmp_path: Path) -> None:
    from dnabox.lab.network import ensure_neighbour_room, neighbour_room

    ipv4, ipv6 = tmp_path / "ipv4", tmp_path / "ipv6"
    for directory, thresh3 in ((ipv4, 1024), (ipv6, 99_999)):
        directory.mkdir()
        for name, value in (("gc_thresh1", 128), ("gc_thresh2", 512), ("gc_thresh3", thresh3)):
            (directory / name).write_text(f"{value}\n")
    # A thousand light boxes (one NIC each): the defaults fill up at about 500.
    changed = ensure_neighbour_room(1000, [str(ipv4), str(ipv6)])
    wanted = neighbour_room(1000)
    assert wanted["gc_thresh3"] >= 4 * 1000
    for name, value in wanted.items():
        assert int((ipv4 / name).read_text()) == value
    assert int((ipv6 / "gc_thresh3").read_text()) == 99_999, "never lowered"
    assert f"{ipv4 / 'gc_thresh3'}: 1024 -> {wanted['gc_thresh3']}" in changed
    assert ensure_neighbour_room(1000, [str(ipv4), str(ipv6)]) == [], "idempotent"
