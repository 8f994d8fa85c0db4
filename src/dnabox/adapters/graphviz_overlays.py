"""The overlay panel of the topology picture: one small node per site, VXLAN links between.

Links run between these small site nodes rather than the big site outlines: dot orders
every rank to uncross the edges it holds, so links among the outlines scrambled the boxes
and sent core-to-end links around the whole picture. In a panel of their own, the links
keep the same tiers (core on top, end at the bottom) and leave the boxes in order.
"""

from __future__ import annotations

import math

from dnabox.adapters.graphviz_style import TIER_COLOURS, escape, overlay_colour, quote
from dnabox.plan.topology import OverlaySummary, SiteNode, TopologyView


def overlay_panel(view: TopologyView) -> list[str]:
    if not view.overlays:
        return []
    lines = [
        "  subgraph cluster_overlays {",
        "    id=overlays; class=overlays; label=<<B>Overlays</B>: VXLAN tunnels between "
        "sites<BR/><FONT POINT-SIZE=\"10\">label: tunnels between the two sites</FONT>>; "
        "fontsize=14; style=\"rounded\"; color=\"#8c959f\"; margin=12;",
    ]
    tier_of = {site.name: index for index, band in enumerate(view.tiers) for site in band.sites}
    previous: list[str] = []
    for index, band in enumerate(view.tiers):
        names = [_mini(site) for site in band.sites]
        lines += [f"    {_mini_node(site)}" for site in band.sites]
        if len(names) > 1:  # in the inventory's order, as far as the links let dot
            lines.append(f"    {{ rank=same; {' -- '.join(names)} [style=invis]; }}")
        # Tiers stack in the panel too; the break node keeps it linear in the sites.
        if previous:
            gap = quote(f"ovrow:{index}")
            lines.append(f"    {gap} [shape=point, style=invis, width=0, height=0, label=\"\"];")
            lines += [f"    {a} -- {gap} [style=invis];" for a in previous]
            lines += [f"    {gap} -- {b} [style=invis];" for b in names]
        previous = names
    for overlay in view.overlays:
        if overlay.pairwise:
            lines += _links(view, overlay, tier_of)
        else:
            lines += _bus(view, overlay, tier_of)
    lines.append("  }")
    return lines


def panel_tops(view: TopologyView) -> list[str]:
    """The panel's first-tier nodes, for hanging the panel below the legend."""
    if not view.overlays or not view.tiers:
        return []
    return [_mini(site) for site in view.tiers[0].sites]


def _mini(site: SiteNode) -> str:
    return quote(f"ov:{site.name}")


def _mini_node(site: SiteNode) -> str:
    return (f"{_mini(site)} [id=\"overlay-site-{site.name}\", class=\"overlay-site "
            f"tier-{site.tier}\", color={quote(TIER_COLOURS[site.tier])}, penwidth=2, "
            f"label=<<B>{escape(site.name)}</B><BR/><FONT POINT-SIZE=\"9\">{site.boxes} "
            f"box{'es' if site.boxes != 1 else ''}</FONT>>];")


def _links(view: TopologyView, overlay: OverlaySummary, tier_of: dict[str, int]) -> list[str]:
    colour = overlay_colour(view, overlay.name)
    sites = {site.name: site for site in view.sites}
    style = "bold" if overlay.topology == "hub" else "dashed"
    lines = []
    for link in (li for li in view.links if li.overlay == overlay.name):
        a, b = sorted((sites[link.a], sites[link.b]), key=lambda site: tier_of[site.name])
        lines.append(
            f"    {_mini(a)} -- {_mini(b)} [id=\"link-{overlay.name}__{link.a}__{link.b}\", "
            f"class=\"overlay-link overlay-{overlay.name}\", color={quote(colour)}, "
            f"fontcolor={quote(colour)}, style={style}, "
            f"penwidth={1.2 + math.log10(max(1, link.tunnels)):.1f}, "
            f"constraint={'false' if tier_of[a.name] == tier_of[b.name] else 'true'}, "
            f"label={quote(str(link.tunnels))}];")
    return lines


def _bus(view: TopologyView, overlay: OverlaySummary, tier_of: dict[str, int]) -> list[str]:
    """A mesh over too many site pairs to draw: one node for it, one spoke per site."""
    colour = overlay_colour(view, overlay.name)
    node = quote(f"overlay:{overlay.name}")
    top = min(tier_of[s] for s in overlay.sites)
    lines = [
        f"    {node} [id=\"overlay-{overlay.name}\", class=\"overlay\", shape=box, "
        f"style=\"rounded,dashed,bold\", color={quote(colour)}, fontcolor={quote(colour)}, "
        f"label=<<B>{escape(overlay.name)}</B><BR/>full mesh over {len(overlay.sites)} sites"
        f"<BR/>{overlay.tunnels} tunnels>];"
    ]
    for name in overlay.sites:
        mini = quote(f"ov:{name}")
        ends = f"{mini} -- {node}" if tier_of[name] == top else f"{node} -- {mini}"
        lines.append(
            f"    {ends} [id=\"link-{overlay.name}__{name}\", class=\"overlay-link "
            f"overlay-{overlay.name}\", color={quote(colour)}, style=dashed];")
    return lines
