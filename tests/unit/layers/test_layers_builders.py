"""The pure layer builders: what each cluster of the sample fleets gets, and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnabox.errors import DnaboxError
from dnabox.inventory import Cluster, Fleet, load_fleet
from dnabox.layers import baseline, mesh, networks, runtimes, stack_config
from dnabox.layers.manifests import SYSTEM_NAMESPACE, dns_label, resource_name
from dnabox.plan.labels import node_layout
from dnabox.plan.network import box_network
from dnabox.plan.runtimes import RUNTIMES, runtimes_for

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ("inventory/lab.yaml", "inventory/smartx-playground.yaml")
FleetCluster = tuple[Fleet, Cluster]


def fleet(path: str) -> Fleet:
    return load_fleet(ROOT / path)


def every_cluster() -> list[tuple[str, str]]:
    return [(path, c.name) for path in SAMPLES for c in fleet(path).clusters]


@pytest.fixture(params=every_cluster(), ids=lambda p: f"{Path(p[0]).stem}/{p[1]}")
def fleet_cluster(request: pytest.FixtureRequest) -> FleetCluster:
    path, name = request.param
    f = fleet(path)
    return f, next(c for c in f.clusters if c.name == name)


def test_runtime_class_handlers_are_the_containerd_handlers(fleet_cluster: FleetCluster) -> None:
    f, cluster = fleet_cluster
    classes = runtimes.runtime_classes(f, cluster)
    assert classes, "every cluster has at least runc"
    for rc in classes:
        spec = RUNTIMES[rc["metadata"]["name"]]
        assert rc["handler"] == spec.handler
        assert rc["scheduling"]["nodeSelector"] == {spec.node_label: "true"}


def test_each_runtime_class_selects_nodes_having_it(fleet_cluster: FleetCluster) -> None:
    f, cluster = fleet_cluster
    patches = {p["metadata"]["name"]: p for p in baseline.node_patches(f, cluster)}
    for rc in runtimes.runtime_classes(f, cluster):
        ((label, value),) = rc["scheduling"]["nodeSelector"].items()
        selected = [n for n, p in patches.items() if p["metadata"]["labels"].get(label) == value]
        assert selected, f"RuntimeClass {rc['metadata']['name']} selects no node"
        for node in selected:
            installed = {s.handler for s in runtimes_for(f, f.box(node))}
            assert rc["handler"] in installed


def test_kata_declares_its_pod_overhead_and_runc_none() -> None:
    kata = runtimes.runtime_class(RUNTIMES["kata"])
    assert kata["overhead"] == {"podFixed": {"cpu": "250m", "memory": "160Mi"}}
    assert "overhead" not in runtimes.runtime_class(RUNTIMES["runc"])


def test_runtimes_no_member_hosts_get_no_class() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    # Only end devices would host apptainer here if edge-kaist enabled it: they cannot.
    cluster = next(c for c in f.clusters if c.name == "edge-kaist")
    widened = cluster.model_copy(update={"runtimes": ["runc", "kata", "apptainer"],
                                         "control_planes": ["end-gist-nuc-1"],
                                         "workers": ["end-gist-nuc-2"]})
    names = [rc["metadata"]["name"] for rc in runtimes.runtime_classes(f, widened)]
    assert names == ["runc"]


def test_nad_bridges_are_the_ovs_role_bridges(fleet_cluster: FleetCluster) -> None:
    f, cluster = fleet_cluster
    planned = {
        bridge
        for name in cluster.members
        for net in [box_network(f, f.box(name))]
        for bridge in [*(p.bridge for p in net.planes), *(o.bridge for o in net.overlays)]
    }
    nads = networks.network_attachments(f, cluster)
    bridges = {json.loads(n["spec"]["config"])["bridge"] for n in nads}
    assert bridges == planned
    assert len(nads) == len(planned)


def test_nad_config_and_resource_annotation_shape() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    core = next(c for c in f.clusters if c.name == "core")
    by_bridge = {json.loads(n["spec"]["config"])["bridge"]: n
                 for n in networks.network_attachments(f, core)}
    data = by_bridge["br-data"]
    assert json.loads(data["spec"]["config"]) == {
        "cniVersion": "0.4.0", "type": "ovs", "bridge": "br-data", "vlan": 30, "mtu": 9000}
    assert data["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"] == \
        "ovs-cni.network.kubevirt.io/br-data"
    assert data["metadata"]["namespace"] == SYSTEM_NAMESPACE
    # The overlay bridge carries no VLAN and the overlay's (VXLAN-reduced) MTU.
    assert json.loads(by_bridge["br-vxlan"]["spec"]["config"]) == {
        "cniVersion": "0.4.0", "type": "ovs", "bridge": "br-vxlan", "mtu": 8950}


def test_node_patches_carry_the_plan_labels(fleet_cluster: FleetCluster) -> None:
    f, cluster = fleet_cluster
    patches = baseline.node_patches(f, cluster)
    assert [p["metadata"]["name"] for p in patches] == cluster.members
    for patch in patches:
        box = f.box(patch["metadata"]["name"])
        assert patch["metadata"]["labels"] == node_layout(f, box).labels
        assert patch["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}


def test_end_devices_in_an_edge_cluster_are_tainted_edge_nodes_are_not() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    kaist = next(c for c in f.clusters if c.name == "edge-kaist")
    taints = {p["metadata"]["name"]: p["spec"]["taints"]
              for p in baseline.node_patches(f, kaist)}
    end_taint = [{"key": "node-role.kubernetes.io/end", "value": "", "effect": "NoSchedule"}]
    assert taints["end-gist-nuc-1"] == end_taint
    assert taints["end-gist-nuc-2"] == end_taint
    # kubeadm control plane with workers keeps its own taint (the patch owns the whole list).
    assert taints["edge-kaist-1"] == [
        {"key": "node-role.kubernetes.io/control-plane", "value": "", "effect": "NoSchedule"}]
    assert taints["edge-kaist-2"] == []


def test_an_edge_node_in_a_core_cluster_gets_the_edge_taint() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    core = next(c for c in f.clusters if c.name == "core")
    mixed = core.model_copy(update={"workers": ["edge-jnu-2"]})
    (edge_patch,) = [p for p in baseline.node_patches(f, mixed)
                     if p["metadata"]["name"] == "edge-jnu-2"]
    assert edge_patch["spec"]["taints"] == [
        {"key": "node-role.kubernetes.io/edge", "value": "", "effect": "NoSchedule"}]
    assert edge_patch["metadata"]["labels"]["topology.kubernetes.io/region"] == "kr-jeonju"


def test_control_planes_alone_are_left_schedulable() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    core = next(c for c in f.clusters if c.name == "core")  # three control planes, no workers
    assert all(p["spec"]["taints"] == [] for p in baseline.node_patches(f, core))


def test_namespaces_per_tier_and_mesh_enrolment() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    clusters = {c.name: c for c in f.clusters}
    core_plan = mesh.mesh_plan(f, clusters["core"])
    core = baseline.namespaces(f, clusters["core"], core_plan.namespace_labels)
    assert [n["metadata"]["name"] for n in core] == [SYSTEM_NAMESPACE, "training", "data-lake"]
    assert core[1]["metadata"]["labels"]["istio-injection"] == "enabled"
    assert "istio-injection" not in core[0]["metadata"]["labels"]
    kaist = baseline.namespaces(f, clusters["edge-kaist"],
                                mesh.mesh_plan(f, clusters["edge-kaist"]).namespace_labels)
    assert [n["metadata"]["name"] for n in kaist] == [SYSTEM_NAMESPACE, "inference", "data-pond"]
    assert kaist[1]["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"
    postech_plan = mesh.mesh_plan(f, clusters["edge-postech"])
    postech = baseline.namespaces(f, clusters["edge-postech"], None,
                                  postech_plan.namespace_annotations)
    assert postech[2]["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}


def test_mesh_is_ambient_at_the_edge_sidecar_in_the_core() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    modes = {c.name: mesh.mesh_mode(f, c) for c in f.clusters}
    assert modes == {"core": "sidecar", "edge-kaist": "ambient", "edge-postech": "linkerd",
                     "edge-jnu": "none"}
    kaist = mesh.mesh_plan(f, next(c for c in f.clusters if c.name == "edge-kaist"))
    charts = {c.chart: c for c in kaist.charts}
    assert set(charts) == {"base", "istiod", "cni", "ztunnel"}
    assert charts["istiod"].values["profile"] == "ambient"
    assert charts["cni"].values["profile"] == "ambient"
    core = mesh.mesh_plan(f, next(c for c in f.clusters if c.name == "core"))
    assert [c.chart for c in core.charts] == ["base", "istiod"]
    assert "profile" not in core.charts[1].values


def test_mesh_enforces_strict_mtls() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    for cluster in f.clusters:
        plan = mesh.mesh_plan(f, cluster)
        if plan.mode in ("ambient", "sidecar"):
            (policy,) = plan.policies
            assert policy["kind"] == "PeerAuthentication"
            assert policy["metadata"] == {**policy["metadata"], "name": "default",
                                          "namespace": "istio-system"}
            assert policy["spec"] == {"mtls": {"mode": "STRICT"}}
        elif plan.mode == "linkerd":
            control = next(c for c in plan.charts if c.chart == "linkerd-control-plane")
            assert control.values["proxy"]["defaultInboundPolicy"] == "all-authenticated"


def test_mesh_releases_wait_for_what_they_need() -> None:
    f = fleet("inventory/smartx-playground.yaml")
    for cluster in f.clusters:
        plan = mesh.mesh_plan(f, cluster)
        seen: set[str] = set()
        for chart in plan.charts:
            assert set(chart.after) <= seen, f"{chart.release} waits for a later release"
            seen.add(chart.release)


def test_k3s_clusters_use_k3s_cni_paths() -> None:
    (ds,) = [m for m in networks.multus_manifests("k3s") if m["kind"] == "DaemonSet"]
    paths = {v["name"]: v["hostPath"]["path"] for v in ds["spec"]["template"]["spec"]["volumes"]}
    assert paths == {"cni-conf": "/var/lib/rancher/k3s/agent/etc/cni/net.d",
                     "cni-bin": "/var/lib/rancher/k3s/data/cni"}
    args = ds["spec"]["template"]["spec"]["containers"][0]["args"]
    assert ("--multus-kubeconfig-file-host=/var/lib/rancher/k3s/agent/etc/cni/net.d/"
            "multus.d/multus.kubeconfig") in args


def test_resource_names_are_unique_within_a_stack(fleet_cluster: FleetCluster) -> None:
    f, cluster = fleet_cluster
    plan = mesh.mesh_plan(f, cluster)
    manifests = [
        *baseline.namespaces(f, cluster), *baseline.node_patches(f, cluster),
        *runtimes.runtime_classes(f, cluster),
        *networks.multus_manifests(cluster.distribution),
        *networks.ovs_cni_manifests(cluster.distribution), networks.nad_crd(),
        *networks.network_attachments(f, cluster), *plan.policies,
    ]
    names = [resource_name(m) for m in manifests]
    assert len(names) == len(set(names))


def test_dns_label_makes_bridge_names_valid_object_names() -> None:
    assert dns_label("br-data") == "br-data"
    assert dns_label("Br_Data.1") == "br-data-1"
    assert len(dns_label("x" * 80)) == 63


def test_unknown_cluster_is_refused_with_the_known_ones() -> None:
    f = fleet("inventory/lab.yaml")
    with pytest.raises(DnaboxError) as caught:
        stack_config.select_clusters(f, "nope")
    assert "core, edge" in caught.value.hint
