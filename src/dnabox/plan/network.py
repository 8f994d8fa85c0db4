"""The OVS layout of each box: one bridge per plane, VXLAN ports to every overlay peer.

The ``ovs`` role configures exactly this and the Pulumi networks layer names the same
bridges in its NetworkAttachmentDefinitions: both read it from here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dnabox.inventory.model import Box, Fleet, Overlay


@dataclass(frozen=True)
class PlaneBridge:
    plane: str
    bridge: str
    nic: str
    address: str  # address/prefix placed on the bridge (the NIC itself carries none)
    gateway: str  # site gateway of this plane, '' when none
    plane_cidr: str
    mtu: int
    vlan: int | None


@dataclass(frozen=True)
class TunnelPort:
    port: str  # OVS port name, at most 15 characters
    remote_ip: str
    peer: str


@dataclass(frozen=True)
class OverlayBridge:
    overlay: str
    bridge: str
    vni: int
    mtu: int
    address: str
    local_ip: str
    tunnels: tuple[TunnelPort, ...]


@dataclass(frozen=True)
class BoxNetwork:
    box: str
    planes: tuple[PlaneBridge, ...]
    overlays: tuple[OverlayBridge, ...]


def box_network(fleet: Fleet, box: Box) -> BoxNetwork:
    site = fleet.site(box.site)
    planes = []
    for plane in fleet.planes:
        iface = box.interfaces.get(plane.name)
        if plane.bridge is None or iface is None:
            continue
        subnet = site.subnets.get(plane.name)
        planes.append(PlaneBridge(
            plane=plane.name, bridge=plane.bridge, nic=iface.nic,
            address=str(iface.address), plane_cidr=str(plane.cidr),
            gateway=str(subnet.gateway) if subnet and subnet.gateway else "",
            mtu=plane.mtu, vlan=plane.vlan,
        ))
    overlays = tuple(
        _overlay_bridge(fleet, overlay, box)
        for overlay in fleet.overlays if overlay.name in box.overlay_addresses
    )
    return BoxNetwork(box.name, tuple(planes), overlays)


def underlay_ip(fleet: Fleet, overlay: Overlay, box: Box) -> str:
    plane = fleet.plane(overlay.plane)
    if plane.purpose == "management":
        return str(box.address)
    return str(box.interfaces[overlay.plane].address.ip)


def overlay_peers(fleet: Fleet, overlay: Overlay, box: Box) -> list[Box]:
    """Mesh: every other member. Hub: the hub talks to all, the others to the hub only."""
    members = [b for b in fleet.boxes if overlay.name in b.overlay_addresses]
    if overlay.topology == "hub" and box.name != overlay.hub:
        return [b for b in members if b.name == overlay.hub]
    return [b for b in members if b.name != box.name]


def tunnel_port_name(overlay: Overlay, peer: Box) -> str:
    # Derived from the peer's name, not its position: adding a box must not rename the
    # ports of every other box. 15 characters at most (IFNAMSIZ).
    digest = hashlib.sha1(f"{overlay.name}/{peer.name}".encode(), usedforsecurity=False)
    return f"vx-{digest.hexdigest()[:10]}"


def _overlay_bridge(fleet: Fleet, overlay: Overlay, box: Box) -> OverlayBridge:
    tunnels = tuple(
        TunnelPort(tunnel_port_name(overlay, peer), underlay_ip(fleet, overlay, peer),
                   peer.name)
        for peer in overlay_peers(fleet, overlay, box)
    )
    return OverlayBridge(
        overlay=overlay.name, bridge=overlay.bridge, vni=overlay.vni, mtu=overlay.mtu,
        address=str(box.overlay_addresses[overlay.name]),
        local_ip=underlay_ip(fleet, overlay, box), tunnels=tunnels,
    )
