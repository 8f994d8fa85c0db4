"""GPUs: how a cluster whose members hold NVIDIA GPUs offers them to pods.

The nodes already carry the GPU labels (tier baseline, from ``dnabox.plan.accelerators``)
and the ``nvidia`` RuntimeClass exists where the handler does (runtimes layer). This layer
adds what advertises ``nvidia.com/gpu`` to the scheduler: the NVIDIA device plugin
DaemonSet (``gpu_stack: device-plugin``), or the GPU Operator as a Helm release
(``gpu_stack: gpu-operator``) with its container toolkit disabled, because dnabox installs
the toolkit and owns the ``nvidia`` handler on each box. The operator still brings the
driver: dnabox does not manage GPU drivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dnabox.inventory.model import Cluster, Fleet
from dnabox.layers.manifests import SYSTEM_NAMESPACE, Manifest, meta
from dnabox.layers.mesh import HelmChart
from dnabox.plan.accelerators import GPU_PRESENT_LABEL, gpu_members

DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.4"
GPU_OPERATOR_VERSION = "v25.10.0"
GPU_OPERATOR_NAMESPACE = "gpu-operator"
GPU_OPERATOR_REPO = "https://helm.ngc.nvidia.com/nvidia"
RUNTIME_CLASS = "nvidia"


@dataclass(frozen=True)
class GpuPlan:
    stack: str  # "device-plugin" | "gpu-operator"
    manifests: tuple[Manifest, ...]
    charts: tuple[HelmChart, ...]
    nodes: tuple[str, ...]


def gpu_plan(fleet: Fleet, cluster: Cluster) -> GpuPlan | None:
    """What the cluster needs for its GPUs; None when no member holds one."""
    members = tuple(box.name for box in gpu_members(fleet, cluster))
    if not members:
        return None
    if cluster.gpu_stack == "gpu-operator":
        return GpuPlan("gpu-operator", (operator_namespace(),), (operator_chart(),), members)
    return GpuPlan("device-plugin", (device_plugin(),), (), members)


def device_plugin() -> Manifest:
    """The NVIDIA device plugin on every GPU node, run with the ``nvidia`` handler."""
    labels = {"app.kubernetes.io/name": "nvidia-device-plugin"}
    container: dict[str, Any] = {
        "name": "nvidia-device-plugin",
        "image": DEVICE_PLUGIN_IMAGE,
        # CDI: the toolkit's specs (written by the container_runtime role) name the GPUs.
        "env": [{"name": "DEVICE_LIST_STRATEGY", "value": "cdi-cri"},
                {"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "device-plugins",
                          "mountPath": "/var/lib/kubelet/device-plugins"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta("nvidia-device-plugin", SYSTEM_NAMESPACE, labels),
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "runtimeClassName": RUNTIME_CLASS,
                    "priorityClassName": "system-node-critical",
                    "nodeSelector": {GPU_PRESENT_LABEL: "true"},
                    # GPU nodes may sit in any tier: tolerate their taints and the GPU one.
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [container],
                    "volumes": [{"name": "device-plugins", "hostPath": {
                        "path": "/var/lib/kubelet/device-plugins", "type": "Directory"}}],
                },
            },
        },
    }


def operator_namespace() -> Manifest:
    # The operator's operands (driver container, validators) need privileged pods.
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": meta(GPU_OPERATOR_NAMESPACE, labels={
                "pod-security.kubernetes.io/enforce": "privileged"})}


def operator_chart() -> HelmChart:
    values: dict[str, Any] = {
        # dnabox installs the toolkit and owns the containerd `nvidia` handler: the
        # operator must not rewrite containerd's config (a re-run would fight it).
        "toolkit": {"enabled": False},
        "cdi": {"enabled": True},
        "operator": {"defaultRuntime": "containerd", "runtimeClass": RUNTIME_CLASS},
        "devicePlugin": {"enabled": True},
        "daemonsets": {"tolerations": [{"operator": "Exists"}]},
    }
    return HelmChart("gpu-operator", "gpu-operator", GPU_OPERATOR_VERSION, GPU_OPERATOR_REPO,
                     GPU_OPERATOR_NAMESPACE, values)
