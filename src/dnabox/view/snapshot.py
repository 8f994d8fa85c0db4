"""What the view shows, as plain data: built from the fleet and the boxes' readings.

Pure functions, no I/O: the server reads the boxes (``provision.inspect``) and hands the
readings here. Nothing secret is copied in: no key paths, no kubeconfigs, no credentials;
only names, addresses, states and role reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dnabox.inventory.model import Fleet
from dnabox.plan.network import overlay_peers
from dnabox.provision.inspect import BoxReading

BoxState = Literal["converged", "pending", "drifted", "failed", "unreachable", "locked",
                   "unknown"]
# Worst first: a box shows the worst thing that is true of it.
SEVERITY: tuple[BoxState, ...] = ("failed", "unreachable", "drifted", "pending", "locked",
                                  "unknown", "converged")


@dataclass(frozen=True)
class LinkReading:
    """One site-to-site overlay link, as measured from the first box of ``a``."""

    a: str
    b: str
    latency_ms: float | None
    loss: float  # 0..1; 1 is a cut link

    def as_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "latency_ms": self.latency_ms, "loss": self.loss}


@dataclass
class LiveState:
    """What the server knows now: the last readings, the failures of the last run, links."""

    readings: dict[str, BoxReading] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    locked: bool = False
    links: dict[tuple[str, str], LinkReading] = field(default_factory=dict)
    read_at: float | None = None


def box_state(reading: BoxReading | None, *, failed: bool, locked: bool) -> BoxState:
    if failed:
        return "failed"
    if reading is None:
        return "locked" if locked else "unknown"
    if reading.state is None:
        return "unreachable"
    reasons = {d.reason for d in reading.decisions if d.needs_run}
    if "drifted" in reasons:
        return "drifted"
    if reasons:
        return "pending"
    return "locked" if locked else "converged"


def site_links(fleet: Fleet) -> list[tuple[str, str]]:
    """Site pairs joined by an overlay tunnel, each pair once, in a stable order."""
    pairs: set[tuple[str, str]] = set()
    for overlay in fleet.overlays:
        for box in fleet.boxes:
            for peer in overlay_peers(fleet, overlay, box):
                if peer.site != box.site:
                    a, b = sorted((box.site, peer.site))
                    pairs.add((a, b))
    return sorted(pairs)


def clusters_of(fleet: Fleet) -> dict[str, list[str]]:
    return {c.name: [*c.control_planes, *c.workers] for c in fleet.clusters}


def fleet_json(fleet: Fleet, live: LiveState) -> dict[str, Any]:
    """``/api/fleet``: sites by tier, boxes with their live state, clusters and links."""
    cluster_of = {box: name for name, members in clusters_of(fleet).items() for box in members}
    boxes = []
    for box in fleet.boxes:
        reading = live.readings.get(box.name)
        state = box_state(reading, failed=box.name in live.failed, locked=live.locked)
        boxes.append({
            "name": box.name, "site": box.site, "tier": fleet.site(box.site).tier,
            "cluster": cluster_of.get(box.name), "address": str(box.address), "state": state,
            "pending": [d.role for d in reading.decisions if d.needs_run] if reading else [],
            "error": reading.error if reading and reading.error else None,
        })
    sites = []
    for site in fleet.sites:
        members = [b for b in boxes if b["site"] == site.name]
        counts: dict[str, int] = {}
        for member in members:
            key = str(member["state"])
            counts[key] = counts.get(key, 0) + 1
        sites.append({"name": site.name, "tier": site.tier, "boxes": len(members),
                      "states": counts, "state": worst(counts)})
    links = []
    for a, b in site_links(fleet):
        measured = live.links.get((a, b))
        links.append(measured.as_json() if measured else
                     {"a": a, "b": b, "latency_ms": None, "loss": None})
    return {
        "schema": "dnabox/v1", "fleet": fleet.name, "read_at": live.read_at,
        "locked": live.locked, "sites": sites, "boxes": boxes,
        "clusters": [{"name": n, "boxes": m} for n, m in clusters_of(fleet).items()],
        "links": links,
    }


def worst(counts: Mapping[str, int]) -> BoxState:
    for state in SEVERITY:
        if counts.get(state):
            return state
    return "unknown"


def box_json(fleet: Fleet, name: str, reading: BoxReading | None,
             desired: Mapping[str, str], events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``/api/box/NAME``: roles with their stored and desired fingerprints, drift, facts."""
    box = fleet.box(name)
    stored = reading.state.fingerprints if reading and reading.state else {}
    roles = []
    for decision in reading.decisions if reading else ():
        roles.append({"role": decision.role, "reason": decision.reason,
                      "stale": decision.needs_run, "stored": stored.get(decision.role),
                      "desired": desired.get(decision.role)})
    facts = None
    if reading and reading.state:
        f = reading.state.facts
        facts = {"hostname": f.hostname, "kernel": f.kernel, "arch": f.arch, "cpus": f.cpus,
                 "memory_kb": f.memory_kb, "os": f.os_id, "release": f.os_codename or "-",
                 "containerd": f.containerd or "none"}
    return {
        "schema": "dnabox/v1", "name": name, "site": box.site,
        "tier": fleet.site(box.site).tier, "address": str(box.address),
        "state": box_state(reading, failed=False, locked=False),
        "error": reading.error if reading and reading.error else None,
        "roles": roles, "facts": facts,
        "drift": dict(reading.diffs) if reading else {},
        "events": [e for e in events if e.get("box") == name][-200:],
    }
