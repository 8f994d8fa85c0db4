"""GPUs: which boxes hold them, the labels their nodes carry, and what a GPU workload asks.

A box declaring an NVIDIA accelerator gets the NVIDIA container toolkit (artifact
``nvidia-container-toolkit``), the ``nvidia`` runtime handler and CDI (role
container_runtime); its node carries the labels below; its cluster gets the ``nvidia``
RuntimeClass and the device plugin (or the GPU Operator). ``gpu_workload`` is the one answer
to "how does a training pod get GPUs on this cluster", for the D-N-A layer to call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dnabox.inventory.model import Box, Cluster, Fleet

NVIDIA_RESOURCE = "nvidia.com/gpu"
# The label the NVIDIA device plugin / GPU Operator select their nodes with.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
ACCELERATOR_LABEL = "dnabox.io/accelerator"
GPU_COUNT_LABEL = "dnabox.io/gpu-count"
GPU_MODEL_LABEL = "dnabox.io/gpu-model"
TOOLKIT_ARTIFACT = "nvidia-container-toolkit"


def has_nvidia(box: Box) -> bool:
    return any(a.vendor == "nvidia" for a in box.accelerators)


def nvidia_gpus(box: Box) -> int:
    return sum(a.count for a in box.accelerators if a.vendor == "nvidia")


def gpu_labels(box: Box) -> dict[str, str]:
    """Node labels of a box with NVIDIA GPUs (none for other boxes)."""
    if not has_nvidia(box):
        return {}
    labels = {GPU_PRESENT_LABEL: "true", ACCELERATOR_LABEL: "nvidia",
              GPU_COUNT_LABEL: str(nvidia_gpus(box))}
    models = sorted({a.model for a in box.accelerators if a.vendor == "nvidia" and a.model})
    if len(models) == 1:
        labels[GPU_MODEL_LABEL] = models[0]
    return labels


def gpu_members(fleet: Fleet, cluster: Cluster) -> list[Box]:
    return [fleet.box(name) for name in cluster.members if has_nvidia(fleet.box(name))]


@dataclass(frozen=True)
class GpuWorkload:
    """What a pod spec needs to run on a cluster's GPUs (see ``gpu_workload``)."""

    gpus: int
    runtime_class: str
    node_selector: dict[str, str]
    resources: dict[str, dict[str, str]] = field(default_factory=dict)

    def apply_to(self, pod_spec: dict[str, Any], container: str) -> dict[str, Any]:
        """A copy of ``pod_spec`` whose container ``container`` requests the GPUs."""
        containers = []
        for original in pod_spec.get("containers", []):
            item = dict(original)
            if item.get("name") == container:
                resources = dict(item.get("resources", {}))
                for kind, amounts in self.resources.items():
                    resources[kind] = {**resources.get(kind, {}), **amounts}
                item["resources"] = resources
            containers.append(item)
        selector = dict(pod_spec.get("nodeSelector", {}))
        return {**pod_spec, "containers": containers, "runtimeClassName": self.runtime_class,
                "nodeSelector": {**selector, **self.node_selector}}


def gpu_workload(fleet: Fleet, cluster: Cluster, gpus: int | None = None) -> GpuWorkload | None:
    """How a training workload on ``cluster`` requests GPUs; None when no member has one.

    ``gpus`` defaults to the most one node holds (a pod never spans nodes). The D-N-A layer
    calls this for the core's trainer: ``workload.apply_to(pod_spec, "trainer")``.
    """
    members = gpu_members(fleet, cluster)
    if not members:
        return None
    most = max(nvidia_gpus(box) for box in members)
    wanted = most if gpus is None else max(1, min(gpus, most))
    limit = {NVIDIA_RESOURCE: str(wanted)}
    return GpuWorkload(wanted, "nvidia", {GPU_PRESENT_LABEL: "true"}, {"limits": limit})
