"""Draw a topology view with Graphviz: DOT source, then ``dot`` for SVG and PNG.

Every site, box, cluster outline and overlay link carries a stable SVG ``id`` and CSS
classes (docs/CONCEPTS.md lists them), so a live view can colour the same SVG by state.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

from dnabox.adapters.graphviz_legend import legend_label
from dnabox.adapters.graphviz_overlays import overlay_panel, panel_tops
from dnabox.adapters.graphviz_style import (
    CLUSTER_FILL,
    FONT,
    TIER_COLOURS,
    TIER_TITLES,
    cluster_colour,
    escape,
    plane_colour,
    quote,
)
from dnabox.errors import DnaboxError, EnvironmentProblem
from dnabox.plan.topology import (
    BoxNode,
    ClusterGroup,
    SiteNode,
    TierBand,
    TopologyView,
)

FORMATS = ("svg", "png", "dot")


def render(dot_source: str, output: Path) -> None:
    """Write ``dot_source`` to ``output`` in the format its suffix names."""
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise DnaboxError(
            f"cannot tell the picture format from {output.name!r}",
            hint=f"end the file name with one of: {', '.join('.' + f for f in FORMATS)}",
        )
    if fmt == "dot":
        output.write_text(dot_source, encoding="utf-8")
        return
    dot = shutil.which("dot")
    if dot is None:
        raise EnvironmentProblem(
            "Graphviz's `dot` is not installed", hint="apt-get install -y graphviz"
        )
    result = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(output)], input=dot_source.encode(), capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise DnaboxError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")


def topology_dot(view: TopologyView) -> str:
    """DOT source; deterministic, so the picture only changes when the fleet does."""
    sites = len(view.sites)
    title = (f"<<B>dnabox fleet {escape(view.fleet)}</B><BR/><FONT POINT-SIZE=\"11\">"
             f"{_count(view.boxes, 'box')} · {_count(sites, 'site')} · "
             f"{_count(len(view.clusters), 'cluster')} · "
             f"{_count(len(view.overlays), 'overlay')}</FONT>>")
    lines = [
        f"graph {quote(view.fleet)} {{",
        # newrank: rank=same may hold nodes of different clusters; remincross=false: the
        # final crossing pass ignores the flat edges that keep boxes in inventory order.
        f"  graph [rankdir=TB, fontname={quote(FONT)}, compound=true, newrank=true, "
        f"remincross=false, label={title}, labelloc=t, fontsize=18, nodesep=0.25, ranksep=0.35, "
        "pad=0.3, outputorder=edgesfirst];",
        f"  node [shape=box, style=\"rounded,filled\", fontname={quote(FONT)}, "
        "fillcolor=white, margin=\"0.08,0.04\"];",
        f"  edge [fontname={quote(FONT)}, fontsize=10];",
    ]
    for band in view.tiers:
        lines += _tier_band(view, band)
    lines += _ordering_edges(view)
    lines += overlay_panel(view)
    lines += [
        # Nothing reaches the legend from above: dot puts it in the first row, beside the
        # core, with the overlay panel hanging below it.
        "  legend [id=legend, class=legend, shape=plaintext, style=\"\", margin=0, "
        f"label={legend_label(view)}];",
        *(f"  legend -- {name} [style=invis];" for name in panel_tops(view)),
        "}",
    ]
    return "\n".join(lines) + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 'es' if noun.endswith('x') else 's'}"


def _tier_band(view: TopologyView, band: TierBand) -> list[str]:
    """A tier: its heading at the start of its first row, then its sites.

    Not a cluster: dot routes an edge around every cluster it does not belong to, so a
    core-to-end link would have to circle the whole edge tier.
    """
    boxes = sum(site.boxes for site in band.sites)
    count = len(band.sites)
    label = (f"<<FONT COLOR={quote(TIER_COLOURS[band.tier])} POINT-SIZE=\"24\"><B>"
             f"{band.tier.upper()}</B></FONT><BR/><FONT POINT-SIZE=\"12\">"
             f"{TIER_TITLES[band.tier]}<BR/>{_count(count, 'site')}, "
             f"{_count(boxes, 'box')}</FONT>>")
    heading = quote(f"tier:{band.tier}")
    lines = [f"  {heading} [id=\"tier-{band.tier}\", class=\"tier tier-{band.tier}\", "
             f"shape=plaintext, style=\"\", label={label}];"]
    for site in band.sites:
        lines += (_expanded_site(view, site) if site.expanded else _collapsed_site(view, site))
    return lines


def _site_title(site: SiteNode) -> str:
    region = f" · {escape(site.region)}" if site.region else ""
    subnets = " · ".join(f"{escape(p)} {c}" for p, c in site.subnets)
    inner = "".join(f"<BR/>{escape(o)}: {n} tunnels inside" for o, n in site.inner_tunnels)
    return (f"<<B>{escape(site.name)}</B>{region} · {site.boxes} boxes"
            f"<BR/><FONT POINT-SIZE=\"10\">{subnets}{inner}</FONT>>")


def _expanded_site(view: TopologyView, site: SiteNode) -> list[str]:
    colour = TIER_COLOURS[site.tier]
    lines = [
        f"    subgraph \"cluster_site_{site.name}\" {{",
        f"      id=\"site-{site.name}\"; class=\"site tier-{site.tier} expanded\"; "
        f"label={_site_title(site)}; labeljust=c; fontsize=13; style=\"filled,rounded\"; "
        f"fillcolor=white; color={quote(colour)}; penwidth=2.5; margin=10;",
    ]
    for group in site.groups:
        lines += _group(view, site, group)
    lines.append("    }")
    return lines


def _group(view: TopologyView, site: SiteNode, group: ClusterGroup) -> list[str]:
    nodes = [f"        {_box(view, site, box)}" for box in group.boxes]
    # The grid, in the inventory's order: invisible edges stack box i above box
    # i + columns, and chain each row left to right (dot keeps a flat edge's tail left).
    nodes += [
        f"        {quote(a.name)} -- {quote(b.name)} [style=invis, weight=20];"
        for a, b in zip(group.boxes, group.boxes[group.columns:], strict=False)
    ]
    for start in range(0, len(group.boxes), group.columns):
        row = [quote(box.name) for box in group.boxes[start:start + group.columns]]
        if len(row) > 1:
            nodes.append(f"        {{ rank=same; {' -- '.join(row)} [style=invis]; }}")
    if not group.cluster:
        return nodes
    summary = next(c for c in view.clusters if c.name == group.cluster)
    elsewhere = [s for s in summary.sites if s != site.name]
    also = f" (+{len(elsewhere)} sites)" if len(elsewhere) > 1 else (
        f" (+ {escape(elsewhere[0])})" if elsewhere else "")
    colour = cluster_colour(view, group.cluster)
    label = (f"<<FONT COLOR={quote(colour)}><B>{escape(group.cluster)}</B>{also} · "
             f"{summary.distribution} {summary.version}</FONT>>")
    return [
        f"      subgraph \"cluster_k8s_{group.cluster}__{site.name}\" {{",
        f"        id=\"k8s-{group.cluster}__{site.name}\"; "
        f"class=\"k8s k8s-{group.cluster}\"; label={label}; fontsize=11; labeljust=l; "
        f"style=\"dashed,rounded,filled\"; fillcolor={quote(CLUSTER_FILL)}; "
        f"color={quote(colour)}; penwidth=2; margin=8;",
        *nodes,
        "      }",
    ]


def _box(view: TopologyView, site: SiteNode, box: BoxNode) -> str:
    classes = [f"box tier-{site.tier} size-{box.size}"]
    if box.cluster:
        classes.append(f"k8s-{box.cluster} {'control-plane' if box.control_plane else 'worker'}")
    colour = cluster_colour(view, box.cluster) if box.cluster else TIER_COLOURS[site.tier]
    tooltip = f"{box.name} ({box.size}) " + " ".join(f"{p}={a}" for p, a in box.planes)
    attributes = [
        f"id=\"box-{box.name}\"", f"class={quote(' '.join(classes))}",
        f"label={_box_label(view, box)}", f"color={quote(colour)}",
        f"tooltip={quote(tooltip)}", "penwidth=1.5",
    ]
    if box.control_plane:
        attributes.append("peripheries=2")
    return f"{quote(box.name)} [{', '.join(attributes)}];"


def _box_label(view: TopologyView, box: BoxNode) -> str:
    badges = "".join(
        f"<TD BGCOLOR={quote(plane_colour(view, plane))}><FONT COLOR=\"white\" "
        f"POINT-SIZE=\"8\">{escape(plane)}</FONT></TD>"
        for plane, _ in box.planes
    )
    if not view.detailed:
        return (f"<<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"1\" CELLPADDING=\"1\">"
                f"<TR><TD COLSPAN=\"{max(1, len(box.planes))}\"><B>{escape(box.name)}</B></TD>"
                f"</TR><TR>{badges}</TR></TABLE>>")
    role = ""
    if box.cluster:
        role = f" · {'control plane' if box.control_plane else 'worker'}"
    kind = f" · {escape(box.smartx_type)}" if box.smartx_type else ""
    rows = "".join(
        f"<TR><TD BGCOLOR={quote(plane_colour(view, plane))}><FONT COLOR=\"white\" "
        f"POINT-SIZE=\"9\">{escape(plane)}</FONT></TD><TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"10\">"
        f"{address}</FONT></TD></TR>"
        for plane, address in box.planes
    )
    return (f"<<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"1\" CELLPADDING=\"1\">"
            f"<TR><TD COLSPAN=\"2\"><B>{escape(box.name)}</B></TD></TR>"
            f"<TR><TD COLSPAN=\"2\"><FONT POINT-SIZE=\"10\">{box.size}{kind}{role}</FONT></TD>"
            f"</TR>{rows}</TABLE>>")


def _collapsed_site(view: TopologyView, site: SiteNode) -> list[str]:
    colour = TIER_COLOURS[site.tier]
    region = f" · {escape(site.region)}" if site.region else ""
    sizes = ", ".join(f"{n} {size}" for size, n in site.sizes)

    def line(text: str, size: int = 14) -> str:
        return f"<TR><TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"{size}\">{text}</FONT></TD></TR>"

    rows = [line(f"<B>{escape(site.name)}</B>{region}"),
            line(f"{site.boxes} boxes ({sizes})" if site.boxes else "no boxes")]
    rows += [
        line(f"{escape(r.cluster)}: {r.control_planes} control plane"
             f"{'s' if r.control_planes != 1 else ''}, {r.workers} worker"
             f"{'s' if r.workers != 1 else ''}")
        for r in site.roles
    ]
    if site.unclustered:
        rows.append(line(f"{site.unclustered} in no cluster"))
    # Plane names in their badge colour, each with the site's subnet.
    rows += [line(f"<FONT COLOR={quote(plane_colour(view, p))}><B>{escape(p)}</B></FONT> {c}", 11)
             for p, c in site.subnets]
    rows += [line(f"{escape(o)}: {n} tunnels inside", 10) for o, n in site.inner_tunnels]
    label = (f"<<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"1\">"
             f"{''.join(rows)}</TABLE>>")
    # In a cluster of its own, without outline: dot keeps a row of sites in order only
    # when all of them are clusters.
    return [
        f"    subgraph \"cluster_site_{site.name}\" {{ peripheries=0; label=\"\"; margin=0;",
        f"      {quote(_site_node_name(site))} [id=\"site-{site.name}\", "
        f"class=\"site tier-{site.tier} collapsed\", shape=box3d, style=filled, "
        f"fillcolor=white, color={quote(colour)}, penwidth=2.5, label={label}, "
        f"tooltip={quote(f'{site.name}: {site.boxes} boxes (--expand {site.name} draws them)')}];",
        "    }",
    ]


def _site_node_name(site: SiteNode) -> str:
    return f"site:{site.name}"


def _first_row(site: SiteNode) -> list[str]:
    if not site.expanded:
        return [_site_node_name(site)]
    return [box.name for group in site.groups for box in group.boxes[:group.columns]]


def _height(site: SiteNode) -> int:
    """Ranks the site takes: the rows of its tallest grid, or one for a collapsed site."""
    if not site.expanded:
        return 1
    return max(math.ceil(len(g.boxes) / g.columns) for g in site.groups)


def _lowest(site: SiteNode) -> str:
    """A node in the site's last rank."""
    if not site.expanded:
        return _site_node_name(site)
    rows = _height(site)
    group = next(g for g in site.groups if math.ceil(len(g.boxes) / g.columns) == rows)
    return group.boxes[(rows - 1) * group.columns].name


def _ordering_edges(view: TopologyView) -> list[str]:
    """Stack the rows of sites, tier after tier, through one invisible node above each row.

    Dot ranks nodes, not clusters: without an edge from above, a box would float up to the
    first rank. Each row hangs below its break node; one node per row keeps this linear in
    the number of boxes.
    """
    lines = []
    previous: tuple[SiteNode, ...] = ()
    for band in view.tiers:
        for index, row in enumerate(band.rows):
            node = quote(f"row:{band.tier}:{index}")
            lines.append(f"  {node} [shape=point, style=invis, width=0, height=0, label=\"\"];")
            if previous:
                # Only from the tallest site: an edge from a shorter one would run past
                # the tall site's rows, and dot would move sites around to uncross it.
                # Of several, the middle one, so that rows centre under each other.
                height = max(_height(site) for site in previous)
                tallest = [site for site in previous if _height(site) == height]
                lines.append(f"  {quote(_lowest(tallest[len(tallest) // 2]))} -- {node} "
                             "[style=invis];")
            heads = [f"tier:{band.tier}"] if index == 0 else []
            heads += [name for site in row for name in _first_row(site)]
            lines += [f"  {node} -- {quote(name)} [style=invis];" for name in heads]
            # The tier heading first, then the sites in the inventory's order.
            firsts = [quote(heads[0])] if index == 0 else []
            firsts += [quote(_first_row(site)[0]) for site in row]
            if len(firsts) > 1:
                lines.append(f"  {{ rank=same; {' -- '.join(firsts)} [style=invis]; }}")
            previous = row
    return lines


def _rows(view: TopologyView) -> list[tuple[SiteNode, ...]]:
    return [row for band in view.tiers for row in band.rows]
