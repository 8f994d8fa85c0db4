"""The inventory variables of the ``dna`` and ``dna_services`` roles on one box, from the
D-N-A topology.

The role's templates (templates/dna/) read only these, so a change to one pond's retention
changes the variables, the rendered streams file and so the fingerprint of the one box
that keeps that pond, and nothing else.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dnabox.inventory.model import Box, Fleet
from dnabox.plan.dna import (
    CLIENT_PORT,
    CLUSTER_PORT,
    LEAFNODE_PORT,
    MONITOR_PORT,
    STORE_DIR,
    DnaTopology,
    NatsServer,
    User,
    build_topology,
)
from dnabox.plan.dna_container import container_id, start_file
from dnabox.plan.dna_services import SERVICES, config_file


def in_dna_layer(fleet: Fleet, box: Box) -> bool:
    """Whether ``box`` runs a NATS server or a D-N-A client (the ``dna`` role applies)."""
    topology = build_topology(fleet)
    return topology is not None and box.name in topology.clients


def runs_services(fleet: Fleet, box: Box) -> bool:
    """Whether the topology puts a reference service on ``box`` (the ``dna_services``
    role applies)."""
    topology = build_topology(fleet)
    return topology is not None and any(s.box == box.name for s in topology.services)


def _user(user: User) -> dict[str, Any]:
    return {"name": user.name, "variable": user.variable, "publish": list(user.publish),
            "subscribe": list(user.subscribe)}


def _server(server: NatsServer) -> dict[str, Any]:
    return {
        "role": server.role, "box": server.box, "site": server.site, "domain": server.domain,
        "address": server.address, "client_url": server.client_url,
        "client_port": CLIENT_PORT, "leafnode_port": LEAFNODE_PORT,
        "cluster_port": CLUSTER_PORT, "monitor_port": MONITOR_PORT, "store_dir": STORE_DIR,
        "users": [_user(u) for u in server.users],
        "leaf_users": [_user(u) for u in server.leaf_users],
        "routes": list(server.routes), "isolated_subjects": list(server.isolated_subjects),
    }


def _status(topology: DnaTopology, fleet: Fleet) -> dict[str, Any]:
    """What the hub's first member reads for `dnabox dna status` (no retention in it, so a
    pond's retention never touches the hub)."""
    assert fleet.dna is not None
    return {
        "ponds": [{"site": p.site, "box": p.box, "dataset": p.dataset, "stream": p.stream}
                  for p in topology.ponds],
        "lakes": [{"dataset": lake.dataset, "stream": lake.name} for lake in topology.lakes],
        "catalogue": topology.catalogue_bucket,
        "catalogue_keys": [f"{p.dataset}.{p.site}" for p in topology.ponds],
        "schema_versions": {d.name: d.schema_version for d in fleet.dna.datasets},
        "models_meta": topology.models_meta_bucket,
        "models_bucket": topology.models_bucket,
        "models": [{"name": m.name, "serve_at": list(m.serve_at)} for m in fleet.dna.models],
    }


def dna_host_vars(fleet: Fleet, box: Box) -> dict[str, Any]:
    """``dna_server``, ``dna_streams``, ``dna_status`` and ``dna_client`` for ``box``; {}
    outside the D-N-A layer."""
    topology = build_topology(fleet)
    if topology is None or box.name not in topology.clients:
        return {}
    server = topology.server_on(box.name)
    publishes = {p.dataset: p.subject for p in topology.publishers if p.box == box.name}
    client_server = server
    if server is None:
        leaf_box = next((p.server for p in topology.publishers if p.box == box.name), "")
        client_server = topology.server_on(leaf_box) or topology.hub[0]
    assert client_server is not None
    own_user = next((s.user for s in topology.services if s.box == box.name), "dnabox")
    first_hub = bool(topology.hub) and topology.hub[0].box == box.name
    daemons = [s for s in topology.services
               if s.box == box.name and SERVICES[s.role].long_running]
    return {
        # The dna_services role: the containers it keeps running (their files are generated:
        # dnabox.plan.dna_container.box_files).
        "dna_services_daemons": [{"name": s.name, "container": container_id(s),
                                  "config": config_file(s), "password": s.password_file,
                                  "start": start_file(s)}
                                 for s in daemons],
        "dna_server": _server(server) if server is not None else {
            "role": "client", "client_url": client_server.client_url},
        "dna_streams": [s.api_config() for s in server.streams] if server is not None else [],
        "dna_status": _status(topology, fleet) if first_hub else {},
        "dna_client": {"server": client_server.client_url, "user": own_user, "box": box.name,
                       "site": box.site, "publishes": publishes,
                       "services": [asdict(s) | {"password_file": s.password_file}
                                    for s in topology.services if s.box == box.name]},
    }
