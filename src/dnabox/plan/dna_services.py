"""The one definition of the reference X+AI service's programs.

Name, module, arguments, ports, resources and config file of the collector, the trainer and
the inference server. The lab runs them with containerd on the boxes
(``dnabox.plan.dna_container``) and the Pulumi ``dna`` layer runs them as Pods
(``dnabox.layers.dna``); both read this table, so the two forms cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dnabox.dna.service.config import ServiceConfig
from dnabox.plan.dna import HUB_DOMAIN, INFERENCE_PORT, DnaTopology, Service, inbox_prefix

ServiceRole = Literal["collector", "trainer", "inference"]
# Inside the container and on the box: the same paths, bind-mounted.
CONFIG_DIR = "/etc/dnabox/dna/services"
STATE_DIR = "/var/lib/dnabox/dna/state"
# The image the Kubernetes form runs (built from images/dna-service/Containerfile).
IMAGE = "ghcr.io/dnabox/dna-service:0.1.0"


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    protocol: Literal["TCP", "UDP"] = "TCP"


@dataclass(frozen=True)
class Resources:
    """Kubernetes quantities; the lab converts them for ``ctr run``."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


@dataclass(frozen=True)
class ServiceSpec:
    role: ServiceRole
    module: str
    ports: tuple[Port, ...]
    resources: Resources
    # Which tier's boxes run it (the topology says which box exactly).
    tier: Literal["core", "edge", "end"]
    # Long-running (a Deployment, a detached container) or run to completion.
    long_running: bool = True

    def argv(self, config_file: str, *extra: str) -> tuple[str, ...]:
        return ("python3", "-m", self.module, "--config", config_file, *extra)


SERVICES: dict[ServiceRole, ServiceSpec] = {
    # Run to completion (``--count N``), not a daemon: its sample ids <box>:<seq> share the
    # box's sequence with ``dnabox dna publish``, so the box form ships its code and config
    # and starts no container (the Kubernetes form runs none either).
    "collector": ServiceSpec(
        "collector", "dnabox.dna.service.collector", (),
        Resources("50m", "64Mi", "500m", "128Mi"), "end", long_running=False),
    # The trainer keeps the lake's samples in memory while it follows the lake.
    "trainer": ServiceSpec(
        "trainer", "dnabox.dna.service.trainer", (),
        Resources("500m", "512Mi", "2", "2Gi"), "core"),
    "inference": ServiceSpec(
        "inference", "dnabox.dna.service.inference", (Port("http", INFERENCE_PORT),),
        Resources("100m", "96Mi", "1", "256Mi"), "edge"),
}


def config_file(service: Service) -> str:
    return f"{CONFIG_DIR}/{service.name}.json"


def render_config(topology: DnaTopology, service: Service) -> ServiceConfig:
    """The config file content of one service instance of the topology.

    Collectors and inference servers talk to the JetStream of the leaf they connect to, so
    their domain is left empty (the server's own, ``$JS.API``): a site's clients may publish
    to ``$JS.API.>`` at their leaf, and that API never crosses the leafnode link. The trainer
    names the hub's domain.
    """
    local = service.role in ("collector", "inference")
    return ServiceConfig(
        role=service.role, site=service.site, box=service.box, dataset=service.dataset,
        nats_urls=service.nats_urls, domain="" if local else service.domain, user=service.user,
        password_file=service.password_file, model=service.model, subject=service.subject,
        pond_stream=service.pond_stream, lake_stream=service.lake_stream,
        registry_origin=HUB_DOMAIN if service.role == "inference" else "",
        inbox_prefix=inbox_prefix(service.site) if service.role == "inference" else "",
        catalogue_bucket=topology.catalogue_bucket, models_bucket=topology.models_bucket,
        models_meta_bucket=topology.models_meta_bucket, bind=service.bind,
        retrain_every_samples=service.retrain_every_samples,
        retrain_every_seconds=float(service.retrain_every_seconds), state_dir=STATE_DIR,
        schema_version=service.schema_version)


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Ki|Mi|Gi)?$")


def cpus(quantity: str) -> float:
    """A Kubernetes CPU quantity ("500m", "2") as a number of CPUs."""
    match = _CPU.match(quantity)
    if match is None:
        raise ValueError(f"not a CPU quantity: {quantity}")
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("256Mi") in bytes."""
    match = _MEMORY.match(quantity)
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity}")
    scale = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}[match.group(2)]
    return int(match.group(1)) * scale
