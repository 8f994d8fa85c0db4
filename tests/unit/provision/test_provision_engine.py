"""The engine's routing, with fakes for SSH, Ansible and the direct program.

Which boxes take the direct path, which go to Ansible (grouped by their pending roles),
what a failure on either path leaves recorded, and which fingerprints a box ends up with.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from dnabox.adapters.ansible import HostStats, PlaybookResult
from dnabox.adapters.jobs import CommandResult
from dnabox.errors import RemoteError
from dnabox.inventory import load_fleet
from dnabox.locations import Locations
from dnabox.plan.dag import WorkUnit
from dnabox.plan.direct_program import DirectProgram
from dnabox.provision.direct_run import DirectOutcome
from dnabox.provision.engine import Provisioner
from dnabox.provision.engine_parts import EngineParts
from dnabox.provision.events import Event
from dnabox.provision.remote import FINGERPRINTS, RoleDecision, fingerprints_document
from dnabox.provision.up_options import Engine, UpOptions

ROOT = Path(__file__).resolve().parents[3]
UNIT = WorkUnit("bootstrap:x", "bootstrap", "x")
CLEAN = HostStats(ok=3, changed=1, failed=0, unreachable=0, skipped=0)
BROKEN = HostStats(ok=1, changed=0, failed=1, unreachable=0, skipped=0)


class FakeConnection:
    def __init__(self, box: str) -> None:
        self.box = box
        self.writes: list[bytes] = []

    def run(self, command: str, *, timeout: float = 600.0, stdin: bytes = b"",
            on_output: Callable[[str], None] | None = None) -> CommandResult:
        assert FINGERPRINTS in command, command
        self.writes.append(stdin)
        return CommandResult(0, "", "", 0.0)


class FakePool:
    def __init__(self) -> None:
        self.connections: dict[str, FakeConnection] = {}

    def get(self, box: str, ssh: object) -> FakeConnection:
        return self.connections.setdefault(box, FakeConnection(box))

    def close(self) -> None:
        pass


class PassThroughBatcher:
    """No coalescing: each request is one batch, run by the engine's own method."""

    def __init__(self, run_batch: Callable[[tuple[str, ...], list[str], str],
                                           dict[str, HostStats]]) -> None:
        self.run_batch = run_batch
        self.calls: list[tuple[tuple[str, ...], list[str]]] = []

    def run(self, roles: Sequence[str], boxes: Sequence[str]) -> dict[str, HostStats]:
        self.calls.append((tuple(roles), list(boxes)))
        return self.run_batch(tuple(roles), list(boxes), f"batch-{len(self.calls)}")


class Fakes:
    def __init__(self, failing_direct: set[str] = frozenset(),  # type: ignore[assignment]
                 ansible_stats: dict[str, HostStats] | None = None,
                 unreported: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.pool = FakePool()
        self.batchers: list[PassThroughBatcher] = []
        self.playbooks: list[dict[str, Any]] = []
        self.programs: dict[str, DirectProgram] = {}
        self.failing_direct = failing_direct
        self.ansible_stats = ansible_stats or {}
        self.unreported = unreported
        self.lock = threading.Lock()

    def batcher(self, run_batch: Any) -> PassThroughBatcher:
        self.batchers.append(PassThroughBatcher(run_batch))
        return self.batchers[-1]

    def run_playbook(self, playbook: Path, inventory: dict[str, Any], **kwargs: Any
                     ) -> PlaybookResult:
        self.playbooks.append(kwargs)
        return PlaybookResult(0, "successful",
                              {box: self.ansible_stats.get(box, CLEAN) for box in kwargs["limit"]
                               if box not in self.unreported})

    def run_direct(self, connection: FakeConnection, program: DirectProgram,
                   on_step: Callable[[str], None],
                   on_change: Callable[[str], None]) -> DirectOutcome:
        with self.lock:
            self.programs[program.box] = program
        on_step("packages")
        if program.box in self.failing_direct:
            return DirectOutcome(False, "packages", error="E: Unable to locate package")
        return DirectOutcome(True, "fingerprints")

    def parts(self) -> EngineParts:
        return EngineParts(pool=self.pool, batcher=self.batcher,  # type: ignore[arg-type]
                           run_playbook=self.run_playbook,
                           run_direct=self.run_direct)  # type: ignore[arg-type]

    def written(self, box: str) -> list[dict[str, str]]:
        connection = self.pool.connections.get(box)
        return [json.loads(w)["fingerprints"] for w in connection.writes] if connection else []


def provisioner(tmp_path: Path, fakes: Fakes, engine: Engine = Engine.AUTO
                ) -> tuple[Provisioner, list[Event]]:
    events: list[Event] = []
    fleet = load_fleet(ROOT / "inventory" / "smartx-playground.yaml")
    return Provisioner(fleet, Locations(ROOT, tmp_path), events.append,
                       UpOptions(engine=engine), fakes.parts()), events


# core-gist-1 runs kata and apptainer (no direct path); edge-jnu-1 runs runc only.
DIRECT_BOX, ANSIBLE_BOX, OTHER_BOX = "edge-jnu-1", "core-gist-1", "core-gist-2"


def test_direct_capable_boxes_go_direct_and_the_rest_to_ansible_grouped_by_roles(
        tmp_path: Path) -> None:
    fakes = Fakes()
    engine, _ = provisioner(tmp_path, fakes)
    outcome = engine._run_roles(UNIT, {DIRECT_BOX: ["base", "ovs"],
                                       ANSIBLE_BOX: ["base", "kata"],
                                       OTHER_BOX: ["base", "kata"],
                                       "core-gist-3": ["apptainer"]})
    assert outcome.status == "changed"
    assert set(fakes.programs) == {DIRECT_BOX}
    assert fakes.programs[DIRECT_BOX].roles == ("base", "ovs")
    # One Ansible run per distinct role list, each limited to its boxes and tagged with them.
    assert sorted(fakes.batchers[0].calls) == [(("apptainer",), ["core-gist-3"]),
                                               (("base", "kata"), [ANSIBLE_BOX, OTHER_BOX])]
    assert sorted((p["tags"], p["limit"]) for p in fakes.playbooks) == [
        (["apptainer"], ["core-gist-3"]), (["base", "kata"], [ANSIBLE_BOX, OTHER_BOX])]
    # Ansible's boxes get their fingerprints written afterwards; the direct program writes
    # its own (inside the program), so the engine writes none for it.
    assert fakes.written(DIRECT_BOX) == []
    plans = engine.plans
    assert fakes.written(ANSIBLE_BOX) == [{r: plans[ANSIBLE_BOX].fingerprints[r]
                                           for r in ("base", "kata")}]
    assert engine._ran == {DIRECT_BOX: ["base", "ovs"], ANSIBLE_BOX: ["base", "kata"],
                           OTHER_BOX: ["base", "kata"], "core-gist-3": ["apptainer"]}


def test_the_ansible_engine_never_takes_the_direct_path(tmp_path: Path) -> None:
    fakes = Fakes()
    engine, _ = provisioner(tmp_path, fakes, Engine.ANSIBLE)
    assert engine._run_roles(UNIT, {DIRECT_BOX: ["base", "ovs"]}).status == "changed"
    assert fakes.programs == {}
    assert fakes.batchers[0].calls == [(("base", "ovs"), [DIRECT_BOX])]
    assert fakes.written(DIRECT_BOX) == [{r: engine.plans[DIRECT_BOX].fingerprints[r]
                                          for r in ("base", "ovs")}]


def test_nothing_pending_touches_no_box(tmp_path: Path) -> None:
    fakes = Fakes()
    engine, _ = provisioner(tmp_path, fakes)
    outcome = engine._run_roles(UNIT, {DIRECT_BOX: [], ANSIBLE_BOX: []})
    assert (outcome.status, outcome.message) == ("ok", "converged")
    assert fakes.programs == {} and fakes.batchers[0].calls == [] and fakes.pool.connections == {}


def test_failures_on_either_path_fail_the_unit_and_record_nothing_for_those_boxes(
        tmp_path: Path) -> None:
    fakes = Fakes(failing_direct={DIRECT_BOX}, ansible_stats={ANSIBLE_BOX: BROKEN})
    engine, events = provisioner(tmp_path, fakes)
    outcome = engine._run_roles(UNIT, {DIRECT_BOX: ["ovs"], "edge-jnu-2": ["ovs"],
                                       ANSIBLE_BOX: ["kata"], OTHER_BOX: ["kata"]})
    assert outcome.status == "failed"
    assert outcome.message == f"failed on {ANSIBLE_BOX}, {DIRECT_BOX}"
    assert fakes.written(ANSIBLE_BOX) == []
    assert fakes.written(OTHER_BOX) == [{"kata": engine.plans[OTHER_BOX].fingerprints["kata"]}]
    assert set(engine._ran) == {"edge-jnu-2", OTHER_BOX}
    assert DIRECT_BOX not in engine._stored
    failed = [e for e in events if e.status == "failed"]
    assert [(e.box, e.message) for e in failed] == [
        (DIRECT_BOX, "packages failed: E: Unable to locate package")]


def test_a_box_ansible_does_not_report_on_counts_as_failed(tmp_path: Path) -> None:
    fakes = Fakes(unreported={ANSIBLE_BOX})
    engine, _ = provisioner(tmp_path, fakes)
    outcome = engine._run_roles(UNIT, {ANSIBLE_BOX: ["kata"], OTHER_BOX: ["kata"]})
    assert (outcome.status, outcome.message) == ("failed", f"failed on {ANSIBLE_BOX}")
    assert fakes.written(ANSIBLE_BOX) == []


def test_converged_keeps_what_the_box_had_adds_what_ran_and_forgets_unplanned_roles(
        tmp_path: Path) -> None:
    engine, _ = provisioner(tmp_path, Fakes())
    desired = engine.plans[ANSIBLE_BOX].fingerprints
    engine._stored[ANSIBLE_BOX] = {"base": "old-base", "ovs": "old-ovs", "retired": "x"}
    assert engine._converged(ANSIBLE_BOX, ["ovs", "kata"]) == {
        "base": "old-base", "ovs": desired["ovs"], "kata": desired["kata"]}
    # A box nothing was stored for yet: only what ran.
    assert engine._converged(OTHER_BOX, ["cni"]) == {
        "cni": engine.plans[OTHER_BOX].fingerprints["cni"]}


@pytest.mark.parametrize("earlier", [{}, {"base": "old-base", "retired": "x"}])
def test_record_writes_the_converged_fingerprints_to_the_box(
        tmp_path: Path, earlier: dict[str, str]) -> None:
    fakes = Fakes()
    engine, _ = provisioner(tmp_path, fakes)
    engine._stored[ANSIBLE_BOX] = dict(earlier)
    expected = engine._converged(ANSIBLE_BOX, ["kata"])
    engine._record(ANSIBLE_BOX, ["kata"])
    assert fakes.pool.connections[ANSIBLE_BOX].writes == [fingerprints_document(expected)]
    assert engine._stored[ANSIBLE_BOX] == expected
    assert engine._ran[ANSIBLE_BOX] == ["kata"]


def test_the_direct_program_records_the_converged_fingerprints(tmp_path: Path) -> None:
    fakes = Fakes()
    engine, _ = provisioner(tmp_path, fakes)
    engine._stored[DIRECT_BOX] = {"base": "old-base"}
    expected = engine._converged(DIRECT_BOX, ["ovs"])
    assert engine._run_roles(UNIT, {DIRECT_BOX: ["ovs"]}).status == "changed"
    assert fingerprints_document(expected).decode() in fakes.programs[DIRECT_BOX].script
    assert engine._stored[DIRECT_BOX] == expected


def test_units_for_some_boxes_need_only_units_of_the_run(tmp_path: Path) -> None:
    fakes = Fakes()
    events: list[Event] = []
    fleet = load_fleet(ROOT / "inventory" / "smartx-playground.yaml")
    engine = Provisioner(fleet, Locations(ROOT, tmp_path), events.append,
                         UpOptions(only_boxes=frozenset({DIRECT_BOX})), fakes.parts())
    units = engine._units()
    ids = {u.id for u in units}
    assert f"preflight:{DIRECT_BOX}" in ids and "preflight:edge-jnu-2" not in ids
    assert all(set(u.needs) <= ids for u in units)
    bootstrap = next(u for u in units if u.id == "bootstrap:jnu-edge")
    assert bootstrap.needs == (f"preflight:{DIRECT_BOX}",)


def test_bootstrap_runs_the_boxes_preflight_cleared_and_names_the_others(
        tmp_path: Path) -> None:
    fakes = Fakes()
    engine, _ = provisioner(tmp_path, fakes)
    site = ("end-gist-nuc-1", "end-gist-nuc-2", "end-gist-pi-1")
    for box in site:
        engine._decisions[box] = [RoleDecision("base", "new")]
    engine._unreachable["end-gist-nuc-2"] = RemoteError("nuc-2 unreachable after 4 attempts")
    engine._wrong_facts["end-gist-pi-1"] = ["pi-1 runs Debian trixie"]
    outcome = engine._bootstrap(WorkUnit("bootstrap:gist-end", "bootstrap", "gist-end", site))
    assert set(fakes.programs) == {"end-gist-nuc-1"}  # only the box preflight cleared ran
    assert outcome.status == "failed"
    assert "end-gist-nuc-2: nuc-2 unreachable" in outcome.message
    assert "end-gist-pi-1: pi-1 runs Debian trixie" in outcome.message
