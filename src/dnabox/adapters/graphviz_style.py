"""Colours, fonts and escaping shared by the topology picture and its legend."""

from __future__ import annotations

from dnabox.plan.topology import TopologyView

FONT = "Helvetica"
TIER_COLOURS = {"core": "#1f6feb", "edge": "#2da44e", "end": "#bf8700"}
TIER_FILLS = {"core": "#f0f6ff", "edge": "#f0fbf3", "end": "#fff8e5"}
TIER_TITLES = {
    "core": "training, data lake,<BR/>control planes",
    "edge": "inference near users<BR/>(MEC sites)",
    "end": "devices on site",
}
CLUSTER_FILL = "#fbfbfd"
# Kubernetes clusters, overlays and planes each cycle through their own palette, away
# from the three tier colours; the legend names what each colour stands for.
CLUSTER_COLOURS = ("#cf222e", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#4d2d00",
                   "#6e7781", "#0550ae", "#116329", "#7d4e00", "#a40e26", "#512a97")
OVERLAY_COLOURS = ("#8250df", "#bf3989", "#1b7c83", "#953800")
PLANE_COLOURS = ("#57606a", "#9a6700", "#0a7ea4", "#6639ba", "#a40e26")


def _pick(palette: tuple[str, ...], names: list[str], name: str) -> str:
    return palette[names.index(name) % len(palette)]


def cluster_colour(view: TopologyView, cluster: str) -> str:
    return _pick(CLUSTER_COLOURS, [c.name for c in view.clusters], cluster)


def overlay_colour(view: TopologyView, overlay: str) -> str:
    return _pick(OVERLAY_COLOURS, [o.name for o in view.overlays], overlay)


def plane_colour(view: TopologyView, plane: str) -> str:
    return _pick(PLANE_COLOURS, [p.name for p in view.planes], plane)


def quote(text: str) -> str:
    """A DOT string; backslashes pass through for Graphviz's own escapes."""
    return '"' + text.replace('"', '\\"') + '"'


def escape(text: str) -> str:
    """Text inside an HTML-like label."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
