"""Render the Ansible inventory from the fleet model, deterministically.

Groups: ``tier_<tier>``, ``site_<site>``, ``cluster_<cluster>``, ``role_control_plane``,
``role_worker``. Host variables carry everything a role needs, derived from the model
(the single source of truth), so the playbooks never re-derive it.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from itertools import islice
from typing import Any

from dnabox.inventory.model import Box, Cluster, Fleet
from dnabox.locations import Locations
from dnabox.plan.accelerators import has_nvidia
from dnabox.plan.artifacts import artifacts_for_box, required_artifacts
from dnabox.plan.catalogue import CATALOGUE
from dnabox.plan.containerd import containerd_for
from dnabox.plan.dna_vars import dna_host_vars
from dnabox.plan.labels import node_layout
from dnabox.plan.managed_files import read_table
from dnabox.plan.network import box_network
from dnabox.plan.roles import roles_for
from dnabox.plan.runtimes import runtimes_for


def group_name(kind: str, name: str) -> str:
    # Ansible group names must be identifiers: no '-'.
    return f"{kind}_{name.replace('-', '_')}"


def host_vars(fleet: Fleet, box: Box) -> dict[str, Any]:
    ssh = fleet.ssh_for(box)
    site = fleet.site(box.site)
    cluster = fleet.cluster_of(box.name)
    network = box_network(fleet, box)
    layout = node_layout(fleet, box)
    containerd = containerd_for(fleet, box)
    ssh_args = "-o StrictHostKeyChecking=yes -o KexAlgorithms=curve25519-sha256"
    if ssh.known_hosts:
        ssh_args += f" -o UserKnownHostsFile={os.path.expanduser(ssh.known_hosts)}"
    values: dict[str, Any] = {
        "ansible_host": ssh.host,
        "ansible_user": ssh.user,
        "ansible_port": ssh.port,
        "ansible_ssh_common_args": ssh_args,
        "dnabox_box": box.name,
        "dnabox_site": site.name,
        "dnabox_tier": site.tier,
        "dnabox_size": box.size,
        "dnabox_cluster": cluster.name if cluster else "",
        "dnabox_runtimes": [asdict(r) for r in runtimes_for(fleet, box)],
        "dnabox_os": fleet.os_of(box),
        "dnabox_arch": fleet.arch_of(box),
        # containerd: the release's package or the static release (dnabox.plan.containerd).
        "dnabox_containerd_version": containerd.version,
        "dnabox_containerd_source": containerd.source,
        "dnabox_containerd_bin_dir": containerd.bin_dir,
        "dnabox_containerd_bin": containerd.binary,
        # NVIDIA GPUs: the container toolkit, the nvidia handler and CDI (plan.accelerators).
        "dnabox_accelerators": [a.model_dump() for a in box.accelerators],
        "dnabox_cdi": has_nvidia(box),
        "dnabox_plane_bridges": [asdict(p) for p in network.planes],
        "dnabox_overlays": [
            {**asdict(o), "tunnels": [asdict(t) for t in o.tunnels]} for o in network.overlays
        ],
        "dnabox_node_labels": layout.labels,
        # The subset a kubelet may set on itself (NodeRestriction); the tier layer sets the rest.
        "dnabox_kubelet_labels": {k: v for k, v in layout.labels.items() if kubelet_may_set(k)},
        "dnabox_node_taints": [asdict(t) for t in layout.taints],
        "dnabox_roles": roles_for(fleet, box),
        "dnabox_cluster_role": _cluster_role(cluster, box),
        "dnabox_pod_subnet": _pod_subnet(cluster, box),
        # Artifact names per role of this box (dnabox.plan.artifacts is their one source).
        "dnabox_required_artifacts": required_artifacts(fleet, box),
        # The declared artifacts built for this box's architecture (or for any).
        "dnabox_box_artifacts": artifacts_for_box(fleet, box),
    }
    values.update(dna_host_vars(fleet, box))
    if ssh.key:
        values["ansible_ssh_private_key_file"] = os.path.expanduser(ssh.key)
    return values


# Label prefixes the NodeRestriction admission plugin forbids a kubelet to set on its node.
_KUBELET_FORBIDDEN = ("node-role.kubernetes.io/",)


def kubelet_may_set(label: str) -> bool:
    return not label.startswith(_KUBELET_FORBIDDEN)


def _cluster_role(cluster: Cluster | None, box: Box) -> str:
    if cluster is None:
        return ""
    return "control_plane" if box.name in cluster.control_planes else "worker"


def _pod_subnet(cluster: Cluster | None, box: Box) -> str:
    """This box's /24 of its cluster's pod CIDR (by member position), '' outside clusters."""
    if cluster is None or cluster.pod_cidr.prefixlen > 24:
        return ""
    index = cluster.members.index(box.name)
    subnet = next(islice(cluster.pod_cidr.subnets(new_prefix=24), index, None), None)
    return str(subnet) if subnet is not None else ""


def render_ansible_inventory(fleet: Fleet, locations: Locations) -> dict[str, Any]:
    """A YAML-ready Ansible inventory: ``{"all": {"hosts": ..., "children": ...}}``."""
    children: dict[str, dict[str, Any]] = {}

    def add(group: str, box: str, group_vars: dict[str, Any] | None = None) -> None:
        entry = children.setdefault(group, {"hosts": {}})
        entry["hosts"][box] = None
        if group_vars:
            entry.setdefault("vars", {}).update(group_vars)

    for box in fleet.boxes:
        site = fleet.site(box.site)
        add(group_name("tier", site.tier), box.name, {"dnabox_tier": site.tier})
        add(group_name("site", site.name), box.name)
        cluster = fleet.cluster_of(box.name)
        if cluster is not None:
            add(group_name("cluster", cluster.name), box.name, {
                "kubernetes_cluster_name": cluster.name,
                "kubernetes_distribution": cluster.distribution,
                "kubernetes_version": cluster.kubernetes_version,
                "kubernetes_pod_cidr": str(cluster.pod_cidr),
                "kubernetes_service_cidr": str(cluster.service_cidr),
                "kubernetes_control_plane_endpoint": str(
                    fleet.box(cluster.control_planes[0]).address),
                # The box that runs `kubeadm init` / the first k3s server.
                "kubernetes_control_plane_box": cluster.control_planes[0],
            })
            role = "control_plane" if box.name in cluster.control_planes else "worker"
            add(f"role_{role}", box.name)
    hosts = {box.name: host_vars(fleet, box) for box in fleet.boxes}
    return {
        "all": {
            "vars": {
                "dnabox_fleet": fleet.name,
                # Every play and template names the on-box state dir through this one variable.
                "dnabox_state_dir": locations.on_box_state,
                # Where the kubernetes role leaves the cluster's kubeconfig on the controller.
                "dnabox_kubeconfig_dir": str(locations.kubeconfig_dir(fleet.name)),
                "dnabox_artifact_source": fleet.artifacts.source,
                "dnabox_bundle_dir": fleet.artifacts.bundle_dir or "",
                # Python 3 is on every supported box; naming it saves a discovery round trip.
                "ansible_python_interpreter": "/usr/bin/python3",
                "dnabox_templates_dir": str(locations.templates),
                # templates/files.yml: each role renders its own entries.
                "dnabox_managed_files": read_table(locations.templates),
                "dnabox_artifacts": [a.model_dump() for a in fleet.artifacts.files],
                **{f"{spec.name}_packages": list(spec.packages) for spec in CATALOGUE
                   if spec.packages},
            },
            "hosts": hosts,
            "children": dict(sorted(children.items())),
        }
    }
