"""Provisioning the D-N-A layer: secrets stay secret, fingerprints move only where a change
lands, a dead nats-server makes its role re-run."""

from __future__ import annotations

import json
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from dnabox.inventory import load_fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.desired import box_variables, plan_fleet
from dnabox.plan.direct_program import ProgramAssets, build_program
from dnabox.plan.dna import SECRETS_FILE, build_topology
from dnabox.provision.dna_credentials import (
    box_secrets,
    credentials_dir,
    passwords,
    secret_digests,
)
from dnabox.provision.plans import controller_plans
from dnabox.provision.remote import decide, parse_preflight, preflight_command

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """The fleet's state dir (as Locations.ensure_fleet_state gives it)."""
    return tmp_path / "state" / "lab"


def where() -> Locations:
    return Locations.discover(ROOT)


def test_credentials_are_private_and_stable(state: Path) -> None:
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    topology = build_topology(fleet)
    assert topology is not None
    first = passwords(state, topology)
    assert passwords(state, topology) == first
    # The admin (user dnabox everywhere) has one password per JetStream domain.
    assert set(first) >= {"dnabox@hub", "dnabox@edge-a", "dnabox@edge-b", "dna-edge-a",
                          "dna-end-a", "dna-core"}
    assert "dnabox" not in first
    assert len(set(first.values())) == len(first)
    directory = credentials_dir(state)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_site_shards_asking_at_once_on_a_fresh_state_dir_get_one_password_each(
        state: Path) -> None:
    """`dnabox up` runs its site shards in parallel; each asks for the secrets of its boxes.
    A fresh state dir used to fail one shard with FileExistsError (seen in the lab)."""
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    topology = build_topology(fleet)
    assert topology is not None
    gate = threading.Barrier(8)

    def ask() -> dict[str, str]:
        gate.wait()  # all eight threads start asking together
        return passwords(state, topology)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: ask(), range(8)))
    assert all(a == answers[0] for a in answers)
    assert all(v for v in answers[0].values()), "nobody read a half-written password"
    assert sorted(p.name for p in credentials_dir(state).iterdir()) == sorted(
        f"{user}.password" for user in answers[0]), "no temporary file is left behind"


def test_no_secret_in_plans_inventory_or_program_text(state: Path) -> None:
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    topology = build_topology(fleet)
    assert topology is not None
    known = passwords(state, topology)
    project = where()
    inventory = render_ansible_inventory(fleet, project)
    plans = plan_fleet(fleet, project, inventory)
    public = yaml.safe_dump(inventory) + "".join(f.content for p in plans.values()
                                                 for f in p.files)
    for secret in known.values():
        assert secret not in public
    secrets = box_secrets(fleet, state, [b.name for b in fleet.boxes])
    leaf = secrets["edge-a-1"][SECRETS_FILE]
    # The leaf logs in to the hub as its site's user, over the overlay.
    assert f"nats-leaf://dna-edge-a:{known['dna-edge-a']}@10.250.0.11:7422" in leaf
    assert known["dna-edge-b"] not in leaf
    # Its own server's admin password, never the hub's.
    assert known["dnabox@edge-a"] in leaf and known["dnabox@hub"] not in leaf
    assert secrets["edge-a-1"]["/etc/dnabox/dna/dnabox.password"] == known["dnabox@edge-a"] + "\n"
    # An end device holds its own password only.
    assert set(secrets["end-a-1"]) == {"/etc/dnabox/dna/dna-end-a.password"}
    program = build_program(
        plans["edge-a-1"], ["dna"], box_variables(inventory, "edge-a-1"),
        assets=ProgramAssets.load(project), fingerprints_document=b"{}",
        state_file="/var/lib/dnabox/fingerprints.json", secrets={"dna": secrets["edge-a-1"]})
    assert f"put {SECRETS_FILE} 0600 changed_dna" in program.script
    assert "step dna: secrets" in program.script


def test_other_credentials_make_the_dna_role_due_and_only_it(tmp_path: Path) -> None:
    """Boxes converged with one state dir's passwords, then planned from another state dir
    (a reinstall, another checkout): the dna role must run again, or the boxes keep
    passwords nobody holds (seen in CI: Authorization Violation on the next publish)."""
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    project = where()
    first = replace(project, state=tmp_path / "one")
    second = replace(project, state=tmp_path / "two")
    before = controller_plans(fleet, first, create_secrets=True)
    again = controller_plans(fleet, first)
    after = controller_plans(fleet, second, create_secrets=True)
    assert {b: p.fingerprints for b, p in again.items()} == {
        b: p.fingerprints for b, p in before.items()}, "the same credentials: nothing due"
    moved = {(box, role) for box, plan in before.items()
             for role, fp in plan.fingerprints.items() if after[box].fingerprints[role] != fp}
    holders = {box.name for box in fleet.boxes if box_secrets(fleet, tmp_path / "one" / "lab",
                                                             [box.name])}
    assert moved == {(box, "dna") for box in holders}
    assert {"core-1", "edge-a-1", "end-a-1"} <= holders


def test_a_plan_before_any_credentials_creates_none_and_shows_the_role_due(
        state: Path) -> None:
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    unborn = secret_digests(fleet, state, create=False)
    assert not (state / "dna").exists(), "plan and status change nothing"
    made = secret_digests(fleet, state, create=True)
    assert set(unborn) == set(made)
    assert all(unborn[box] != made[box] for box in made)
    known = passwords(state, build_topology(fleet))  # type: ignore[arg-type]
    for digests in made.values():
        assert not any(secret in digests["dna"] for secret in known.values())


def test_a_pond_retention_change_touches_only_its_leaf(tmp_path: Path) -> None:
    text = (ROOT / "inventory/lab.yaml").read_text()
    changed = tmp_path / "lab.yaml"
    changed.write_text(text.replace("max_bytes: 64MiB", "max_bytes: 32MiB"))
    project = where()
    before = plan_fleet(load_fleet(ROOT / "inventory/lab.yaml"), project)
    after = plan_fleet(load_fleet(changed), project)
    moved = sorted((box, role) for box, plan in before.items()
                   for role, fp in plan.fingerprints.items()
                   if after[box].fingerprints[role] != fp)
    assert moved == [("edge-a-1", "dna")]
    streams = json.loads(next(f.content for f in after["edge-a-1"].files
                              if f.dest.endswith("streams.json")))
    pond = next(s for s in streams["streams"] if s["name"] == "POND_TRAFFIC")
    assert pond["max_bytes"] == 32 << 20


def test_a_dead_nats_server_makes_the_role_run_again() -> None:
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    plan = plan_fleet(fleet, where())["edge-a-1"]
    command = preflight_command(plan)
    assert "dnabox-dna-apply --probe" in command
    hashes = "".join(f"{f.sha256}  {f.dest}\n" for f in plan.files)
    facts = "edge-a-1\n6.1.0\nx86_64\n2\n1024\ndebian\n"
    head = json.dumps({"fingerprints": plan.fingerprints}) + "\n@@dnabox-section@@\n"
    alive = parse_preflight(head + hashes + "@@dnabox-section@@\n" + facts, "edge-a-1")
    assert all(d.reason == "converged" for d in decide(plan, alive))
    dead = parse_preflight(head + hashes + "@@dnabox-down dna\n@@dnabox-section@@\n" + facts,
                           "edge-a-1")
    reasons = {d.role: d.reason for d in decide(plan, dead)}
    assert reasons["dna"] == "down"
    assert {r for r, why in reasons.items() if why != "converged"} == {"dna"}


def test_status_summary_counts_the_lake_per_site_and_the_lag_per_pond() -> None:
    from dnabox.provision.dna_ops import summarise

    raw = {
        "ponds": [{"site": "edge-a", "box": "edge-a-1", "dataset": "traffic",
                   "stream": "POND_TRAFFIC", "messages": 120, "bytes": 999},
                  {"site": "edge-b", "box": "edge-b-1", "dataset": "traffic",
                   "stream": "POND_TRAFFIC", "error": "no responders"}],
        "lakes": [{"dataset": "traffic", "stream": "LAKE_TRAFFIC", "messages": 150,
                   "subjects": {"dna.traffic.edge-a.end-a-1": 100,
                                "dna.traffic.edge-b.edge-b-1": 50}}],
        "catalogue": {"traffic.edge-a": {"samples": 100}},
        "models": [{"name": "speed", "meta": {"version": 2, "metric": {"mae": 3.1}},
                    "versions": [1, 2], "served": {"edge-a": 2, "edge-b": None}}],
    }
    report = summarise(raw).as_json()
    assert report["lake"] == {"samples": 150, "by_site": {"edge-a": 100, "edge-b": 50},
                              "by_dataset": {"traffic": 150}}
    a, b = report["ponds"]
    assert (a["site"], a["samples"], a["lag"]) == ("edge-a", 120, 20)
    assert (b["site"], b["samples"], b["lag"]) == ("edge-b", None, None)
    assert report["models"] == [{"name": "speed", "version": 2, "metric": {"mae": 3.1},
                                 "served": {"edge-a": 2, "edge-b": None},
                                 "versions": [1, 2]}]


def test_status_reports_what_each_inference_server_serves_over_its_copy() -> None:
    """An edge serves a version its registry copy lacks (read from the hub) or, cut off,
    what it loaded: status says what the server answers, not what the copy holds."""
    from dnabox.provision.dna_ops import summarise

    raw = {"models": [{"name": "speed", "meta": {"version": 3}, "versions": [1, 2, 3],
                       "served": {"edge-a": None, "edge-b": 2}}]}
    serving = {("speed", "edge-a"): 3, ("speed", "edge-b"): None, ("other", "edge-a"): 9}
    [model] = summarise(raw, serving).as_json()["models"]
    assert model["served"] == {"edge-a": 3, "edge-b": None}
