"""Facts about the D-N-A section that validation and the planner both need.

Which boxes produce a dataset, which edge site's pond a box publishes to, which box keeps a
site's pond and which address D-N-A traffic uses: one answer for ``dna_checks`` (to refuse a
fleet that cannot work) and ``dnabox.plan.dna`` (to build the topology).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from dnabox.inventory.model import Box, Dataset, Fleet


def producer_boxes(fleet: Fleet, dataset: Dataset) -> list[Box]:
    """Boxes that publish ``dataset``: those of its producer tiers and sites, fleet order."""
    tiers = set(dataset.producers.tiers)
    sites = set(dataset.producers.sites)
    known = {s.name for s in fleet.sites}
    return [b for b in fleet.boxes if b.site in known
            and (b.site in sites or fleet.tier_of(b) in tiers)]


def pond_site(fleet: Fleet, site_name: str) -> str | None:
    """The edge site whose pond keeps what ``site_name`` produces: itself for an edge site,
    its uplink for an end site; None when there is none."""
    site = next((s for s in fleet.sites if s.name == site_name), None)
    if site is None:
        return None
    if site.tier == "edge":
        return site.name
    if site.tier == "end" and site.uplink is not None:
        uplink = next((s for s in fleet.sites if s.name == site.uplink), None)
        return uplink.name if uplink is not None and uplink.tier == "edge" else None
    return None


def site_boxes(fleet: Fleet, site_name: str) -> list[Box]:
    return [b for b in fleet.boxes if b.site == site_name]


def leaf_box(fleet: Fleet, site_name: str) -> Box | None:
    """The box running an edge site's NATS leaf node (and keeping its pond): the first."""
    boxes = site_boxes(fleet, site_name)
    return boxes[0] if boxes else None


def dna_address(fleet: Fleet, box: Box) -> IPv4Address | None:
    """Where D-N-A traffic reaches ``box``: its first overlay address, else its address on
    a data plane; never the management address. None when it has neither."""
    for overlay in fleet.overlays:
        if overlay.name in box.overlay_addresses:
            return box.overlay_addresses[overlay.name].ip
    for plane in fleet.planes:
        if plane.purpose == "data" and plane.name in box.interfaces:
            return box.interfaces[plane.name].address.ip
    return None


def dna_network(fleet: Fleet, box: Box) -> str:
    """The overlay or plane ``dna_address`` lies on (peers must be on it too)."""
    for overlay in fleet.overlays:
        if overlay.name in box.overlay_addresses:
            return f"overlay {overlay.name}"
    for plane in fleet.planes:
        if plane.purpose == "data" and plane.name in box.interfaces:
            return f"plane {plane.name}"
    return ""
