"""Runtimes: one RuntimeClass per runtime the cluster enables and some node hosts.

``handler`` is read from ``dnabox.plan.runtimes.RUNTIMES``, the table the containerd config
is rendered from, so a RuntimeClass can never name a runtime containerd does not have.
"""

from __future__ import annotations

from dnabox.inventory.model import Cluster, Fleet
from dnabox.layers.manifests import Manifest, meta
from dnabox.plan.runtimes import HARDWARE_RUNTIMES, RUNTIMES, RuntimeSpec, runtimes_for


def hosted_runtimes(fleet: Fleet, cluster: Cluster) -> list[RuntimeSpec]:
    """Enabled runtimes installed on at least one member, in the cluster's order.

    A class no node can run would leave its pods Pending forever (end devices, for
    instance, host neither Kata nor Apptainer). The ``nvidia`` class exists only where a
    member's containerd has the handler (a box that declares NVIDIA GPUs).
    """
    present = {
        spec.name for name in cluster.members for spec in runtimes_for(fleet, fleet.box(name))
    }
    return [RUNTIMES[name] for name in (*cluster.runtimes, *HARDWARE_RUNTIMES)
            if name in present]


def runtime_class(spec: RuntimeSpec) -> Manifest:
    manifest: Manifest = {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": meta(spec.name, labels={"dnabox.io/runtime": spec.name}),
        "handler": spec.handler,
        # Only nodes labelled with the runtime (tier baseline) have it installed.
        "scheduling": {"nodeSelector": {spec.node_label: "true"}},
    }
    overhead = {
        resource: amount
        for resource, amount in (("cpu", spec.overhead_cpu), ("memory", spec.overhead_memory))
        if amount
    }
    if overhead:
        manifest["overhead"] = {"podFixed": overhead}
    return manifest


def runtime_classes(fleet: Fleet, cluster: Cluster) -> list[Manifest]:
    return [runtime_class(spec) for spec in hosted_runtimes(fleet, cluster)]
