"""What the topology picture shows, decided from the fleet alone (no Graphviz here).

Tiers are rows: core on top, edge sites in the middle, end devices below. Each site is
either expanded (its boxes, grouped by Kubernetes cluster) or collapsed into one node with
counts, so a 1,000-box fleet stays a picture of sites. Overlays become site-to-site links
counted from the same tunnel plan the ovs role configures (`plan.network.overlay_peers`).
The Graphviz adapter turns this view into DOT; a web view could draw the same view.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dnabox.errors import DnaboxError
from dnabox.plan.network import overlay_peers

if TYPE_CHECKING:
    from dnabox.inventory.model import Box, Fleet, Overlay, Tier

TIERS: tuple[Tier, ...] = ("core", "edge", "end")
COLLAPSE_ABOVE = 16  # a site with more boxes is drawn as one node with counts
DETAIL_LIMIT = 24  # more boxes drawn than this and each box shows its name and planes only
SITES_PER_ROW = 5  # a tier with more sites wraps onto further rows
LINKS_PER_OVERLAY = 15  # a mesh over more site pairs is drawn through one node per overlay


@dataclass(frozen=True)
class BoxNode:
    name: str
    size: str
    smartx_type: str
    address: str
    cluster: str  # '' when the box is in no cluster
    control_plane: bool
    planes: tuple[tuple[str, str], ...]  # (plane, address) in the fleet's plane order


@dataclass(frozen=True)
class ClusterGroup:
    """The boxes of one Kubernetes cluster inside one site, laid out as a grid."""

    cluster: str  # '' for the site's boxes that are in no cluster
    boxes: tuple[BoxNode, ...]
    columns: int


@dataclass(frozen=True)
class RoleCount:
    cluster: str
    control_planes: int
    workers: int


@dataclass(frozen=True)
class SiteNode:
    name: str
    tier: Tier
    region: str
    boxes: int
    expanded: bool
    groups: tuple[ClusterGroup, ...]  # empty when collapsed
    sizes: tuple[tuple[str, int], ...]  # size -> boxes
    roles: tuple[RoleCount, ...]  # per cluster with boxes here
    unclustered: int
    subnets: tuple[tuple[str, str], ...]  # (plane, cidr)
    inner_tunnels: tuple[tuple[str, int], ...]  # (overlay, tunnels between boxes of the site)


@dataclass(frozen=True)
class TierBand:
    tier: Tier
    rows: tuple[tuple[SiteNode, ...], ...]

    @property
    def sites(self) -> tuple[SiteNode, ...]:
        return tuple(site for row in self.rows for site in row)


@dataclass(frozen=True)
class SiteLink:
    """Tunnels of one overlay between the boxes of two sites."""

    overlay: str
    a: str
    b: str
    tunnels: int


@dataclass(frozen=True)
class OverlaySummary:
    name: str
    vni: int
    topology: str
    plane: str
    mtu: int
    hub: str  # the hub box, '' for a mesh
    sites: tuple[str, ...]
    tunnels: int
    pairwise: bool  # False: too many site pairs, drawn as one node joined to every site


@dataclass(frozen=True)
class ClusterSummary:
    name: str
    distribution: str
    version: str
    control_planes: int
    workers: int
    sites: tuple[str, ...]


@dataclass(frozen=True)
class PlaneSummary:
    name: str
    purpose: str
    cidr: str
    vlan: int | None
    mtu: int
    bridge: str


@dataclass(frozen=True)
class TopologyView:
    fleet: str
    boxes: int
    collapse_above: int
    detailed: bool  # few enough boxes drawn to show their addresses
    tiers: tuple[TierBand, ...]
    links: tuple[SiteLink, ...]
    overlays: tuple[OverlaySummary, ...]
    clusters: tuple[ClusterSummary, ...]
    planes: tuple[PlaneSummary, ...]

    @property
    def sites(self) -> tuple[SiteNode, ...]:
        return tuple(site for band in self.tiers for site in band.sites)


def topology_view(
    fleet: Fleet, collapse_above: int = COLLAPSE_ABOVE, expand: Iterable[str] = ()
) -> TopologyView:
    """Sites above ``collapse_above`` boxes become one node each, unless named in ``expand``."""
    expand = set(expand)
    unknown = sorted(expand - {s.name for s in fleet.sites})
    if unknown:
        raise DnaboxError(
            f"no site {', '.join(map(repr, unknown))} in fleet {fleet.name!r}",
            hint=f"--expand takes a site name: {', '.join(s.name for s in fleet.sites)}",
        )
    by_site: dict[str, list[Box]] = {s.name: [] for s in fleet.sites}
    for box in fleet.boxes:
        by_site[box.site].append(box)
    # A site without boxes has nothing to open: it is drawn as a node that says so.
    opened = {name for name, boxes in by_site.items()
              if boxes and (len(boxes) <= collapse_above or name in expand)}
    drawn = sum(len(by_site[name]) for name in opened)
    detailed = drawn <= DETAIL_LIMIT
    links, inner, overlays = _overlay_plan(fleet)
    roles = _Roles(
        cluster_of={member: c.name for c in fleet.clusters for member in c.members},
        control={member for c in fleet.clusters for member in c.control_planes},
        order=tuple(c.name for c in fleet.clusters),
    )
    tiers = []
    for tier in TIERS:
        sites = [
            _site_node(fleet, site.name, by_site[site.name], roles,
                       expanded=site.name in opened, detailed=detailed,
                       inner=inner.get(site.name, {}))
            for site in fleet.sites if site.tier == tier
        ]
        if sites:
            rows = tuple(tuple(sites[i:i + SITES_PER_ROW])
                         for i in range(0, len(sites), SITES_PER_ROW))
            tiers.append(TierBand(tier, rows))
    return TopologyView(
        fleet=fleet.name, boxes=len(fleet.boxes), collapse_above=collapse_above,
        detailed=detailed, tiers=tuple(tiers),
        links=links, overlays=overlays, clusters=_clusters(fleet),
        planes=tuple(
            PlaneSummary(p.name, p.purpose, str(p.cidr), p.vlan, p.mtu, p.bridge or "")
            for p in fleet.planes
        ),
    )


def grid_columns(boxes: int, detailed: bool) -> int:
    """Columns of a site's box grid: detailed boxes are wide, so fewer of them per row."""
    if detailed:
        return max(1, min(boxes, 4))
    return max(1, min(boxes, math.ceil(math.sqrt(2 * boxes))))


@dataclass(frozen=True)
class _Roles:
    """Who is in which cluster, computed once for the whole fleet."""

    cluster_of: dict[str, str]
    control: set[str]
    order: tuple[str, ...]


def _site_node(
    fleet: Fleet, name: str, boxes: list[Box], known: _Roles, *, expanded: bool,
    detailed: bool, inner: dict[str, int],
) -> SiteNode:
    site = fleet.site(name)
    cluster_of, control = known.cluster_of, known.control
    roles: dict[str, list[int]] = {}
    for box in boxes:
        if box.name in cluster_of:
            counts = roles.setdefault(cluster_of[box.name], [0, 0])
            counts[0 if box.name in control else 1] += 1
    groups: tuple[ClusterGroup, ...] = ()
    if expanded:
        order = [cluster for cluster in known.order if cluster in roles] + [""]
        members: dict[str, list[BoxNode]] = {cluster: [] for cluster in order}
        for box in boxes:
            members[cluster_of.get(box.name, "")].append(
                _box_node(fleet, box, cluster_of.get(box.name, ""), box.name in control)
            )
        groups = tuple(
            ClusterGroup(cluster, tuple(nodes), grid_columns(len(nodes), detailed))
            for cluster, nodes in members.items() if nodes
        )
    sizes = Counter(box.size for box in boxes)
    return SiteNode(
        name=name, tier=site.tier, region=site.region, boxes=len(boxes), expanded=expanded,
        groups=groups,
        sizes=tuple((size, sizes[size]) for size in ("large", "medium", "small") if sizes[size]),
        roles=tuple(RoleCount(cluster, roles[cluster][0], roles[cluster][1])
                    for cluster in known.order if cluster in roles),
        unclustered=sum(1 for box in boxes if box.name not in cluster_of),
        subnets=tuple((p.name, str(site.subnets[p.name].cidr))
                      for p in fleet.planes if p.name in site.subnets),  # the planes' order
        inner_tunnels=tuple(sorted(inner.items())),
    )


def _box_node(fleet: Fleet, box: Box, cluster: str, control_plane: bool) -> BoxNode:
    planes = []
    for plane in fleet.planes:
        iface = box.interfaces.get(plane.name)
        if iface is not None:
            planes.append((plane.name, str(iface.address)))
        elif plane.purpose == "management":
            planes.append((plane.name, str(box.address)))
    return BoxNode(
        name=box.name, size=box.size, smartx_type=box.smartx_type or "",
        address=str(box.address), cluster=cluster, control_plane=control_plane,
        planes=tuple(planes),
    )


def _overlay_plan(
    fleet: Fleet,
) -> tuple[tuple[SiteLink, ...], dict[str, dict[str, int]], tuple[OverlaySummary, ...]]:
    """Site-to-site links, tunnels inside each site, and one summary per overlay."""
    links: list[SiteLink] = []
    inner: dict[str, dict[str, int]] = {}
    summaries = []
    site_order = {s.name: i for i, s in enumerate(fleet.sites)}
    for overlay in fleet.overlays:
        members = [b for b in fleet.boxes if overlay.name in b.overlay_addresses]
        pairs = tunnels_by_site_pair(fleet, overlay, members)
        between = sorted(((a, b, n) for (a, b), n in pairs.items() if a != b),
                         key=lambda link: (site_order[link[0]], site_order[link[1]]))
        for (a, b), n in pairs.items():
            if a == b:
                inner.setdefault(a, {})[overlay.name] = n
        pairwise = overlay.topology == "hub" or len(between) <= LINKS_PER_OVERLAY
        links.extend(SiteLink(overlay.name, a, b, n) for a, b, n in between)
        sites = {b.site for b in members}
        summaries.append(OverlaySummary(
            name=overlay.name, vni=overlay.vni, topology=overlay.topology, plane=overlay.plane,
            mtu=overlay.mtu, hub=overlay.hub or "",
            sites=tuple(s.name for s in fleet.sites if s.name in sites),
            tunnels=sum(pairs.values()), pairwise=pairwise,
        ))
    return tuple(links), inner, tuple(summaries)


def tunnels_by_site_pair(
    fleet: Fleet, overlay: Overlay, members: list[Box]
) -> Counter[tuple[str, str]]:
    """Tunnels between the boxes of two sites (a site with itself: tunnels inside it).

    A hub's tunnels come from the tunnel plan the ovs role configures (``overlay_peers``).
    A mesh tunnels every pair of members, so its counts are products of the sites' member
    counts: listing each box's peers would take a million steps at 1,000 boxes.
    """
    pairs: Counter[tuple[str, str]] = Counter()
    if overlay.topology == "mesh":
        per_site = Counter(box.site for box in members)
        sites = sorted(per_site)
        for i, a in enumerate(sites):
            pairs[a, a] = per_site[a] * (per_site[a] - 1) // 2
            for b in sites[i + 1:]:
                pairs[a, b] = per_site[a] * per_site[b]
        return +pairs  # drops the sites of one member: no tunnel inside them
    for box in members:
        for peer in overlay_peers(fleet, overlay, box):
            a, b = sorted((box.site, peer.site))
            pairs[a, b] += 1
    # Every tunnel is listed by both its ends (each box's VXLAN ports).
    return Counter({pair: n // 2 for pair, n in pairs.items()})


def _clusters(fleet: Fleet) -> tuple[ClusterSummary, ...]:
    site_of = {b.name: b.site for b in fleet.boxes}
    summaries = []
    for cluster in fleet.clusters:
        sites = {site_of[m] for m in cluster.members if m in site_of}
        summaries.append(ClusterSummary(
            name=cluster.name, distribution=cluster.distribution,
            version=cluster.kubernetes_version, control_planes=len(cluster.control_planes),
            workers=len(cluster.workers),
            sites=tuple(s.name for s in fleet.sites if s.name in sites),
        ))
    return tuple(summaries)
