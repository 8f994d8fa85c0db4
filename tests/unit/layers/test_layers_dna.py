"""The dna layer's builders: what each cluster of the sample fleets runs, and why."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate

from dnabox.dna.service.config import parse
from dnabox.inventory import Fleet, load_fleet
from dnabox.layers import dna
from dnabox.layers.manifests import SUPPORTED_KUBERNETES, Manifest
from dnabox.plan.dna import CLIENT_PORT, LEAFNODE_PORT, build_topology
from dnabox.plan.dna_services import SERVICES

ROOT = Path(__file__).resolve().parents[3]
PLAYGROUND = "inventory/smartx-playground.yaml"


def fleet(path: str = PLAYGROUND) -> Fleet:
    return load_fleet(ROOT / path)


def manifests(f: Fleet, cluster: str) -> dict[tuple[str, str], Manifest]:
    (c,) = [c for c in f.clusters if c.name == cluster]
    return {(m["kind"], m["metadata"]["name"]): m for m in dna.dna_plan(f, c).manifests}


def pod_of(workload: Manifest) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def test_the_hub_runs_on_the_lake_boxes_with_the_leafnode_port_on_the_node() -> None:
    f = fleet()
    topology = build_topology(f)
    assert topology is not None
    objects = manifests(f, "core")
    hub = objects[("StatefulSet", "nats-hub")]
    hub_boxes = [s.box for s in topology.hub]
    assert hub["spec"]["replicas"] == len(hub_boxes) == 3
    terms = pod_of(hub)["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == hub_boxes
    ports = {p["name"]: p for p in pod_of(hub)["containers"][0]["ports"]}
    assert ports["leafnodes"]["hostPort"] == LEAFNODE_PORT
    # A clustered hub keeps its quorum through a drain.
    assert objects[("PodDisruptionBudget", "nats-hub")]["spec"]["minAvailable"] == 2
    conf = objects[("ConfigMap", "nats-hub")]["data"]["nats.conf"]
    assert 'domain: "hub"' in conf and "nats-route://nats-hub-2.nats-hub.data-lake.svc" in conf
    for server in topology.hub[:1]:
        for user in (*server.users, *server.leaf_users):
            assert f'{{user: "{user.name}", password: ${user.variable}' in conf


def strings_and_keys(value: object) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(s for v in value.values() for s in strings_and_keys(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_and_keys(v)]
    return [value] if isinstance(value, str) else []


def test_no_password_is_in_any_manifest() -> None:
    f = fleet()
    checked = 0
    for cluster in f.clusters:
        for manifest in manifests(f, cluster.name).values():
            assert manifest["kind"] != "Secret"
            for text in strings_and_keys(manifest):
                # nats.conf names variables of the Secret's secrets.conf ($DNA_PW_...).
                assert not re.search(r"password:\s*[^$\s]", text), text
                assert text != "password"  # the services' configs name a file, never a value
                checked += "password: $" in text
    assert checked >= 4


def test_each_edge_leaf_dials_the_hub_and_keeps_the_registry_off_the_link() -> None:
    f = fleet()
    topology = build_topology(f)
    assert topology is not None
    for leaf in topology.leaves:
        cluster = f.cluster_of(leaf.box)
        assert cluster is not None
        objects = manifests(f, cluster.name)
        name = dna.leaf_name(leaf.site)
        conf = objects[("ConfigMap", name)]["data"]["nats.conf"]
        assert f'domain: "{leaf.site}"' in conf and "urls: $DNA_HUB_URLS" in conf
        assert '"$O.dna_models.>"' in conf
        assert pod_of(objects[("StatefulSet", name)])["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
            "matchExpressions"][0]["values"] == [leaf.box]


def test_only_dna_pods_and_planned_boxes_reach_nats() -> None:
    f = fleet()
    topology = build_topology(f)
    assert topology is not None
    policy = manifests(f, "core")[("NetworkPolicy", "nats-hub")]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    by_port = {r["ports"][0]["port"]: r["from"] for r in policy["spec"]["ingress"]}
    assert {peer["ipBlock"]["cidr"] for peer in by_port[LEAFNODE_PORT]} == \
        {f"{leaf.address}/32" for leaf in topology.leaves}
    assert all("ipBlock" not in peer for peer in by_port[CLIENT_PORT])


def test_trainer_follows_the_lake_or_runs_on_a_schedule() -> None:
    f = fleet()
    objects = manifests(f, "core")
    speed = objects[("Job", "trainer-speed")]  # every 5000 samples (and every hour)
    assert pod_of(speed)["containers"][0]["command"][-1] != "--once"
    travel = objects[("CronJob", "trainer-travel-time")]  # every 1800 s only
    assert travel["spec"]["schedule"] == "*/30 * * * *"
    assert pod_of(travel)["containers"][0]["command"][-1] == "--once"
    # The core has GPUs: training runs where they are, under the nvidia runtime.
    assert pod_of(speed)["runtimeClassName"] == "nvidia"
    command = pod_of(speed)["containers"][0]["command"]
    assert command[:3] == ["python3", "-m", SERVICES["trainer"].module]


def test_inference_uses_kata_where_the_edge_hosts_it_and_its_config_parses() -> None:
    f = fleet()
    kaist = manifests(f, "edge-kaist")
    jnu = manifests(f, "edge-jnu")
    deployment = kaist[("Deployment", "inference-speed-kaist-edge")]
    assert pod_of(deployment)["runtimeClassName"] == "kata"
    assert "runtimeClassName" not in pod_of(jnu[("Deployment", "inference-speed-jnu-edge")])
    config_map = kaist[("ConfigMap", "inference-speed-kaist-edge")]
    (text,) = config_map["data"].values()
    config = parse(json.loads(text), "configmap")
    leaf = dna.leaf_name("kaist-edge")
    assert config.nats_urls == (f"nats://{leaf}.data-pond.svc:{CLIENT_PORT}",)
    assert ("Service", leaf) in kaist  # the Service the URL names is declared
    assert config.domain == "" and config.bind_address() == ("0.0.0.0", 8480)
    service = kaist[("Service", "inference-speed-kaist-edge")]
    assert service["spec"]["ports"][0]["port"] == SERVICES["inference"].ports[0].port


def test_the_trainer_asks_for_the_cores_gpus_else_runs_under_apptainer() -> None:
    f = fleet()  # two core boxes hold 4 A100 each
    job = manifests(f, "core")[("Job", "trainer-speed")]
    for version in SUPPORTED_KUBERNETES:
        kubernetes_validate.validate(job, version, strict=True)
    pod = pod_of(job)
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert pod["runtimeClassName"] == "nvidia"
    boxes = [b.model_copy(update={"accelerators": []}) for b in f.boxes]
    no_gpus = f.model_copy(update={"boxes": boxes})
    pod = pod_of(manifests(no_gpus, "core")[("Job", "trainer-speed")])
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert pod["runtimeClassName"] == "apptainer"  # the core hosts Apptainer


def test_a_fleet_without_dna_gets_no_objects() -> None:
    f = fleet()
    bare = f.model_copy(update={"dna": None})
    for cluster in bare.clusters:
        assert dna.dna_plan(bare, cluster).manifests == ()
