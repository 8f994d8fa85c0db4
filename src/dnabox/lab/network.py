"""The lab's networks: a router namespace holding one bridge per (site, plane), a veth
per box NIC, and one veth pair linking the host to the router.

The bridges live inside the router namespace, so the host namespace gains exactly one
interface and one route (the management plane), and deleting the router removes them all.
The router has no default route and the host does not forward: boxes reach the lab only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from dnabox.errors import EnvironmentProblem
from dnabox.lab.layout import BoxLayout, NetworkLayout
from dnabox.lab.run import ip_batch, run

NETNS_DIR = Path("/run/netns")


def router_ip(net: NetworkLayout) -> str:
    return str(IPv4Interface(net.router_address).ip)


def host_commands(net: NetworkLayout) -> list[str]:
    return [
        f"addr add {net.host_address} dev {net.host_link}",
        f"link set {net.host_link} up",
        f"route add {net.management_cidr} via {router_ip(net)} dev {net.host_link}",
    ]


def router_commands(net: NetworkLayout) -> list[str]:
    commands = [
        "link set lo up",
        f"addr add {net.router_address} dev {net.router_link}",
        f"link set {net.router_link} up",
    ]
    for bridge in net.bridges:
        commands += [
            f"link add {bridge.name} address {bridge.mac} mtu {bridge.mtu} type bridge",
            f"link set {bridge.name} up",
        ]
        if bridge.gateway:
            commands.append(f"addr add {bridge.gateway} dev {bridge.name}")
    return commands


def veth_commands(box: BoxLayout, router_ns: str) -> list[str]:
    """Run in the host namespace: each pair is born with its ends in their namespaces."""
    return [
        f"link add {nic.name} netns {box.netns} address {nic.mac} mtu {nic.mtu} "
        f"type veth peer name {nic.peer} netns {router_ns} mtu {nic.mtu}"
        for nic in box.nics
    ]


def attach_commands(box: BoxLayout) -> list[str]:
    """Run in the router namespace."""
    return [f"link set {nic.peer} master {nic.bridge} up" for nic in box.nics]


def box_commands(box: BoxLayout) -> list[str]:
    """Run in the box namespace."""
    commands = ["link set lo up"]
    for nic in box.nics:
        commands += [f"addr add {nic.address} dev {nic.name}", f"link set {nic.name} up"]
        commands += [f"route add {r.destination} via {r.via} dev {nic.name}" for r in nic.routes]
    return commands


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def check_host_routes(net: NetworkLayout, routes_json: str | None = None) -> None:
    """Refuse a management plane that would shadow a network the host already routes."""
    text = routes_json if routes_json is not None else run(["ip", "-j", "-4", "route"]).stdout
    lab = IPv4Network(net.management_cidr)
    for route in json.loads(text or "[]"):
        destination = route.get("dst", "default")
        if destination == "default" or route.get("dev") == net.host_link:
            continue
        if IPv4Network(destination, strict=False).overlaps(lab):
            raise EnvironmentProblem(
                f"the host already routes {destination} (dev {route.get('dev')}), which "
                f"overlaps the lab's management plane {lab}",
                hint="give the lab fleet a management plane the host does not use",
            )


def create_router(net: NetworkLayout) -> None:
    run(["ip", "netns", "add", net.router_ns])
    run(["ip", "link", "add", net.host_link, "type", "veth", "peer", "name", net.router_link,
         "netns", net.router_ns])
    ip_batch(host_commands(net))
    ip_batch(router_commands(net), net.router_ns)
    # Forwarding is per namespace: only the router forwards, the host keeps its setting.
    run(["ip", "netns", "exec", net.router_ns, "sh", "-c",
         "echo 1 > /proc/sys/net/ipv4/ip_forward"])


def router_links(router_ns: str) -> set[str]:
    """The names of the links in the router namespace (``ip -o link`` prints NAME@PEER)."""
    listing = run(["ip", "-n", router_ns, "-o", "link", "show"]).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in listing.splitlines()
            if line.count(":") >= 2}


def create_box_links(boxes: Sequence[BoxLayout], router_ns: str) -> None:
    # A box made again under its old name (lab replace, a restart after a crash): the kernel
    # frees the old box's namespace, and with it the old veth peers in the router, in the
    # background. Deleting a leftover peer deletes the pair at once, so the new pair can
    # take the names now instead of racing that cleanup (RTNETLINK "File exists").
    present = router_links(router_ns)
    ip_batch([f"link delete {nic.peer}" for box in boxes for nic in box.nics
              if nic.peer in present], router_ns)
    ip_batch([f"netns add {box.netns}" for box in boxes])
    ip_batch([command for box in boxes for command in veth_commands(box, router_ns)])
    ip_batch([command for box in boxes for command in attach_commands(box)], router_ns)
    for box in boxes:
        ip_batch(box_commands(box), box.netns)


def delete_netns(name: str) -> None:
    if netns_exists(name):
        run(["ip", "netns", "delete", name])


def delete_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "delete", name])


# The kernel's neighbour (ARP/NDP) table is one table for every network namespace, sized by
# the host's gc_thresh settings (a namespace has no settings of its own). Each lab box holds
# an entry for its gateway and the router one for the box, per NIC: with Linux's defaults
# (thresh3 1024) the table is full at about 500 boxes, and the next box's sshd never answers
# (seen at the 501st light box, the same box every try).
NEIGHBOUR_SETTINGS = ("/proc/sys/net/ipv4/neigh/default", "/proc/sys/net/ipv6/neigh/default")


def neighbour_room(nics: int) -> dict[str, int]:
    """The gc_thresh values a lab of ``nics`` box NICs needs (twice its entries, with room)."""
    entries = 2 * nics
    return {"gc_thresh1": entries, "gc_thresh2": 2 * entries + 512,
            "gc_thresh3": 4 * entries + 1024}


def ensure_neighbour_room(nics: int, settings: Sequence[str] = NEIGHBOUR_SETTINGS) -> list[str]:
    """Raise the host's neighbour table limits to fit the lab (never lowers them); returns
    what it changed, as "path: old -> new"."""
    changed = []
    for directory in settings:
        for name, wanted in neighbour_room(nics).items():
            path = Path(directory) / name
            if not path.exists():
                continue
            current = int(path.read_text().strip())
            if current < wanted:
                path.write_text(f"{wanted}\n")
                changed.append(f"{path}: {current} -> {wanted}")
    return changed
