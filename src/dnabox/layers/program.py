"""The Pulumi program of every stack: read config, compose the four layers.

Installed with dnabox; a fleet repo's ``stacks/__main__.py`` only calls :func:`main`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from dnabox.errors import DnaboxError
from dnabox.inventory import load_fleet
from dnabox.inventory.model import Cluster
from dnabox.layers import stack_config
from dnabox.layers.baseline import cluster_tier
from dnabox.layers.components import (
    Dna,
    DnaArgs,
    Gpus,
    LayerArgs,
    Networks,
    NetworksArgs,
    Runtimes,
    ServiceMesh,
    TierBaseline,
    TierBaselineArgs,
)
from dnabox.layers.gpus import gpu_plan
from dnabox.layers.manifests import SUPPORTED_KUBERNETES, SYSTEM_NAMESPACE
from dnabox.layers.mesh import mesh_plan
from dnabox.locations import find_project


@dataclass(frozen=True)
class StackSettings:
    inventory: Path
    cluster: str
    kubeconfig: pulumi.Output[str]


def resolve(project_root: Path, path: str) -> Path:
    """Relative paths in stack config are relative to the project (where Pulumi.yaml is)."""
    return project_root / Path(path).expanduser()


def read_settings(config: pulumi.Config, project_root: Path) -> StackSettings:
    kubeconfig = config.require_secret(stack_config.KUBECONFIG_KEY)
    return StackSettings(
        inventory=resolve(project_root, config.require(stack_config.INVENTORY_KEY)),
        cluster=config.require(stack_config.CLUSTER_KEY),
        kubeconfig=kubeconfig.apply(lambda path: str(resolve(project_root, path))),
    )


def check_kubernetes_version(cluster: Cluster) -> None:
    if cluster.kubernetes_version not in SUPPORTED_KUBERNETES:
        raise DnaboxError(
            f"cluster {cluster.name} asks for Kubernetes {cluster.kubernetes_version}; the "
            f"stacks support {', '.join(SUPPORTED_KUBERNETES)}",
            hint="set kubernetes_version of the cluster to a supported minor",
        )


def compose(settings: StackSettings) -> dict[str, Any]:
    """Declare every layer of one cluster; returns the stack outputs."""
    fleet = load_fleet(settings.inventory)
    (cluster,) = stack_config.select_clusters(fleet, settings.cluster)
    check_kubernetes_version(cluster)
    provider = k8s.Provider("kubernetes", kubeconfig=settings.kubeconfig)
    opts = pulumi.ResourceOptions(provider=provider)
    plan = mesh_plan(fleet, cluster)
    tier = TierBaseline("baseline", TierBaselineArgs(
        fleet, cluster, plan.namespace_labels, plan.namespace_annotations), opts)
    runtime_layer = Runtimes("runtimes", LayerArgs(fleet, cluster), opts)
    network_layer = Networks("networks", NetworksArgs(
        fleet, cluster, depends_on=[tier.namespaces[SYSTEM_NAMESPACE]]), opts)
    mesh_layer = ServiceMesh("mesh", LayerArgs(fleet, cluster), opts)
    gpu_layer = None
    if gpu_plan(fleet, cluster) is not None:
        gpu_layer = Gpus("gpus", NetworksArgs(
            fleet, cluster, depends_on=[tier.namespaces[SYSTEM_NAMESPACE]]), opts)
    dna_layer = Dna("dna", DnaArgs(fleet, cluster, depends_on=list(tier.namespaces.values())),
                    opts)
    return {
        "fleet": fleet.name,
        "cluster": cluster.name,
        "tier": cluster_tier(fleet, cluster),
        "kubernetesVersion": cluster.kubernetes_version,
        "namespaces": sorted(tier.namespaces),
        "runtimeClasses": runtime_layer.handlers,
        "networkAttachments": network_layer.bridges,
        "mesh": mesh_layer.plan.mode,
        "meshReleases": sorted(mesh_layer.releases),
        "gpuStack": gpu_layer.plan.stack if gpu_layer and gpu_layer.plan else "none",
        "dnaServices": sorted(s.name for s in dna_layer.plan.services),
    }


def main() -> None:
    """Run as the stack's program: relative paths in the stack config resolve from the fleet
    repo (the directory holding Pulumi.yaml), wherever Pulumi starts the program."""
    settings = read_settings(pulumi.Config(stack_config.NAMESPACE), find_project())
    for key, value in compose(settings).items():
        pulumi.export(key, value)
