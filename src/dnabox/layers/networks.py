"""Networks: Multus and ovs-cni on every node, and a NetworkAttachmentDefinition per bridge.

The bridges are the ones the ``ovs`` role builds (``dnabox.plan.network.box_network``):
host-managed OVS with ovs-cni attaching pods to it through Multus, never a CNI that
manages OVS itself (the two fight over the same bridges).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dnabox.inventory.model import Cluster, Distribution, Fleet
from dnabox.layers.manifests import SYSTEM_NAMESPACE, Manifest, dns_label, meta
from dnabox.plan.network import box_network

MULTUS_IMAGE = "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.4"
OVS_CNI_IMAGE = "ghcr.io/k8snetworkplumbingwg/ovs-cni-plugin:v0.37.0"
CNI_NAMESPACE = "kube-system"
NAD_API_VERSION = "k8s.cni.cncf.io/v1"
RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
# ovs-cni's marker advertises each bridge a node has as this extended resource; the
# annotation on the attachment makes the scheduler pick only nodes that have the bridge.
OVS_RESOURCE_PREFIX = "ovs-cni.network.kubevirt.io/"
OVS_SOCKET_DIR = "/var/run/openvswitch"
# Network DaemonSets must reach tainted nodes too (end devices, control planes).
TOLERATE_ALL = [{"operator": "Exists"}]


@dataclass(frozen=True)
class CniPaths:
    conf_dir: str
    bin_dir: str


# k3s keeps its CNI files under its data dir (fixed bin dir since v1.28.15/1.29.10/1.30.6).
CNI_PATHS: dict[Distribution, CniPaths] = {
    "kubeadm": CniPaths("/etc/cni/net.d", "/opt/cni/bin"),
    "k3s": CniPaths("/var/lib/rancher/k3s/agent/etc/cni/net.d", "/var/lib/rancher/k3s/data/cni"),
}


@dataclass(frozen=True)
class Attachment:
    """One OVS bridge pods can attach to, and where it comes from in the plan."""

    name: str
    bridge: str
    vlan: int | None
    mtu: int
    source: str  # "plane/D" or "overlay/xplane"


def attachments(fleet: Fleet, cluster: Cluster) -> list[Attachment]:
    """Every bridge any member has, once, in plan order (planes first, then overlays)."""
    found: dict[str, Attachment] = {}
    for name in cluster.members:
        network = box_network(fleet, fleet.box(name))
        for plane in network.planes:
            found.setdefault(plane.bridge, Attachment(
                dns_label(plane.bridge), plane.bridge, plane.vlan, plane.mtu,
                f"plane/{plane.plane}"))
        for overlay in network.overlays:
            found.setdefault(overlay.bridge, Attachment(
                dns_label(overlay.bridge), overlay.bridge, None, overlay.mtu,
                f"overlay/{overlay.overlay}"))
    return list(found.values())


def ovs_cni_config(attachment: Attachment) -> dict[str, object]:
    config: dict[str, object] = {"cniVersion": "0.4.0", "type": "ovs",
                                 "bridge": attachment.bridge}
    if attachment.vlan is not None:
        config["vlan"] = attachment.vlan
    config["mtu"] = attachment.mtu
    return config


def network_attachment(attachment: Attachment) -> Manifest:
    return {
        "apiVersion": NAD_API_VERSION,
        "kind": "NetworkAttachmentDefinition",
        "metadata": meta(
            attachment.name, SYSTEM_NAMESPACE,
            labels={"dnabox.io/bridge": attachment.bridge},
            annotations={
                RESOURCE_NAME_ANNOTATION: OVS_RESOURCE_PREFIX + attachment.bridge,
                "dnabox.io/network": attachment.source,
            },
        ),
        # The CRD stores the CNI config as a JSON string, not as a nested object.
        "spec": {"config": json.dumps(ovs_cni_config(attachment), separators=(",", ":"))},
    }


def network_attachments(fleet: Fleet, cluster: Cluster) -> list[Manifest]:
    return [network_attachment(a) for a in attachments(fleet, cluster)]


def nad_crd() -> Manifest:
    """The NetworkAttachmentDefinition CRD (Network Plumbing WG multi-net spec)."""
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {"config": {"type": "string"}},
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": meta("network-attachment-definitions.k8s.cni.cncf.io"),
        "spec": {
            "group": "k8s.cni.cncf.io",
            "scope": "Namespaced",
            "names": {
                "plural": "network-attachment-definitions",
                "singular": "network-attachment-definition",
                "kind": "NetworkAttachmentDefinition",
                "shortNames": ["net-attach-def", "nad"],
            },
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema}}],
        },
    }


def multus_manifests(distribution: Distribution) -> list[Manifest]:
    """Multus (thin plugin): it wraps the cluster's primary CNI config on every node."""
    paths = CNI_PATHS[distribution]
    labels = {"app": "multus"}
    rules = [
        {"apiGroups": ["k8s.cni.cncf.io"], "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["pods", "pods/status"],
         "verbs": ["get", "list", "update", "watch"]},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
         "verbs": ["create", "patch", "update"]},
    ]
    host_mounts = [
        {"name": "cni-conf", "mountPath": "/host/etc/cni/net.d"},
        {"name": "cni-bin", "mountPath": "/host/opt/cni/bin"},
    ]
    daemonset = _daemonset("kube-multus", labels, "multus", {
        "initContainers": [{
            "name": "install-multus-binary",
            "image": MULTUS_IMAGE,
            "command": ["/install_multus"],
            "args": ["--type", "thin"],
            "securityContext": {"privileged": True},
            "resources": {"requests": {"cpu": "10m", "memory": "15Mi"}},
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": [{"name": "cni-bin", "mountPath": "/host/opt/cni/bin",
                              "mountPropagation": "Bidirectional"}],
        }],
        "containers": [{
            "name": "kube-multus",
            "image": MULTUS_IMAGE,
            "command": ["/thin_entrypoint"],
            "args": [
                "--multus-conf-file=auto",
                "--multus-autoconfig-dir=/host/etc/cni/net.d",
                "--cni-conf-dir=/host/etc/cni/net.d",
                # The kubeconfig path written into the CNI config is read by the
                # plugin on the host, so it must be the host's path.
                f"--multus-kubeconfig-file-host={paths.conf_dir}/multus.d/multus.kubeconfig",
            ],
            "securityContext": {"privileged": True},
            "resources": {"requests": {"cpu": "100m", "memory": "50Mi"},
                          "limits": {"cpu": "100m", "memory": "50Mi"}},
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": host_mounts,
        }],
        "volumes": [
            {"name": "cni-conf", "hostPath": {"path": paths.conf_dir, "type": "DirectoryOrCreate"}},
            {"name": "cni-bin", "hostPath": {"path": paths.bin_dir, "type": "DirectoryOrCreate"}},
        ],
    })
    return [*_rbac("multus", labels, rules), daemonset]


def ovs_cni_manifests(distribution: Distribution) -> list[Manifest]:
    """ovs-cni: the plugin binary on every node plus the marker reporting each node's bridges."""
    paths = CNI_PATHS[distribution]
    labels = {"app": "ovs-cni"}
    rules = [{"apiGroups": [""], "resources": ["nodes", "nodes/status"],
              "verbs": ["get", "update", "patch"]}]
    daemonset = _daemonset("ovs-cni", labels, "ovs-cni-marker", {
        "initContainers": [{
            "name": "ovs-cni-plugin",
            "image": OVS_CNI_IMAGE,
            "command": ["/bin/sh", "-c"],
            "args": ["cp /ovs /host/opt/cni/bin/ovs"],
            "securityContext": {"privileged": True},
            "resources": {"requests": {"cpu": "10m", "memory": "15Mi"}},
            "volumeMounts": [{"name": "cni-bin", "mountPath": "/host/opt/cni/bin"}],
        }],
        "containers": [{
            "name": "ovs-cni-marker",
            "image": OVS_CNI_IMAGE,
            "command": ["/marker"],
            "args": ["-v", "3", "-logtostderr", "-node-name", "$(NODE_NAME)",
                     "-ovs-socket", f"unix:/host{OVS_SOCKET_DIR}/db.sock"],
            "env": [{"name": "NODE_NAME",
                     "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "securityContext": {"privileged": True},
            "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}},
            "volumeMounts": [{"name": "ovs-run", "mountPath": f"/host{OVS_SOCKET_DIR}"}],
        }],
        "volumes": [
            {"name": "cni-bin", "hostPath": {"path": paths.bin_dir, "type": "DirectoryOrCreate"}},
            # The ovs role runs ovsdb-server on the host; the marker only reads it.
            {"name": "ovs-run", "hostPath": {"path": OVS_SOCKET_DIR, "type": "Directory"}},
        ],
    })
    return [*_rbac("ovs-cni-marker", labels, rules), daemonset]


def _rbac(name: str, labels: dict[str, str], rules: list[dict[str, list[str]]]) -> list[Manifest]:
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": meta(name, CNI_NAMESPACE, labels)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": meta(name, labels=labels), "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": meta(name, labels=labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": CNI_NAMESPACE}]},
    ]


def _daemonset(
    name: str, labels: dict[str, str], account: str, pod: dict[str, object]
) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta(name, CNI_NAMESPACE, labels),
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "hostNetwork": True,
                    "serviceAccountName": account,
                    "priorityClassName": "system-node-critical",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": TOLERATE_ALL,
                    "terminationGracePeriodSeconds": 10,
                    **pod,
                },
            },
        },
    }
