"""`dnabox inventory graph`: the layout by tier at 12, 100 and 1,000 boxes, read back from
the SVG that Graphviz draws (ids, classes, positions and the picture's size)."""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from typer.testing import CliRunner

from dnabox.adapters.graphviz import topology_dot
from dnabox.cli.app import app
from dnabox.errors import DnaboxError
from dnabox.inventory import Fleet, load_fleet
from dnabox.plan.network import overlay_peers
from dnabox.plan.topology import (
    COLLAPSE_ABOVE,
    grid_columns,
    topology_view,
    tunnels_by_site_pair,
)

ROOT = Path(__file__).resolve().parents[3]
SVG = "{http://www.w3.org/2000/svg}"
SAMPLE = "inventory/smartx-playground.yaml"
# The 100-box picture of docs/CONCEPTS.md: one core site, three edge sites, two end sites.
LAYOUT_100 = [("core", 12), ("edge", 16), ("edge", 16), ("edge", 16), ("end", 20), ("end", 20)]

runner = CliRunner()
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")


def _bench_fleet_module(repo_root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fleet", repo_root / "bench/fleet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Any], Path]:
    """Write a generated fleet (bench/fleet.py) as YAML, so it goes through the loader."""
    bench = _bench_fleet_module(ROOT)
    directory = tmp_path_factory.mktemp("fleets")

    def write(name: str, layout: Any) -> Path:
        path = directory / f"{name}.yaml"
        if not path.exists():
            path.write_text(yaml.safe_dump(bench.tiered_fleet(layout, name), sort_keys=False))
        return path

    return write


@pytest.fixture(scope="module")
def big(fleet_file: Callable[[str, Any], Path]) -> Path:
    """1,000 boxes: 20 sites of 50 (2 core, 10 edge, 8 end)."""
    return fleet_file("wall", _bench_fleet_module(ROOT).tier_layout(20, 50))


@pytest.fixture(scope="module")
def big_fleet(big: Path) -> Fleet:
    return load_fleet(big)


@pytest.fixture(scope="module")
def sample_svg(tmp_path_factory: pytest.TempPathFactory) -> ElementTree.Element:
    """The 12-box sample, drawn once for the tests that read it."""
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is missing")
    return draw(ROOT / SAMPLE, tmp_path_factory.mktemp("sample") / "sample.svg")


def draw(fleet: Path, out: Path, *options: str) -> ElementTree.Element:
    result = runner.invoke(app, ["inventory", "graph", str(fleet), "-o", str(out), *options])
    assert result.exit_code == 0, result.output
    return ElementTree.parse(out).getroot()


def ids(svg: ElementTree.Element) -> dict[str, ElementTree.Element]:
    return {g.get("id", ""): g for g in svg.iter(f"{SVG}g")}


def classes(element: ElementTree.Element) -> set[str]:
    return set(element.get("class", "").split())


def size_pt(svg: ElementTree.Element) -> tuple[float, float]:
    return float(svg.get("width", "").removesuffix("pt")), float(
        svg.get("height", "").removesuffix("pt"))


def vertical_span(group: ElementTree.Element) -> tuple[float, float]:
    """Top and bottom of a node's or cluster's outline, in SVG coordinates (y grows down)."""
    shape = next(e for e in group if e.tag in (f"{SVG}polygon", f"{SVG}path"))
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?",
                                            shape.get("points") or shape.get("d") or "")]
    ys = numbers[1::2]
    return min(ys), max(ys)


def texts(svg: ElementTree.Element) -> str:
    return "\n".join(t.text or "" for t in svg.iter(f"{SVG}text"))


# --- the 12-box sample ------------------------------------------------------------------

def test_the_12_box_sample_shows_every_box_with_its_addresses(
    repo_root: Path, sample_svg: ElementTree.Element
) -> None:
    fleet = load_fleet(repo_root / SAMPLE)
    found, text = ids(sample_svg), texts(sample_svg)
    for box in fleet.boxes:
        node = found[f"box-{box.name}"]
        assert {"node", "box", f"tier-{fleet.tier_of(box)}", f"size-{box.size}"} <= classes(node)
        assert str(box.interfaces["D"].address) in text
    cp = found["box-core-gist-1"]
    assert {"k8s-core", "control-plane"} <= classes(cp)
    assert {"k8s-edge-kaist", "worker"} <= classes(found["box-edge-kaist-2"])


def test_tiers_are_rows_core_on_top_end_at_the_bottom(
    repo_root: Path, sample_svg: ElementTree.Element
) -> None:
    fleet = load_fleet(repo_root / SAMPLE)
    found = ids(sample_svg)
    spans: dict[str, list[tuple[float, float]]] = {tier: [] for tier in ("core", "edge", "end")}
    for site in fleet.sites:
        spans[site.tier].append(vertical_span(found[f"site-{site.name}"]))
    assert max(b for _, b in spans["core"]) < min(t for t, _ in spans["edge"])
    assert max(b for _, b in spans["edge"]) < min(t for t, _ in spans["end"])
    for tier in ("core", "edge", "end"):
        assert {"tier", f"tier-{tier}"} <= classes(found[f"tier-{tier}"])


def test_clusters_are_outlined_in_every_site_they_reach(
    repo_root: Path, sample_svg: ElementTree.Element
) -> None:
    fleet = load_fleet(repo_root / SAMPLE)
    found = ids(sample_svg)
    for cluster in fleet.clusters:
        for site in {fleet.box(member).site for member in cluster.members}:
            outline = found[f"k8s-{cluster.name}__{site}"]
            assert {"cluster", "k8s", f"k8s-{cluster.name}"} <= classes(outline)
            drawn = {g.get("id") for g in outline.iter(f"{SVG}g")}
            assert drawn == {f"k8s-{cluster.name}__{site}"}  # the outline, not its boxes
    # edge-kaist spans its edge site and the end site of its NUC workers: two outlines.
    assert {"k8s-edge-kaist__kaist-edge", "k8s-edge-kaist__gist-end"} <= set(found)


def test_the_legend_names_tiers_clusters_planes_and_overlays(
    repo_root: Path, sample_svg: ElementTree.Element
) -> None:
    fleet = load_fleet(repo_root / SAMPLE)
    legend = ids(sample_svg)["legend"]
    text = texts(legend)
    assert "Legend" in text
    for name in [*(c.name for c in fleet.clusters), *(o.name for o in fleet.overlays),
                 *(p.name for p in fleet.planes), *(str(p.cidr) for p in fleet.planes)]:
        assert name in text, name
    assert f"more than {COLLAPSE_ABOVE} boxes" in text


def test_overlay_links_join_sites_with_their_tunnel_counts(
    sample_svg: ElementTree.Element,
) -> None:
    found = ids(sample_svg)
    # Mesh of 12 boxes: gist-core's 3 boxes and kaist-edge's 2 are 6 tunnels.
    link = found["link-xplane__gist-core__kaist-edge"]
    assert {"edge", "overlay-link", "overlay-xplane"} <= classes(link)
    assert texts(link) == "6"
    assert sum(1 for i in found if i.startswith("link-xplane__")) == 10  # 5 sites, all pairs


# --- the picture as data (no Graphviz needed) ------------------------------------------

def test_tunnels_are_counted_per_site_pair_from_the_overlay_plan(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / SAMPLE)
    view = topology_view(fleet)
    counts = {(link.a, link.b): link.tunnels for link in view.links}
    assert counts[("gist-core", "gist-end")] == 9
    assert counts[("kaist-edge", "postech-edge")] == 4
    overlay = view.overlays[0]
    inner = sum(n for site in view.sites for _, n in site.inner_tunnels)
    assert overlay.tunnels == 12 * 11 // 2 == sum(counts.values()) + inner
    assert overlay.pairwise


@pytest.mark.parametrize("layout", [None, LAYOUT_100])
def test_tunnel_counts_agree_with_the_tunnel_plan(
    repo_root: Path, fleet_file: Callable[[str, Any], Path], layout: Any
) -> None:
    """The mesh shortcut counts what listing every box's VXLAN peers would count."""
    fleet = load_fleet(repo_root / SAMPLE if layout is None else fleet_file("hub", layout))
    for overlay in fleet.overlays:
        members = [b for b in fleet.boxes if overlay.name in b.overlay_addresses]
        listed: Counter[tuple[str, str]] = Counter()
        for box in members:
            for peer in overlay_peers(fleet, overlay, box):
                listed[min(box.site, peer.site), max(box.site, peer.site)] += 1
        assert tunnels_by_site_pair(fleet, overlay, members) == Counter(
            {pair: n // 2 for pair, n in listed.items()})


def test_a_hub_overlay_links_only_the_hub_site(
    fleet_file: Callable[[str, Any], Path],
) -> None:
    view = topology_view(load_fleet(fleet_file("hub", LAYOUT_100)))
    hub = next(o for o in view.overlays if o.name == "telemetry")
    links = [link for link in view.links if link.overlay == "telemetry"]
    assert hub.topology == "hub" and hub.hub == "core-1-1"
    assert {(link.a, link.b, link.tunnels) for link in links} == {
        ("core-1", "end-1", 20), ("core-1", "end-2", 20)}


def test_a_mesh_over_too_many_site_pairs_is_not_drawn_pair_by_pair(big_fleet: Fleet) -> None:
    view = topology_view(big_fleet)
    mesh = next(o for o in view.overlays if o.name == "dataplane")
    assert len(mesh.sites) == 20 and not mesh.pairwise
    assert mesh.tunnels == 1000 * 999 // 2


def test_sites_above_the_threshold_collapse_unless_expanded(big_fleet: Fleet) -> None:
    fleet = big_fleet
    view = topology_view(fleet)
    assert not any(site.expanded for site in view.sites)
    site = next(s for s in view.sites if s.name == "edge-3")
    assert site.boxes == 50 and site.sizes == (("medium", 50),)
    assert [(r.cluster, r.control_planes, r.workers) for r in site.roles] == [
        ("k8s-edge-3", 1, 49)]
    opened = topology_view(fleet, expand=["edge-3"])
    assert [s.name for s in opened.sites if s.expanded] == ["edge-3"]
    assert [len(g.boxes) for s in opened.sites for g in s.groups] == [50]
    assert all(s.expanded for s in topology_view(fleet, collapse_above=50).sites)


def test_expanding_an_unknown_site_names_the_sites(repo_root: Path) -> None:
    with pytest.raises(DnaboxError, match="no site 'nowhere'") as caught:
        topology_view(load_fleet(repo_root / SAMPLE), expand=["nowhere"])
    assert "gist-core" in caught.value.hint


def test_rows_of_sites_wrap_and_keep_the_inventorys_order(big_fleet: Fleet) -> None:
    view = topology_view(big_fleet)
    edge = next(band for band in view.tiers if band.tier == "edge")
    assert [[s.name for s in row] for row in edge.rows] == [
        [f"edge-{n}" for n in range(1, 6)], [f"edge-{n}" for n in range(6, 11)]]
    assert [band.tier for band in view.tiers] == ["core", "edge", "end"]


def test_grids_are_wider_than_tall_and_detailed_boxes_fewer_per_row() -> None:
    assert grid_columns(50, detailed=False) == 10
    assert grid_columns(16, detailed=False) == 6
    assert grid_columns(3, detailed=True) == 3
    assert grid_columns(12, detailed=True) == 4
    assert grid_columns(1, detailed=False) == 1


def test_a_site_without_boxes_is_drawn_as_a_node(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / SAMPLE)
    data = fleet.model_dump(mode="json")
    data["sites"].append({"name": "empty-edge", "tier": "edge"})
    view = topology_view(Fleet.model_validate(data))
    empty = next(s for s in view.sites if s.name == "empty-edge")
    assert (empty.boxes, empty.expanded) == (0, False)
    assert '"site:empty-edge" [id="site-empty-edge"' in topology_dot(view)


def test_the_dot_source_is_deterministic(big_fleet: Fleet) -> None:
    assert topology_dot(topology_view(big_fleet)) == topology_dot(topology_view(big_fleet))


# --- 100 and 1,000 boxes through the CLI ------------------------------------------------

@needs_dot
def test_1000_boxes_stay_a_picture_of_sites_of_sane_size(
    big: Path, big_fleet: Fleet, tmp_path: Path
) -> None:
    fleet = big_fleet
    svg = draw(big, tmp_path / "big.svg")
    width, height = size_pt(svg)
    # One row of 1,000 boxes would be ~230,000 pt wide; a wall poster is a few thousand.
    assert width <= 4000 and height <= 2000, (width, height)
    found = ids(svg)
    assert not [i for i in found if i.startswith("box-")]
    for site in fleet.sites:
        node = found[f"site-{site.name}"]
        assert {"node", "site", f"tier-{site.tier}", "collapsed"} <= classes(node)
        assert f"{sum(1 for b in fleet.boxes if b.site == site.name)} boxes" in texts(node)
    assert {"overlay-dataplane", "overlay-telemetry"} <= {
        c for i, g in found.items() if i.startswith("link-") for c in classes(g)}


@needs_dot
def test_expand_opens_the_named_sites_only(big: Path, big_fleet: Fleet, tmp_path: Path) -> None:
    fleet = big_fleet
    svg = draw(big, tmp_path / "open.svg", "--expand", "edge-3", "--expand", "end-1")
    found = ids(svg)
    boxes = {i.removeprefix("box-") for i in found if i.startswith("box-")}
    assert boxes == {b.name for b in fleet.boxes if b.site in ("edge-3", "end-1")}
    assert {"cluster", "site", "expanded"} <= classes(found["site-edge-3"])
    assert "collapsed" in classes(found["site-edge-4"])
    width, height = size_pt(svg)
    assert width <= 6000 and height <= 2500, (width, height)


@needs_dot
def test_100_boxes_show_every_site_and_their_boxes(
    fleet_file: Callable[[str, Any], Path], tmp_path: Path
) -> None:
    path = fleet_file("hundred", LAYOUT_100)
    fleet = load_fleet(path)
    svg = draw(path, tmp_path / "hundred.svg")
    found = ids(svg)
    for site in fleet.sites:
        assert f"site-{site.name}" in found
    shown = {i.removeprefix("box-") for i in found if i.startswith("box-")}
    # Up to 16 boxes a site is drawn box by box; the two end sites of 20 collapse.
    assert shown == {b.name for b in fleet.boxes if not b.site.startswith("end-")}
    width, height = size_pt(svg)
    assert width <= 4000 and height <= 1500, (width, height)


def test_expand_of_an_unknown_site_is_a_usage_error(repo_root: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["inventory", "graph", str(repo_root / SAMPLE), "-o",
                                 str(tmp_path / "x.svg"), "--expand", "nowhere"])
    assert result.exit_code == 2
    assert "no site 'nowhere'" in result.stderr
    assert not (tmp_path / "x.svg").exists()


@needs_dot
def test_png_output(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    result = runner.invoke(app, ["inventory", "graph", str(repo_root / SAMPLE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width < 2 * 3029 and height > 3 * 385  # laid out in rows now, not one long row


@needs_dot
def test_a_fleet_without_overlays_or_clusters_still_draws(repo_root: Path, tmp_path: Path) -> None:
    data = load_fleet(repo_root / SAMPLE).model_dump(mode="json")
    data["overlays"], data["clusters"] = [], []
    for box in data["boxes"]:
        box["overlay_addresses"] = {}
    path = tmp_path / "bare.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    found = ids(draw(path, tmp_path / "bare.svg"))
    assert "legend" in found and "overlays" not in found
    assert not [i for i in found if i.startswith(("k8s-", "link-"))]
    assert {f"box-{b['name']}" for b in data["boxes"]} <= set(found)
