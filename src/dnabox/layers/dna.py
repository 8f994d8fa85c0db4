"""The D-N-A layer of a cluster: NATS (hub or leaf), the trainer and the inference servers.

Everything comes from ``dnabox.plan.dna`` (which NATS server and which service instance runs
on which box) and ``dnabox.plan.dna_services`` (module, arguments, ports, resources): the
same plan the lab runs as containers on the boxes.

- core cluster: the NATS hub as a StatefulSet on the lake's boxes (client and leafnode ports
  on the node, where the edge leaves dial it over the D-N-A network), the trainer as a Job
  following the lake (retrain every N samples) or a CronJob (every T seconds), with the
  core's GPUs when it has some (``dnabox.plan.accelerators.gpu_workload``);
- edge cluster: one leaf StatefulSet per edge site of the cluster, an inference Deployment
  and Service per model served there;
- PodDisruptionBudgets, and NetworkPolicies letting only the D-N-A pods and boxes reach NATS.

Secrets are never declared here: the pods mount ``dna-nats-secrets`` (the same
``secrets.conf`` and password files dnabox writes to the boxes), which ``dnabox`` creates
from the fleet state dir, so no password enters the Pulumi state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from dnabox.dna.service.config import ServiceConfig
from dnabox.inventory.dna_rules import dna_address
from dnabox.inventory.model import Cluster, Fleet
from dnabox.layers.baseline import cluster_tier
from dnabox.layers.manifests import Manifest, dns_label, meta
from dnabox.layers.runtimes import hosted_runtimes
from dnabox.plan import dna_services
from dnabox.plan.accelerators import gpu_workload
from dnabox.plan.dna import (
    CLIENT_PORT,
    CLUSTER_PORT,
    LEAFNODE_PORT,
    MONITOR_PORT,
    DnaTopology,
    NatsServer,
    Service,
    build_topology,
)
from dnabox.plan.dna_services import SERVICES, ServiceSpec

NATS_IMAGE = "nats:2.10.24-alpine"
HUB_NAMESPACE = "data-lake"
LEAF_NAMESPACE = "data-pond"
TRAINING_NAMESPACE = "training"
INFERENCE_NAMESPACE = "inference"
SECRET_NAME = "dna-nats-secrets"
HUB_NAME = "nats-hub"
NATS_CONFIG_DIR = "/etc/nats"
NATS_STORE = "/data/jetstream"
# In a service pod: the Secret's password item, mounted read-only.
PASSWORD_DIR = "/etc/dnabox/dna/secrets"
APP_LABEL = "app.kubernetes.io/name"
PART_LABEL = "app.kubernetes.io/part-of"
PART = "dnabox-dna"
# JetStream keeps a little beyond its limits while it removes old messages.
STORE_HEADROOM = 1.25
MIN_STORE_BYTES = 1024**3


@dataclass(frozen=True)
class DnaPlan:
    """What the layer declares in one cluster (empty when the fleet has no ``dna:``)."""

    hub: tuple[NatsServer, ...]
    leaves: tuple[NatsServer, ...]
    services: tuple[Service, ...]
    manifests: tuple[Manifest, ...]


def _labels(name: str, component: str) -> dict[str, str]:
    return {APP_LABEL: name, PART_LABEL: PART, "app.kubernetes.io/component": component}


def leaf_name(site: str) -> str:
    return dns_label(f"nats-leaf-{site}")


def runtime_class_for(fleet: Fleet, cluster: Cluster, spec: ServiceSpec) -> str | None:
    """Apptainer for training where the core hosts it, Kata for inference where the edge
    does (VM isolation for multi-tenant edge boxes); else the cluster's default (runc)."""
    hosted = {r.name for r in hosted_runtimes(fleet, cluster)}
    wanted = {"trainer": "apptainer", "inference": "kata"}.get(spec.role)
    return wanted if wanted in hosted else None


# --- NATS -------------------------------------------------------------------------------

def _quoted(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def nats_conf(server: NatsServer, routes: tuple[str, ...] = ()) -> str:
    """nats-server's config in a pod: the plan's users, domain and links; passwords and the
    leaf's hub URLs come from ``secrets.conf`` (the Secret), never from this ConfigMap."""
    lines = [
        "# Managed by dnabox (layer dna). Passwords: secrets.conf (Secret dna-nats-secrets).",
        'include "secrets.conf"',
        "server_name: $POD_NAME",
        f"listen: 0.0.0.0:{CLIENT_PORT}",
        f"http: 0.0.0.0:{MONITOR_PORT}",
        f'jetstream {{ domain: "{server.domain}", store_dir: "{NATS_STORE}" }}',
        "authorization { users: [",
    ]
    # A hub's edge leaf users are client users with permissions: nats-server takes none in
    # leafnodes {} and authenticates leaf links against these when leafnodes {} has no
    # authorization (see templates/dna/nats-server.conf.j2).
    for user in (*server.users, *server.leaf_users):
        entry = f'  {{user: "{user.name}", password: ${user.variable}'
        if user.publish:
            entry += (f", permissions: {{publish: {{allow: {_quoted(user.publish)}}}, "
                      f"subscribe: {{allow: {_quoted(user.subscribe)}}}}}")
        lines.append(entry + "}")
    lines.append("] }")
    if server.role == "hub":
        lines.append(f"leafnodes {{ port: {LEAFNODE_PORT} }}")
        if routes:
            lines.append(f'cluster {{ name: "dna-hub", port: {CLUSTER_PORT}, '
                         f"routes: {_quoted(routes)} }}")
    else:
        isolated = _quoted(server.isolated_subjects)
        lines.append(f"leafnodes {{ remotes: [ {{urls: $DNA_HUB_URLS, deny_imports: {isolated},"
                     f" deny_exports: {isolated}}} ] }}")
    return "\n".join(lines) + "\n"


def _store_bytes(topology: DnaTopology, server: NatsServer) -> int:
    limits = [s.max_bytes for s in server.streams if s.max_bytes > 0]
    if server.role == "hub":
        limits += [s.max_bytes for s in topology.lakes if s.max_bytes > 0]
    return max(MIN_STORE_BYTES, int(sum(limits) * STORE_HEADROOM))


def _gibibytes(count: int) -> str:
    return f"{-(-count // 1024**3)}Gi"


def nats_statefulset(topology: DnaTopology, servers: tuple[NatsServer, ...], name: str,
                     namespace: str) -> list[Manifest]:
    """ConfigMap, headless Service, StatefulSet and PodDisruptionBudget of a NATS server
    group (the hub's members, or one edge site's leaf), pinned to the plan's boxes."""
    first = servers[0]
    labels = _labels(name, f"nats-{first.role}")
    replicas = len(servers)
    routes = tuple(f"nats-route://{name}-{i}.{name}.{namespace}.svc:{CLUSTER_PORT}"
                   for i in range(replicas)) if replicas > 1 else ()
    ports = [{"name": "client", "containerPort": CLIENT_PORT, "hostPort": CLIENT_PORT},
             {"name": "monitor", "containerPort": MONITOR_PORT}]
    service_ports = [{"name": "client", "port": CLIENT_PORT, "targetPort": "client"},
                     {"name": "monitor", "port": MONITOR_PORT, "targetPort": "monitor"}]
    if first.role == "hub":
        # Edge leaves dial the hub's boxes on their D-N-A addresses (the plan's URLs).
        ports.append({"name": "leafnodes", "containerPort": LEAFNODE_PORT,
                      "hostPort": LEAFNODE_PORT})
        service_ports.append({"name": "leafnodes", "port": LEAFNODE_PORT,
                              "targetPort": "leafnodes"})
        if routes:
            ports.append({"name": "cluster", "containerPort": CLUSTER_PORT})
            service_ports.append({"name": "cluster", "port": CLUSTER_PORT,
                                  "targetPort": "cluster"})
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": meta(name, namespace, labels),
                  "data": {"nats.conf": nats_conf(first, routes)}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace, labels),
               "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                        "selector": dict(labels), "ports": service_ports}}
    health = {"httpGet": {"path": "/healthz?js-enabled-only=true", "port": "monitor"}}
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(name, namespace, labels),
        "spec": {
            "serviceName": name, "replicas": replicas, "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "affinity": _pinned(tuple(s.box for s in servers), labels),
                    "tolerations": _tier_tolerations(),
                    "terminationGracePeriodSeconds": 60,
                    "containers": [{
                        "name": "nats",
                        "image": NATS_IMAGE,
                        "args": ["--config", f"{NATS_CONFIG_DIR}/nats.conf"],
                        "env": [{"name": "POD_NAME",
                                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "ports": ports,
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "2", "memory": "1Gi"}},
                        "startupProbe": {**health, "periodSeconds": 2, "failureThreshold": 90},
                        "livenessProbe": {**health, "periodSeconds": 30},
                        "readinessProbe": {**health, "periodSeconds": 10},
                        "volumeMounts": [
                            {"name": "config", "mountPath": NATS_CONFIG_DIR, "readOnly": True},
                            {"name": "store", "mountPath": NATS_STORE},
                        ],
                    }],
                    "volumes": [{"name": "config", "projected": {"sources": [
                        {"configMap": {"name": name}},
                        {"secret": {"name": SECRET_NAME, "items": [
                            {"key": f"{name}.secrets.conf", "path": "secrets.conf"}]}},
                    ]}}],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "store", "labels": dict(labels)},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {
                    "requests": {"storage": _gibibytes(_store_bytes(topology, first))}}},
            }],
        },
    }
    # A clustered hub keeps its quorum (2 of 3); a single server may be drained.
    budget: dict[str, Any] = {"minAvailable": replicas // 2 + 1} if replicas > 1 \
        else {"maxUnavailable": 1}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": meta(name, namespace, labels),
           "spec": {**budget, "selector": {"matchLabels": dict(labels)}}}
    return [config_map, service, statefulset, pdb]


def _pinned(boxes: tuple[str, ...], labels: dict[str, str]) -> dict[str, Any]:
    """On the plan's boxes (their D-N-A addresses are what the peers dial), one per box."""
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": list(boxes)}]}]}},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": dict(labels)},
             "topologyKey": "kubernetes.io/hostname"}]},
    }


def _tier_tolerations() -> list[dict[str, str]]:
    # Edge and end nodes carry their tier taint in another tier's cluster.
    return [{"key": f"node-role.kubernetes.io/{tier}", "operator": "Exists",
             "effect": "NoSchedule"} for tier in ("edge", "end")]


def nats_network_policy(fleet: Fleet, topology: DnaTopology, servers: tuple[NatsServer, ...],
                        name: str, namespace: str) -> Manifest:
    """Who may reach a NATS server group: the D-N-A pods of this cluster on the client port,
    the boxes the plan lets in (edge leaves on the hub's leafnode port, producers on their
    leaf's client port), the group itself on the cluster port; nobody else."""
    first = servers[0]
    labels = _labels(name, f"nats-{first.role}")
    from_pods = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                  "podSelector": {"matchLabels": {PART_LABEL: PART}}}
                 for ns in (TRAINING_NAMESPACE, INFERENCE_NAMESPACE, namespace)]
    rules: list[dict[str, Any]] = [{"from": from_pods,
                                    "ports": [{"port": CLIENT_PORT, "protocol": "TCP"}]}]
    if first.role == "hub":
        leaf_hosts = sorted({leaf.address for leaf in topology.leaves})
        if leaf_hosts:
            rules.append({"from": [{"ipBlock": {"cidr": f"{a}/32"}} for a in leaf_hosts],
                          "ports": [{"port": LEAFNODE_PORT, "protocol": "TCP"}]})
        if len(servers) > 1:
            rules.append({"from": [{"podSelector": {"matchLabels": dict(labels)}}],
                          "ports": [{"port": CLUSTER_PORT, "protocol": "TCP"}]})
    else:
        producers = sorted({_address(fleet, topology, p.box) for p in topology.publishers
                            if p.pond == first.site} - {""})
        if producers:
            rules.append({"from": [{"ipBlock": {"cidr": f"{a}/32"}} for a in producers],
                          "ports": [{"port": CLIENT_PORT, "protocol": "TCP"}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": meta(name, namespace, labels),
            "spec": {"podSelector": {"matchLabels": dict(labels)}, "policyTypes": ["Ingress"],
                     "ingress": rules}}


def _address(fleet: Fleet, topology: DnaTopology, box: str) -> str:
    server = topology.server_on(box)
    if server is not None:
        return server.address
    address = dna_address(fleet, fleet.box(box))
    return str(address) if address is not None else ""


# --- the reference service ----------------------------------------------------------------

def pod_config(topology: DnaTopology, service: Service, nats_url: str) -> ServiceConfig:
    """The service's config inside a pod: NATS through the cluster's Service, HTTP on every
    address of the pod, the password from the mounted Secret."""
    config = dna_services.render_config(topology, service)
    bind = f"0.0.0.0:{SERVICES['inference'].ports[0].port}" if service.role == "inference" \
        else ""
    return replace(config, nats_urls=(nats_url,), bind=bind, state_dir=dna_services.STATE_DIR,
                   password_file=f"{PASSWORD_DIR}/{service.user}.password")


def _service_pod(fleet: Fleet, cluster: Cluster, topology: DnaTopology, service: Service,
                 name: str, extra_args: tuple[str, ...], node_site: str) -> dict[str, Any]:
    spec = SERVICES[service.role]
    resources = spec.resources
    limits: dict[str, str] = {"cpu": resources.cpu_limit, "memory": resources.memory_limit}
    requests: dict[str, str] = {"cpu": resources.cpu_request, "memory": resources.memory_request}
    container: dict[str, Any] = {
        "name": spec.role,
        "image": dna_services.IMAGE,
        "command": list(spec.argv(dna_services.config_file(service), *extra_args)),
        "resources": {"requests": requests, "limits": limits},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 65534,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            {"name": "config", "mountPath": dna_services.CONFIG_DIR, "readOnly": True},
            {"name": "nats-login", "mountPath": PASSWORD_DIR, "readOnly": True},
            {"name": "state", "mountPath": dna_services.STATE_DIR},
        ],
    }
    if spec.ports:
        container["ports"] = [{"name": p.name, "containerPort": p.port, "protocol": p.protocol}
                              for p in spec.ports]
        probe = {"httpGet": {"path": "/healthz", "port": spec.ports[0].name}}
        container["readinessProbe"] = {**probe, "periodSeconds": 5}
        container["livenessProbe"] = {**probe, "periodSeconds": 30}
    pod: dict[str, Any] = {
        "nodeSelector": {"dnabox.io/site": node_site},
        "tolerations": _tier_tolerations(),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": name}},
            {"name": "nats-login", "secret": {"secretName": SECRET_NAME, "items": [
                {"key": f"{service.user}.password", "path": f"{service.user}.password"}]}},
            {"name": "state", "emptyDir": {}},
        ],
    }
    runtime = runtime_class_for(fleet, cluster, spec)
    if runtime is not None:
        pod["runtimeClassName"] = runtime
    gpus = gpu_workload(fleet, cluster) if spec.role == "trainer" else None
    if gpus is not None:
        # Training goes where the GPUs are, under the nvidia runtime (it replaces Apptainer).
        pod = gpus.apply_to(pod, spec.role)
    return pod


def _config_map(name: str, namespace: str, labels: dict[str, str], service: Service,
                config: ServiceConfig) -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, namespace, labels),
            "data": {f"{service.name}.json": config.to_json()}}


def trainer_manifests(fleet: Fleet, cluster: Cluster, topology: DnaTopology,
                      service: Service) -> list[Manifest]:
    """Retrain every N samples: a Job following the lake (it never completes, and restarts
    on failure). Only every T seconds: a CronJob training once per period."""
    name = dns_label(service.name)
    labels = _labels(name, "trainer")
    hub_url = f"nats://{HUB_NAME}.{HUB_NAMESPACE}.svc:{CLIENT_PORT}"
    config = _config_map(name, TRAINING_NAMESPACE, labels, service,
                         pod_config(topology, service, hub_url))
    follow = service.retrain_every_samples > 0
    pod = _service_pod(fleet, cluster, topology, service, name, () if follow else ("--once",),
                       service.site)
    template = {"metadata": {"labels": dict(labels)},
                "spec": {**pod, "restartPolicy": "OnFailure"}}
    if follow:
        workload: Manifest = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": meta(name, TRAINING_NAMESPACE, labels),
            "spec": {"backoffLimit": 100, "template": template}}
    else:
        minutes = max(1, service.retrain_every_seconds // 60)
        schedule = f"*/{minutes} * * * *" if minutes < 60 else f"0 */{max(1, minutes // 60)} * * *"
        workload = {
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": meta(name, TRAINING_NAMESPACE, labels),
            "spec": {"schedule": schedule, "concurrencyPolicy": "Forbid",
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"spec": {"backoffLimit": 2, "template": template}}}}
    return [config, workload]


def inference_manifests(fleet: Fleet, cluster: Cluster, topology: DnaTopology,
                        service: Service) -> list[Manifest]:
    """Deployment + Service + PodDisruptionBudget of one model at one edge site."""
    name = dns_label(service.name)
    labels = _labels(name, "inference")
    leaf_url = f"nats://{leaf_name(service.site)}.{LEAF_NAMESPACE}.svc:{CLIENT_PORT}"
    config = _config_map(name, INFERENCE_NAMESPACE, labels, service,
                         pod_config(topology, service, leaf_url))
    replicas = 2 if sum(1 for m in cluster.members if fleet.box(m).site == service.site) > 1 \
        else 1
    pod = _service_pod(fleet, cluster, topology, service, name, (), service.site)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta(name, INFERENCE_NAMESPACE, labels),
        "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}}
    port = SERVICES["inference"].ports[0]
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": meta(name, INFERENCE_NAMESPACE, labels),
           "spec": {"selector": dict(labels), "ports": [
               {"name": port.name, "port": port.port, "targetPort": port.name,
                "protocol": port.protocol}]}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": meta(name, INFERENCE_NAMESPACE, labels),
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(labels)}}}
    return [config, deployment, svc, pdb]


def dna_plan(fleet: Fleet, cluster: Cluster) -> DnaPlan:
    topology = build_topology(fleet)
    if topology is None:
        return DnaPlan((), (), (), ())
    members = set(cluster.members)
    tier = cluster_tier(fleet, cluster)
    hub = tuple(s for s in topology.hub if s.box in members)
    leaves = tuple(s for s in topology.leaves if s.box in members)
    services = tuple(s for s in topology.services
                     if s.box in members and s.role in ("trainer", "inference"))
    manifests: list[Manifest] = []
    if hub and tier == "core":
        manifests += nats_statefulset(topology, hub, HUB_NAME, HUB_NAMESPACE)
        manifests.append(nats_network_policy(fleet, topology, hub, HUB_NAME, HUB_NAMESPACE))
    for leaf in leaves:
        if tier != "edge":
            continue
        name = leaf_name(leaf.site)
        manifests += nats_statefulset(topology, (leaf,), name, LEAF_NAMESPACE)
        manifests.append(nats_network_policy(fleet, topology, (leaf,), name, LEAF_NAMESPACE))
    for service in services:
        if service.role == "trainer" and tier == "core":
            manifests += trainer_manifests(fleet, cluster, topology, service)
        elif service.role == "inference" and tier == "edge":
            manifests += inference_manifests(fleet, cluster, topology, service)
    return DnaPlan(hub, leaves, services, tuple(manifests))
