"""Cross-checks of the D-N-A section (``dna:``): every reference resolves to boxes that can
do the work, and every retention fits the disk of the box that keeps it."""

from __future__ import annotations

from collections.abc import Iterator

from dnabox.inventory.dna_rules import (
    dna_address,
    dna_network,
    leaf_box,
    pond_site,
    producer_boxes,
    site_boxes,
)
from dnabox.inventory.model import Box, Fleet, Tier, bytes_of
from dnabox.inventory.yaml_source import PathKey
from dnabox.redact import shown

Finding = tuple[PathKey, str]


def _site_problem(fleet: Fleet, name: str, tier: Tier, role: str) -> str:
    site = next((s for s in fleet.sites if s.name == name), None)
    if site is None:
        valid = ", ".join(s.name for s in fleet.sites if s.tier == tier) or "none defined"
        return f"unknown site {shown(name)}; valid {tier} sites: {valid}"
    if site.tier != tier:
        return f"site {name} is in tier {site.tier}; {role} needs a {tier} site"
    if not site_boxes(fleet, name):
        return f"site {name} has no {tier} box; {role} needs one"
    return ""


def _sites_resolve(fleet: Fleet) -> bool:
    """Whether every box's site exists; until then ``references`` reports the cause and
    these checks would only repeat its consequences."""
    sites = {s.name for s in fleet.sites}
    return all(b.site in sites for b in fleet.boxes)


def uplinks_sound(fleet: Fleet) -> Iterator[Finding]:
    """A site's `uplink` is set only on end sites and names an edge site with boxes."""
    if not _sites_resolve(fleet):
        return
    for i, site in enumerate(fleet.sites):
        if site.uplink is None:
            continue
        if site.tier != "end":
            yield ("sites", i, "uplink"), f"only end sites have an uplink; {site.name} is " \
                                          f"{site.tier}"
        elif problem := _site_problem(fleet, site.uplink, "edge", "an uplink"):
            yield ("sites", i, "uplink"), problem


def dna_sound(fleet: Fleet) -> Iterator[Finding]:
    """D-N-A: dataset and model names are unique; the lake is at a core site with boxes;
    every dataset is produced by at least one box, and each producing site has an edge pond
    (an end site through its `uplink`); a model's dataset exists, it is trained at a core
    site with boxes and served at edge sites that have boxes, and at least one retrain
    trigger is on; every box in the data layer has a data-plane or overlay address (D-N-A
    traffic never rides the management plane) and reaches its NATS server on the same
    overlay or plane; a retention fits the disk of the box keeping it, where `disk` is set."""
    dna = fleet.dna
    if dna is None or not _sites_resolve(fleet):
        return
    root: PathKey = ("dna",)
    for section in ("datasets", "models"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(dna, section)):
            if item.name in seen:
                yield (*root, section, i, "name"), (
                    f"duplicate {section[:-1]} name {item.name}: already used at "
                    f"dna.{section}[{seen[item.name]}].name")
            seen.setdefault(item.name, i)
    if not dna.datasets:
        yield (*root, "datasets"), "declare at least one dataset"
    if problem := _site_problem(fleet, dna.lake.site, "core", "the lake"):
        yield (*root, "lake", "site"), problem
    yield from _datasets(fleet)
    yield from _models(fleet)
    yield from _addresses(fleet)
    yield from _disks(fleet)


def _datasets(fleet: Fleet) -> Iterator[Finding]:
    assert fleet.dna is not None
    sites = {s.name: s for s in fleet.sites}
    for i, dataset in enumerate(fleet.dna.datasets):
        path: PathKey = ("dna", "datasets", i, "producers")
        for j, name in enumerate(dataset.producers.sites):
            site = sites.get(name)
            if site is None:
                yield (*path, "sites", j), f"unknown site {shown(name)}; valid: " + ", ".join(
                    s.name for s in fleet.sites if s.tier != "core")
            elif site.tier == "core":
                yield (*path, "sites", j), (
                    f"site {name} is a core site; samples are produced at edge and end sites "
                    "(the core holds the lake)")
        boxes = producer_boxes(fleet, dataset)
        if not boxes:
            yield path, (f"dataset {dataset.name} is produced nowhere: no box is in its "
                         "producer tiers or sites")
        for site_name in sorted({b.site for b in boxes}):
            if fleet.site(site_name).tier == "end" and pond_site(fleet, site_name) is None:
                k = next(k for k, s in enumerate(fleet.sites) if s.name == site_name)
                yield ("sites", k, "uplink"), (
                    f"end site {site_name} produces dataset {dataset.name} but has no uplink "
                    "edge site to keep its pond; set uplink: <edge site>")


def _models(fleet: Fleet) -> Iterator[Finding]:
    assert fleet.dna is not None
    datasets = {d.name for d in fleet.dna.datasets}
    for i, model in enumerate(fleet.dna.models):
        path: PathKey = ("dna", "models", i)
        if model.dataset not in datasets:
            yield (*path, "dataset"), f"unknown dataset {shown(model.dataset)}; valid: " + (
                ", ".join(sorted(datasets)) or "none defined")
        if problem := _site_problem(fleet, model.train_at, "core", "training"):
            yield (*path, "train_at"), problem
        if not model.serve_at:
            yield (*path, "serve_at"), "serve the model at one edge site at least"
        for j, site in enumerate(model.serve_at):
            if problem := _site_problem(fleet, site, "edge", "inference"):
                yield (*path, "serve_at", j), problem
            elif site in model.serve_at[:j]:
                yield (*path, "serve_at", j), f"site {site} is listed twice"
        if model.retrain.every_samples == 0 and model.retrain.every_seconds == 0:
            yield (*path, "retrain"), ("no retrain trigger is on: set every_samples or "
                                       "every_seconds above 0")


def _participants(fleet: Fleet) -> Iterator[tuple[Box, Box | None]]:
    """(box, the box running the NATS server it talks to) for every box of the data layer;
    the hub boxes talk to themselves (None)."""
    assert fleet.dna is not None
    hub = site_boxes(fleet, fleet.dna.lake.site)
    yield from ((b, None) for b in hub)
    hub_box = hub[0] if hub else None
    ponds = set()
    for dataset in fleet.dna.datasets:
        for box in producer_boxes(fleet, dataset):
            pond = pond_site(fleet, box.site)
            leaf = leaf_box(fleet, pond) if pond else None
            if pond:
                ponds.add(pond)
            if leaf is not None and leaf is not box:
                yield box, leaf
    for model in fleet.dna.models:
        ponds.update(s for s in model.serve_at
                     if any(x.name == s and x.tier == "edge" for x in fleet.sites))
        for box in site_boxes(fleet, model.train_at):
            if hub_box is not None and box not in hub:
                yield box, hub_box
    for pond in sorted(ponds):
        leaf = leaf_box(fleet, pond)
        if leaf is not None:
            yield leaf, hub_box


def _addresses(fleet: Fleet) -> Iterator[Finding]:
    reported: set[str] = set()
    for box, server in _participants(fleet):
        if box.name in reported:
            continue
        i = fleet.boxes.index(box)
        if dna_address(fleet, box) is None:
            reported.add(box.name)
            yield ("boxes", i, "interfaces"), (
                f"box {box.name} is part of the D-N-A layer but has no overlay address or "
                "data-plane interface (its traffic must not ride the management plane)")
        elif server is not None and dna_address(fleet, server) is not None:
            mine, theirs = dna_network(fleet, box), dna_network(fleet, server)
            if mine != theirs:
                reported.add(box.name)
                yield ("boxes", i, "overlay_addresses"), (
                    f"box {box.name} reaches D-N-A over {mine} but its NATS server "
                    f"{server.name} listens on {theirs}; put both on the same overlay")


def _disks(fleet: Fleet) -> Iterator[Finding]:
    assert fleet.dna is not None
    per_pond: dict[str, list[int]] = {}
    for i, dataset in enumerate(fleet.dna.datasets):
        for pond in {pond_site(fleet, b.site) for b in producer_boxes(fleet, dataset)}:
            if pond is not None:
                per_pond.setdefault(pond, []).append(i)
    for pond, indexes in sorted(per_pond.items()):
        leaf = leaf_box(fleet, pond)
        if leaf is None or leaf.disk is None:
            continue
        total = 0
        for i in indexes:
            total += bytes_of(fleet.dna.datasets[i].retention.max_bytes)
            if total > bytes_of(leaf.disk):
                yield ("dna", "datasets", i, "retention", "max_bytes"), (
                    f"the ponds of {pond} need {_human(total)} on box {leaf.name}, which has "
                    f"disk {leaf.disk}; lower the retention or give the box more disk")
                break
    lake_total = bytes_of(fleet.dna.lake.retention.max_bytes) * len(fleet.dna.datasets)
    for box in site_boxes(fleet, fleet.dna.lake.site):
        if box.disk is not None and lake_total > bytes_of(box.disk):
            yield ("dna", "lake", "retention", "max_bytes"), (
                f"the lake needs {_human(lake_total)} ({len(fleet.dna.datasets)} datasets) on "
                f"box {box.name}, which has disk {box.disk}; lower the retention")
            break


def _human(size: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return f"{size}B"
