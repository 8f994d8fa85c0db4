"""Kubernetes node labels and taints per box, derived from tier, site and runtimes."""

from __future__ import annotations

from dataclasses import dataclass

from dnabox.inventory.model import Box, Fleet
from dnabox.plan.accelerators import gpu_labels
from dnabox.plan.runtimes import runtimes_for

TIER_LABEL = "dnabox.io/tier"
SITE_LABEL = "dnabox.io/site"
# Tiers whose nodes repel general workloads; pods opt in with a toleration.
TAINTED_TIERS = {"edge": "NoSchedule", "end": "NoSchedule"}


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class NodeLayout:
    name: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]


def node_layout(fleet: Fleet, box: Box) -> NodeLayout:
    site = fleet.site(box.site)
    labels = {
        TIER_LABEL: site.tier,
        SITE_LABEL: site.name,
        f"node-role.kubernetes.io/{site.tier}": "",
        "topology.kubernetes.io/zone": site.name,
        "dnabox.io/size": box.size,
    }
    if site.region:
        labels["topology.kubernetes.io/region"] = site.region
    for runtime in runtimes_for(fleet, box):
        labels[runtime.node_label] = "true"
    labels.update(gpu_labels(box))
    taints: tuple[Taint, ...] = ()
    if site.tier in TAINTED_TIERS:
        taints = (Taint(f"node-role.kubernetes.io/{site.tier}", "", TAINTED_TIERS[site.tier]),)
    return NodeLayout(box.name, labels, taints)
