"""The four layers as Pulumi ComponentResources.

Each component asks the pure builders for its manifests and turns every manifest into the
matching typed Kubernetes resource, unchanged: what the tests validate is what is applied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from dnabox.inventory.model import Cluster, Fleet
from dnabox.layers import baseline, dna, gpus, mesh, networks, runtimes
from dnabox.layers.manifests import Manifest, resource_name

# Built-in kinds get their typed resource (schema-aware diffs); CRD instances fall back to
# CustomResource. Nodes are patched, not created: the kubelet registers them.
_TYPED: dict[tuple[str, str], Any] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Node"): k8s.core.v1.NodePatch,
    ("apps/v1", "DaemonSet"): k8s.apps.v1.DaemonSet,
    ("node.k8s.io/v1", "RuntimeClass"): k8s.node.v1.RuntimeClass,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
        k8s.apiextensions.v1.CustomResourceDefinition,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "Service"): k8s.core.v1.Service,
    ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("batch/v1", "Job"): k8s.batch.v1.Job,
    ("batch/v1", "CronJob"): k8s.batch.v1.CronJob,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def apply_manifest(manifest: Manifest, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Declare ``manifest`` as a Pulumi resource with exactly its fields."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    fields = {_snake(k): v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    typed = _TYPED.get((api_version, kind))
    name = resource_name(manifest)
    if typed is None:
        resource: pulumi.CustomResource = k8s.apiextensions.CustomResource(
            name, api_version=api_version, kind=kind, opts=opts, **fields)
        return resource
    created: pulumi.CustomResource = typed(name, opts=opts, **fields)
    return created


@dataclass(frozen=True)
class LayerArgs:
    """What every layer needs: the fleet and the cluster it composes."""

    fleet: Fleet
    cluster: Cluster


@dataclass(frozen=True)
class TierBaselineArgs(LayerArgs):
    # Mesh enrolment labels/annotations for the tier's workload namespaces.
    workload_labels: dict[str, str] = field(default_factory=dict)
    workload_annotations: dict[str, str] = field(default_factory=dict)


class TierBaseline(pulumi.ComponentResource):
    """Namespaces of the tier and the labels/taints of every node."""

    def __init__(self, name: str, args: TierBaselineArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dnabox:layers:TierBaseline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        manifests = baseline.namespaces(args.fleet, args.cluster, args.workload_labels,
                                        args.workload_annotations)
        self.namespaces = {m["metadata"]["name"]: apply_manifest(m, child) for m in manifests}
        patches = baseline.node_patches(args.fleet, args.cluster)
        self.nodes = [apply_manifest(m, child) for m in patches]
        self.register_outputs({
            "namespaces": sorted(self.namespaces),
            "nodes": [m["metadata"]["name"] for m in patches],
        })


class Runtimes(pulumi.ComponentResource):
    """A RuntimeClass per runtime the cluster's nodes host."""

    def __init__(self, name: str, args: LayerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dnabox:layers:Runtimes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        manifests = runtimes.runtime_classes(args.fleet, args.cluster)
        self.classes = [apply_manifest(m, child) for m in manifests]
        self.handlers = {m["metadata"]["name"]: m["handler"] for m in manifests}
        self.register_outputs({"handlers": self.handlers})


@dataclass(frozen=True)
class NetworksArgs(LayerArgs):
    # The namespace holding the attachments must exist before them.
    depends_on: Sequence[pulumi.Resource] = ()


class Networks(pulumi.ComponentResource):
    """Multus, ovs-cni and a NetworkAttachmentDefinition per OVS bridge."""

    def __init__(self, name: str, args: NetworksArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dnabox:layers:Networks", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        distribution = args.cluster.distribution
        for manifest in [*networks.multus_manifests(distribution),
                         *networks.ovs_cni_manifests(distribution)]:
            apply_manifest(manifest, child)
        crd = apply_manifest(networks.nad_crd(), child)
        after_crd = pulumi.ResourceOptions(parent=self, depends_on=[crd, *args.depends_on])
        manifests = networks.network_attachments(args.fleet, args.cluster)
        self.attachments = [apply_manifest(m, after_crd) for m in manifests]
        self.bridges = {
            m["metadata"]["name"]: m["metadata"]["labels"]["dnabox.io/bridge"] for m in manifests
        }
        self.register_outputs({"attachments": self.bridges})


def helm_release(chart: mesh.HelmChart, values: dict[str, Any],
                 opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        chart.release,
        name=chart.release,
        chart=chart.chart,
        version=chart.version,
        namespace=chart.namespace,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        values=values,
        # Roll back a failed install/upgrade instead of leaving it half done.
        atomic=True,
        timeout=600,
        opts=opts,
    )


class Gpus(pulumi.ComponentResource):
    """The NVIDIA device plugin, or the GPU Operator, where members hold NVIDIA GPUs."""

    def __init__(self, name: str, args: NetworksArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dnabox:layers:Gpus", name, None, opts)
        self.plan = gpus.gpu_plan(args.fleet, args.cluster)
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        if self.plan is not None:
            made = [apply_manifest(m, after) for m in self.plan.manifests]
            for chart in self.plan.charts:
                self.releases[chart.release] = helm_release(chart, chart.values,
                                                            pulumi.ResourceOptions(
                                                                parent=self, depends_on=made))
        self.register_outputs({"stack": self.plan.stack if self.plan else "none",
                               "releases": sorted(self.releases)})


class ServiceMesh(pulumi.ComponentResource):
    """Istio or Linkerd through Helm, with strict mutual TLS."""

    def __init__(self, name: str, args: LayerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dnabox:layers:ServiceMesh", name, None, opts)
        self.plan = mesh.mesh_plan(args.fleet, args.cluster)
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        namespace = mesh.mesh_namespace(self.plan)
        if namespace is not None:
            ns = apply_manifest(namespace, pulumi.ResourceOptions(parent=self))
            needs_identity = any(c.needs_identity for c in self.plan.charts)
            extra = self._linkerd_identity() if needs_identity else {}
            for chart in self.plan.charts:
                after = [ns, *(self.releases[r] for r in chart.after)]
                values = {**chart.values, **extra} if chart.needs_identity else chart.values
                self.releases[chart.release] = helm_release(
                    chart, values, pulumi.ResourceOptions(parent=self, depends_on=after))
            installed = list(self.releases.values())
            for policy in self.plan.policies:
                apply_manifest(policy, pulumi.ResourceOptions(parent=self, depends_on=installed))
        self.register_outputs({"mode": self.plan.mode, "releases": sorted(self.releases)})

    def _linkerd_identity(self) -> dict[str, Any]:
        """Trust anchor and issuer for Linkerd's mTLS (ECDSA P-256, as Linkerd requires).

        Kept in the stack state as secrets; the issuer renews a month before it expires.
        """
        child = pulumi.ResourceOptions(parent=self)
        usages = ["cert_signing", "crl_signing"]
        anchor_key = tls.PrivateKey("linkerd-trust-anchor", algorithm="ECDSA",
                                    ecdsa_curve="P256", opts=child)
        anchor = tls.SelfSignedCert(
            "linkerd-trust-anchor", private_key_pem=anchor_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name="root.linkerd.cluster.local"),
            is_ca_certificate=True, validity_period_hours=10 * 8760, allowed_uses=usages,
            opts=child)
        issuer_key = tls.PrivateKey("linkerd-issuer", algorithm="ECDSA", ecdsa_curve="P256",
                                    opts=child)
        request = tls.CertRequest(
            "linkerd-issuer", private_key_pem=issuer_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name="identity.linkerd.cluster.local"),
            opts=child)
        issuer = tls.LocallySignedCert(
            "linkerd-issuer", cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=anchor_key.private_key_pem, ca_cert_pem=anchor.cert_pem,
            is_ca_certificate=True, validity_period_hours=8760, early_renewal_hours=720,
            allowed_uses=usages, opts=child)
        return {
            "identityTrustAnchorsPEM": anchor.cert_pem,
            "identity": {"issuer": {"tls": {
                "crtPEM": issuer.cert_pem,
                "keyPEM": pulumi.Output.secret(issuer_key.private_key_pem),
            }}},
        }


@dataclass(frozen=True)
class DnaArgs(LayerArgs):
    # The tier's workload namespaces (data-lake, training / data-pond, inference).
    depends_on: Sequence[pulumi.Resource] = ()


class Dna(pulumi.ComponentResource):
    """NATS hub or leaves, the trainer and the inference servers of the D-N-A layer."""

    def __init__(self, name: str, args: DnaArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dnabox:layers:Dna", name, None, opts)
        self.plan = dna.dna_plan(args.fleet, args.cluster)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.objects = [apply_manifest(m, after) for m in self.plan.manifests]
        self.register_outputs({
            "natsHub": [s.box for s in self.plan.hub],
            "natsLeaves": {s.site: s.box for s in self.plan.leaves},
            "services": sorted(s.name for s in self.plan.services),
        })
