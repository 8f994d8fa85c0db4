"""Tier baseline: namespaces per tier and the labels and taints of every node.

Nodes are created by the bootstrap (kubelet registers them), so the layer patches them with
server-side apply instead of creating them.
"""

from __future__ import annotations

from dnabox.inventory.model import Cluster, Fleet, Tier
from dnabox.layers.manifests import SYSTEM_NAMESPACE, Manifest, meta
from dnabox.plan.labels import Taint, node_layout

# The D-N-A workload namespaces each tier hosts: training and the data lake in the core,
# inference and data ponds at the edge. End devices only ever join other tiers' clusters.
TIER_NAMESPACES: dict[str, tuple[str, ...]] = {
    "core": ("training", "data-lake"),
    "edge": ("inference", "data-pond"),
    "end": (),
}
CLUSTER_LABEL = "dnabox.io/cluster"
CONTROL_PLANE_TAINT = Taint("node-role.kubernetes.io/control-plane", "", "NoSchedule")
# spec.taints is an atomic list: a server-side apply owns it whole, and kubeadm already owns
# it (control-plane taint). Forcing makes the patch the single owner of the list it sends.
PATCH_FORCE = {"pulumi.com/patchForce": "true"}


def cluster_tier(fleet: Fleet, cluster: Cluster) -> Tier:
    """The tier a cluster serves: the tier of its (first) control plane."""
    return fleet.tier_of(fleet.box(cluster.control_planes[0]))


def workload_namespaces(fleet: Fleet, cluster: Cluster) -> tuple[str, ...]:
    return TIER_NAMESPACES[cluster_tier(fleet, cluster)]


def namespaces(
    fleet: Fleet,
    cluster: Cluster,
    workload_labels: dict[str, str] | None = None,
    workload_annotations: dict[str, str] | None = None,
) -> list[Manifest]:
    """dnabox-system plus the tier's workload namespaces (which the mesh enrols)."""
    tier = cluster_tier(fleet, cluster)
    common = {"dnabox.io/tier": tier, CLUSTER_LABEL: cluster.name}
    result = [_namespace(SYSTEM_NAMESPACE, common, None)]
    for name in workload_namespaces(fleet, cluster):
        labels = {**common, **(workload_labels or {})}
        result.append(_namespace(name, labels, workload_annotations))
    return result


def node_taints(fleet: Fleet, cluster: Cluster, box_name: str) -> list[Taint]:
    """The complete taint list of a node (the patch replaces the whole list).

    A tier taint only makes sense where the node's tier differs from the cluster's: an end
    device in an edge cluster repels general pods, but tainting every node of an edge-only
    cluster would leave nothing (CoreDNS included) schedulable. kubeadm's control-plane taint
    is kept when the cluster has workers to run pods, and dropped when the control planes are
    the only nodes.
    """
    box = fleet.box(box_name)
    taints: list[Taint] = []
    if fleet.tier_of(box) != cluster_tier(fleet, cluster):
        taints.extend(node_layout(fleet, box).taints)
    if cluster.distribution == "kubeadm" and box_name in cluster.control_planes and cluster.workers:
        taints.append(CONTROL_PLANE_TAINT)
    return taints


def node_patches(fleet: Fleet, cluster: Cluster) -> list[Manifest]:
    """A Node patch per cluster member: plan labels and the node's full taint list."""
    patches = []
    for name in cluster.members:
        layout = node_layout(fleet, fleet.box(name))
        taints = [
            {"key": t.key, "value": t.value, "effect": t.effect}
            for t in node_taints(fleet, cluster, name)
        ]
        patches.append({
            "apiVersion": "v1",
            "kind": "Node",
            # No managed-by label: the node is not ours, only these fields are.
            "metadata": {"name": name, "labels": dict(layout.labels),
                         "annotations": dict(PATCH_FORCE)},
            "spec": {"taints": taints},
        })
    return patches


def _namespace(
    name: str, labels: dict[str, str], annotations: dict[str, str] | None
) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": meta(name, labels=labels, annotations=annotations)}
