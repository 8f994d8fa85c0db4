"""The legend of the topology picture: one HTML-like table, columns side by side."""

from __future__ import annotations

from dnabox.adapters.graphviz_style import (
    TIER_COLOURS,
    TIER_FILLS,
    cluster_colour,
    escape,
    overlay_colour,
    plane_colour,
    quote,
)
from dnabox.plan.topology import TopologyView

SECTION = "<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"2\" CELLPADDING=\"2\">"


def legend_label(view: TopologyView) -> str:
    columns = [_symbols(view), _clusters(view), _planes(view), _overlays(view)]
    cells = "".join(f"<TD VALIGN=\"TOP\">{c}</TD>" for c in columns if c)
    return (f"<<TABLE BORDER=\"1\" COLOR=\"#8c959f\" CELLBORDER=\"0\" CELLSPACING=\"8\" "
            f"CELLPADDING=\"0\" BGCOLOR=\"white\"><TR><TD COLSPAN=\"{len(columns)}\" "
            f"ALIGN=\"LEFT\"><B>Legend</B></TD></TR><TR>{cells}</TR></TABLE>>")


def _header(text: str, span: int) -> str:
    return f"<TR><TD COLSPAN=\"{span}\" ALIGN=\"LEFT\"><B>{text}</B></TD></TR>"


def _swatch(colour: str, *, style: str = "rounded", fill: str = "white") -> str:
    return (f"<TD BORDER=\"2\" STYLE={quote(style)} COLOR={quote(colour)} BGCOLOR={quote(fill)} "
            "WIDTH=\"30\" HEIGHT=\"16\"> </TD>")


def _double(colour: str) -> str:
    return (f"<TD BORDER=\"0\"><TABLE BORDER=\"1\" CELLBORDER=\"1\" CELLSPACING=\"2\" "
            f"COLOR={quote(colour)} STYLE=\"rounded\"><TR><TD WIDTH=\"22\" HEIGHT=\"8\"> </TD>"
            "</TR></TABLE></TD>")


def _line(colour: str, style: str) -> str:
    return (f"<TD SIDES=\"B\" BORDER=\"3\" STYLE={quote(style)} COLOR={quote(colour)} "
            "WIDTH=\"30\"> </TD>")


def _row(*cells: str) -> str:
    return "<TR>" + "".join(cells) + "</TR>"


def _text(*lines: str) -> str:
    text = "".join(f"{line}<BR ALIGN=\"LEFT\"/>" for line in lines)
    return f"<TD ALIGN=\"LEFT\" BALIGN=\"LEFT\"><FONT POINT-SIZE=\"11\">{text}</FONT></TD>"


def _symbols(view: TopologyView) -> str:
    rows = [_header("Tiers and boxes", 2)]
    rows += [_row(_swatch(TIER_COLOURS[t], fill=TIER_FILLS[t]), _text(f"{t} site (outline)"))
             for t in ("core", "edge", "end")]
    rows += [
        _row(_swatch("#57606a"), _text("box, bordered in its cluster's colour")),
        _row(_double("#57606a"), _text("control plane (double border)")),
        _row(_swatch("#57606a", style="solid"), _text(
            f"site of more than {view.collapse_above} boxes: one node",
            "with counts; --expand SITE draws its boxes")),
    ]
    return SECTION + "".join(rows) + "</TABLE>"


def _clusters(view: TopologyView) -> str:
    if not view.clusters:
        return ""
    rows = [_header("Kubernetes clusters (dashed outline)", 2)]
    for c in view.clusters:
        sites = ", ".join(escape(s) for s in c.sites[:3]) + (
            f" +{len(c.sites) - 3}" if len(c.sites) > 3 else "")
        rows.append(_row(
            _swatch(cluster_colour(view, c.name), style="dashed"),
            _text(f"<B>{escape(c.name)}</B> {c.distribution} {c.version}: "
                  f"{c.control_planes} cp, {c.workers} workers · {sites}"),
        ))
    return SECTION + "".join(rows) + "</TABLE>"


def _planes(view: TopologyView) -> str:
    rows = [_header("Planes (badges on each box)", 2)]
    for p in view.planes:
        extra = [f"mtu {p.mtu}"]
        if p.vlan is not None:
            extra.insert(0, f"vlan {p.vlan}")
        extra.append(f"bridge {escape(p.bridge)}" if p.bridge else "host NIC")
        rows.append(_row(
            f"<TD BGCOLOR={quote(plane_colour(view, p.name))}><FONT COLOR=\"white\" "
            f"POINT-SIZE=\"10\">{escape(p.name)}</FONT></TD>",
            _text(f"{p.purpose} · {p.cidr} · {', '.join(extra)}"),
        ))
    return SECTION + "".join(rows) + "</TABLE>"


def _overlays(view: TopologyView) -> str:
    if not view.overlays:
        return ""
    rows = [_header("VXLAN overlays (panel of site-to-site links)", 2)]
    for o in view.overlays:
        shape = f"hub {escape(o.hub)}" if o.topology == "hub" else "full mesh"
        lines = [f"<B>{escape(o.name)}</B> vni {o.vni} · {shape} over plane {escape(o.plane)} "
                 f"· mtu {o.mtu}", f"{len(o.sites)} sites, {o.tunnels} tunnels"]
        if not o.pairwise:
            lines.append("too many site pairs to draw: one node, a spoke per site")
        rows.append(_row(
            _line(overlay_colour(view, o.name), "dashed" if o.topology == "mesh" else "solid"),
            _text(*lines),
        ))
    return SECTION + "".join(rows) + "</TABLE>"
