"""The lab's shape, derived from the fleet: names, addresses, links and limits.

Pure: no I/O. Everything `lab up` creates is named here and recorded in the state file
before it exists, so `lab down` can remove it from the state file alone, even after a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

from dnabox.errors import DnaboxError
from dnabox.inventory.model import Box, Fleet, Plane
from dnabox.lab.paths import LabPaths

REPO_PORT = 80
# A cap per box, not a reservation: 100 idle boxes use a few MB each.
MEMORY_LIMITS: dict[str, int] = {"large": 4 << 30, "medium": 2 << 30, "small": 1 << 30}
IFNAMSIZ = 15  # Linux interface names: 15 bytes at most
DEFAULT_MANAGEMENT_NIC = "eth0"


@dataclass(frozen=True)
class Bridge:
    """One Linux bridge per (site, plane), inside the router namespace."""

    name: str
    site: str
    plane: str
    gateway: str  # "10.201.1.1/24" on the router's side; "" when the subnet has none
    mtu: int
    # Fixed: a bridge otherwise takes the lowest MAC of its ports, which changes when a
    # box is added, and every box would hold a stale ARP entry for its gateway.
    mac: str


@dataclass(frozen=True)
class Route:
    destination: str  # "default" or a CIDR
    via: str


@dataclass(frozen=True)
class Nic:
    """A veth pair: ``name`` inside the box, ``peer`` on a bridge in the router namespace."""

    name: str
    peer: str
    bridge: str
    plane: str
    address: str  # "10.201.1.11/24"
    mac: str
    mtu: int
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class BoxLayout:
    name: str
    site: str
    netns: str
    address: str  # management address: SSH goes here
    ssh_port: int
    memory_limit: int
    nics: tuple[Nic, ...]
    suite: str = "bookworm"  # the box's Debian release: which cached rootfs and repository


@dataclass(frozen=True)
class NetworkLayout:
    router_ns: str
    host_link: str  # the one interface the lab adds to the host namespace
    router_link: str  # its peer inside the router namespace
    host_address: str
    router_address: str
    management_cidr: str  # the host routes only this to the lab
    bridges: tuple[Bridge, ...]
    repo_url: str  # the local package repositories (one per release below it), served
    # from the router namespace

    def repo_url_for(self, suite: str) -> str:
        return f"{self.repo_url}{suite}/"


@dataclass(frozen=True)
class LabLayout:
    fleet: str
    network: NetworkLayout
    boxes: tuple[BoxLayout, ...]

    def box(self, name: str) -> BoxLayout:
        return next(b for b in self.boxes if b.name == name)

    @property
    def suites(self) -> tuple[str, ...]:
        """The Debian releases the boxes run, each once."""
        return tuple(sorted({b.suite for b in self.boxes}))


def fingerprint(part: NetworkLayout | BoxLayout) -> str:
    """Changes exactly when the resources built from ``part`` would differ."""
    text = json.dumps(asdict(part), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def netns_name(fleet: str, box: str) -> str:
    # '.' never occurs in fleet or box names (DNS labels), so these cannot collide.
    return f"dnabox.{fleet}.{box}"


def router_netns_name(fleet: str) -> str:
    # '_' never occurs in box names: the router cannot collide with a box.
    return f"dnabox.{fleet}._router"


def host_link_name(fleet: str) -> str:
    return f"dnx-{fleet}"[:IFNAMSIZ]


def plan_lab(fleet: Fleet, paths: LabPaths) -> LabLayout:
    """Derive the lab of ``fleet``; raise DnaboxError listing everything the lab cannot build."""
    problems: list[str] = []
    management = fleet.management_plane()
    bridges = _bridges(fleet)
    by_key = {(b.site, b.plane): b for b in bridges}
    boxes = tuple(_box(fleet, box, management, by_key, paths, problems) for box in fleet.boxes)
    peers: dict[str, str] = {}
    for box_layout in boxes:
        for nic in box_layout.nics:
            if nic.peer in peers:  # a 32-bit digest collision: rename one box
                problems.append(f"box {box_layout.name}: link name {nic.peer} is already "
                                f"used by box {peers[nic.peer]}; rename one of them")
            peers[nic.peer] = box_layout.name
    host, router = _uplink(management)
    for site in fleet.sites:
        for plane_name, subnet in site.subnets.items():
            if subnet.cidr.overlaps(host.network):
                problems.append(f"site {site.name}: {plane_name} subnet {subnet.cidr} overlaps "
                                f"{host.network}, which the lab keeps for the host's link")
    if problems:
        raise DnaboxError(
            f"the lab cannot build fleet {fleet.name}:\n" + "\n".join(f"  - {p}" for p in problems),
            hint="edit the inventory as the lines above say; nothing was changed",
        )
    network = NetworkLayout(
        router_ns=router_netns_name(fleet.name),
        host_link=host_link_name(fleet.name),
        router_link="uplink",
        host_address=str(host),
        router_address=str(router),
        management_cidr=str(management.cidr),
        bridges=bridges,
        repo_url=f"http://{router.ip}:{REPO_PORT}/",
    )
    return LabLayout(fleet=fleet.name, network=network, boxes=boxes)


def _bridges(fleet: Fleet) -> tuple[Bridge, ...]:
    # Names are positional: any change to sites or planes changes the network fingerprint
    # and `lab up` rebuilds the whole network anyway.
    result = []
    for si, site in enumerate(fleet.sites):
        for pi, plane in enumerate(fleet.planes):
            subnet = site.subnets.get(plane.name)
            if subnet is None:
                continue
            gateway = ""
            if subnet.gateway is not None:
                gateway = f"{subnet.gateway}/{subnet.cidr.prefixlen}"
            result.append(Bridge(f"br{si}-{pi}", site.name, plane.name, gateway, plane.mtu,
                                 _mac(f"{fleet.name}/{site.name}/{plane.name}")))
    return tuple(result)


def _uplink(management: Plane) -> tuple[IPv4Interface, IPv4Interface]:
    """The last /30 of the management plane links the host to the router."""
    last = IPv4Network(f"{management.cidr.broadcast_address - 3}/30")
    return (IPv4Interface(f"{last.network_address + 1}/30"),
            IPv4Interface(f"{last.network_address + 2}/30"))


def _box(fleet: Fleet, box: Box, management: Plane, bridges: dict[tuple[str, str], Bridge],
         paths: LabPaths, problems: list[str]) -> BoxLayout:
    _check_ssh(fleet, box, paths, problems)
    site = fleet.site(box.site)
    nics: list[Nic] = []
    mgmt_subnet = site.subnets.get(management.name)
    mgmt_iface = box.interfaces.get(management.name)
    mgmt_nic = mgmt_iface.nic if mgmt_iface is not None else DEFAULT_MANAGEMENT_NIC
    if mgmt_subnet is None or mgmt_subnet.gateway is None:
        problems.append(f"box {box.name}: site {site.name} needs a {management.name} subnet "
                        "with a gateway (the host reaches the box through it)")
    else:
        address = IPv4Interface(f"{box.address}/{mgmt_subnet.cidr.prefixlen}")
        nics.append(_nic(fleet, box, 0, mgmt_nic, management, bridges, str(address),
                         (Route("default", str(mgmt_subnet.gateway)),)))
    others = [p for p in fleet.planes if p is not management and p.name in box.interfaces]
    for index, plane in enumerate(others, start=1):
        iface = box.interfaces[plane.name]
        subnet = site.subnets.get(plane.name)
        if subnet is None:
            problems.append(f"box {box.name}: site {site.name} has no {plane.name} subnet "
                            f"for interface {iface.nic}")
            continue
        routes: tuple[Route, ...] = ()
        if subnet.gateway is not None:
            routes = (Route(str(plane.cidr), str(subnet.gateway)),)
        nics.append(_nic(fleet, box, index, iface.nic, plane, bridges, str(iface.address),
                         routes))
    names = [n.name for n in nics]
    if len(set(names)) != len(names):
        problems.append(f"box {box.name}: two planes use the same NIC ({', '.join(names)})")
    return BoxLayout(
        name=box.name, site=box.site, netns=netns_name(fleet.name, box.name),
        address=str(box.address), ssh_port=fleet.ssh_for(box).port,
        memory_limit=MEMORY_LIMITS[box.size], nics=tuple(nics), suite=fleet.os_of(box),
    )


def _nic(fleet: Fleet, box: Box, index: int, name: str, plane: Plane,
         bridges: dict[tuple[str, str], Bridge], address: str,
         routes: tuple[Route, ...]) -> Nic:
    # Derived from the names, not positions: adding a box renames no other box's links,
    # and a restarted box keeps its MAC, so no neighbour holds a stale ARP entry.
    digest = hashlib.sha256(f"{fleet.name}/{box.name}".encode()).hexdigest()
    bridge = bridges[(box.site, plane.name)].name
    return Nic(name=name, peer=f"v{digest[:8]}-{index}", bridge=bridge, plane=plane.name,
               address=address, mac=_mac(f"{fleet.name}/{box.name}/{name}"), mtu=plane.mtu,
               routes=routes)


def _mac(seed: str) -> str:
    """A locally administered unicast MAC derived from ``seed``."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return "02:" + ":".join(digest[i:i + 2] for i in range(0, 10, 2))


def _check_ssh(fleet: Fleet, box: Box, paths: LabPaths, problems: list[str]) -> None:
    ssh = fleet.ssh_for(box)
    wanted = {"key": paths.private_key(fleet.name), "known_hosts": paths.known_hosts(fleet.name)}
    if ssh.user != "root":
        problems.append(f"box {box.name}: ssh user must be root in the lab (got {ssh.user})")
    for field, path in wanted.items():
        given: Any = getattr(ssh, field)
        if given is not None and os.path.expanduser(given) != str(path):
            problems.append(f"box {box.name}: ssh {field} must be {path} (the lab writes it), "
                            f"got {given}")
    if ssh.host_key is not None:
        problems.append(f"box {box.name}: the lab generates host keys; remove ssh.host_key")
