"""A Graphviz picture of the fleet: sites as clusters, boxes, planes and overlay tunnels."""

from __future__ import annotations

from dnabox.inventory.model import Fleet
from dnabox.plan.network import underlay_ip

TIER_COLOURS = {"core": "#1f6feb", "edge": "#2da44e", "end": "#bf8700"}


def _quote(text: str) -> str:
    # Backslashes pass through: labels use Graphviz's own "\\n" line breaks.
    return '"' + text.replace('"', '\\"') + '"'


def topology_dot(fleet: Fleet) -> str:
    """DOT source; deterministic, so the picture only changes when the fleet does."""
    lines = [
        f"graph {_quote(fleet.name)} {{",
        "  graph [rankdir=TB, fontname=Helvetica, compound=true, "
        f"label={_quote(f'dnabox fleet {fleet.name}')}, labelloc=t];",
        "  node [shape=box, style=\"rounded,filled\", fontname=Helvetica, fillcolor=white];",
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    for index, site in enumerate(fleet.sites):
        colour = TIER_COLOURS[site.tier]
        lines.append(f"  subgraph cluster_{index} {{")
        label = f"{site.name} ({site.tier}{', ' + site.region if site.region else ''})"
        lines.append(f"    label={_quote(label)}; color={_quote(colour)}; penwidth=2;")
        for box in (b for b in fleet.boxes if b.site == site.name):
            planes = "\\n".join(
                f"{plane}: {iface.address}" for plane, iface in sorted(box.interfaces.items())
            )
            cluster = fleet.cluster_of(box.name)
            role = ""
            if cluster is not None:
                role = "control plane" if box.name in cluster.control_planes else "worker"
                role = f"\\n{cluster.name} {role}"
            label = f"{box.name}\\n{box.address} ({box.size}){role}"
            if planes:
                label += f"\\n{planes}"
            lines.append(
                f"    {_quote(box.name)} [label={_quote(label)}, color={_quote(colour)}];"
            )
        lines.append("  }")
    # One node per overlay instead of every tunnel: a 12-box mesh is 66 edges that
    # nobody can read; the node shows the same membership at a glance.
    for overlay in fleet.overlays:
        node = f"overlay:{overlay.name}"
        label = f"{overlay.name}\\nVXLAN vni {overlay.vni} ({overlay.topology})\\nmtu {overlay.mtu}"
        lines.append(
            f"  {_quote(node)} [shape=ellipse, style=dashed, color=\"#8250df\", "
            f"label={_quote(label)}];"
        )
        for box in fleet.boxes:
            if overlay.name not in box.overlay_addresses:
                continue
            hub = overlay.topology == "hub" and box.name == overlay.hub
            lines.append(
                f"  {_quote(box.name)} -- {_quote(node)} [style={'bold' if hub else 'dashed'}, "
                f"color=\"#8250df\", label={_quote(underlay_ip(fleet, overlay, box))}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"
