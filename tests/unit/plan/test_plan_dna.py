"""The D-N-A topology derived from the fleet: hub, leaves, streams, users, services."""

from __future__ import annotations

from pathlib import Path

from dnabox.inventory import load_fleet
from dnabox.plan.dna import HUB_DOMAIN, build_topology


def test_lab_topology(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    topology = build_topology(fleet)
    assert topology is not None
    [hub] = topology.hub
    assert (hub.box, hub.domain, hub.routes) == ("core-1", HUB_DOMAIN, ())
    # Every NATS address is the box's overlay address, never its management address.
    assert hub.address == "10.250.0.11"
    assert {s.box: s.domain for s in topology.leaves} == {"edge-a-1": "edge-a",
                                                          "edge-b-1": "edge-b"}
    management = {str(b.address) for b in fleet.boxes}
    for server in topology.servers:
        assert server.address not in management
    [pond] = topology.ponds
    assert (pond.site, pond.stream, pond.subjects) == ("edge-a", "POND_TRAFFIC",
                                                       ("dna.traffic.edge-a.>",))
    [lake] = topology.lakes
    assert lake.name == "LAKE_TRAFFIC"
    assert [s.api() for s in lake.sources] == [
        {"name": "POND_TRAFFIC",
         "external": {"api": "$JS.edge-a.API", "deliver": "dna-lake.edge-a"}}]
    [publisher] = topology.publishers
    assert (publisher.box, publisher.subject, publisher.server) == (
        "end-a-1", "dna.traffic.edge-a.end-a-1", "edge-a-1")
    edge_b = topology.leaf_of("edge-b")
    assert edge_b is not None
    # edge-b keeps no pond but serves the model: a registry copy sourcing the hub's.
    assert {s.name for s in edge_b.streams} == {"OBJ_dna_models", "KV_dna_models_meta"}
    assert all(src.domain == HUB_DOMAIN for s in edge_b.streams for src in s.sources)
    roles = sorted((s.role, s.box) for s in topology.services)
    assert roles == [("collector", "end-a-1"), ("inference", "edge-a-1"),
                     ("inference", "edge-b-1"), ("trainer", "core-1")]


def test_leaf_users_publish_only_their_pond(repo_root: Path) -> None:
    topology = build_topology(load_fleet(repo_root / "inventory/lab.yaml"))
    assert topology is not None
    leaf = topology.leaf_of("edge-a")
    assert leaf is not None
    site_users = {u.name: u for u in leaf.users if u.site}
    assert set(site_users) == {"dna-edge-a", "dna-end-a"}
    for user in site_users.values():
        samples = [s for s in user.publish if s.startswith("dna.")]
        assert samples == ["dna.*.edge-a.>"]
    assert "DNA_HUB_URLS" in leaf.secret_variables


def test_the_hub_lets_each_edge_leaf_send_its_own_pond_and_read_the_registry(
        repo_root: Path) -> None:
    topology = build_topology(load_fleet(repo_root / "inventory/lab.yaml"))
    assert topology is not None
    [hub] = topology.hub
    users = {u.site: u for u in hub.leaf_users}
    assert set(users) == {"edge-a", "edge-b"}
    for site, user in users.items():
        # Into the hub: only its own lake deliveries, the registry consumers it sources by,
        # message gets of the registry (an inference server's while the copy lags), and
        # answers to the hub's requests; nothing of another site, no admin API.
        assert not [s for s in user.publish if s.startswith(("dna.", "$KV.", "$O."))]
        assert all(s.startswith(("$JS.hub.API.CONSUMER.CREATE.OBJ_dna_models",
                                 "$JS.hub.API.CONSUMER.CREATE.KV_dna_models_meta"))
                   or s in ("$JS.hub.API.STREAM.MSG.GET.OBJ_dna_models",
                            "$JS.hub.API.STREAM.MSG.GET.KV_dna_models_meta")
                   for s in user.publish if s.startswith("$JS.hub.API"))
        assert f"dna-inbox.{site}.>" in user.subscribe and "_INBOX.>" not in user.subscribe
        other = "edge-b" if site == "edge-a" else "edge-a"
        assert not [s for s in (*user.publish, *user.subscribe) if other in s]
        assert f"$JS.{site}.API.>" in user.subscribe
        assert f"dna-registry.{site}.>" in user.subscribe
    # Only edge-a keeps a pond: only its leaf delivers into the lake.
    assert "dna-lake.edge-a.>" in users["edge-a"].publish
    assert not [s for s in users["edge-b"].publish if s.startswith("dna-lake.")]
    # The edges' registry copies receive on their own prefix.
    for leaf in topology.leaves:
        assert {src.deliver for s in leaf.streams for src in s.sources} == {
            f"dna-registry.{leaf.site}"}


def test_playground_hub_is_a_cluster(repo_root: Path) -> None:
    topology = build_topology(load_fleet(repo_root / "inventory/smartx-playground.yaml"))
    assert topology is not None
    assert len(topology.hub) == 3
    assert all(len(s.routes) == 2 for s in topology.hub)
    assert all(s.replicas == 3 for s in topology.hub[0].streams)
    # Only the first member declares the streams (the cluster replicates them).
    assert not topology.hub[1].streams
    lakes = {lake.name: {s.domain for s in lake.sources} for lake in topology.lakes}
    assert lakes == {"LAKE_TRAFFIC": {"postech-edge"},
                     "LAKE_VEHICLES": {"kaist-edge", "jnu-edge"}}
    assert {leaf.site for leaf in topology.leaves} == {"kaist-edge", "postech-edge", "jnu-edge"}


def test_no_dna_section_no_topology(repo_root: Path, tmp_path: Path) -> None:
    text = (repo_root / "inventory/lab.yaml").read_text().split("\n# D-N-A")[0]
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    assert build_topology(load_fleet(path)) is None
