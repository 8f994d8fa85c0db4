"""The scheduler: DAG order, failure isolation per site, bounded concurrency, resume."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dnabox.errors import LockHeld, RemoteError
from dnabox.inventory import load_fleet
from dnabox.plan.dag import WorkUnit, build_dag
from dnabox.provision.events import Event
from dnabox.provision.journal import Journal
from dnabox.provision.lock import FleetLock
from dnabox.provision.scheduler import Scheduler, UnitOutcome


def unit(uid: str, site: str = "", needs: tuple[str, ...] = ()) -> WorkUnit:
    return WorkUnit(uid, uid.split(":", maxsplit=1)[0], site, (), "", needs)


def test_dag_puts_every_unit_after_what_it_needs(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/smartx-playground.yaml")
    units = build_dag(fleet)
    seen: set[str] = set()
    for u in units:
        assert set(u.needs) <= seen, u.id
        seen.add(u.id)
    by_id = {u.id: u for u in units}
    # A site's bootstrap waits only for its own boxes, never for another site.
    assert by_id["bootstrap:kaist-edge"].needs == (
        "preflight:edge-kaist-1", "preflight:edge-kaist-2")
    # Joins wait for the control plane; the control plane for its own site only.
    assert "control_plane:edge-kaist" in by_id["join:edge-kaist"].needs
    assert by_id["control_plane:core"].needs == ("bootstrap:gist-core",)


def test_a_failed_site_blocks_only_its_dependents() -> None:
    units = [unit("bootstrap:a", "a"), unit("bootstrap:b", "b"),
             unit("verify:a", "a", ("bootstrap:a",)), unit("verify:b", "b", ("bootstrap:b",)),
             unit("join:x", "", ("verify:a",))]

    def execute(u: WorkUnit) -> UnitOutcome:
        if u.id == "bootstrap:a":
            raise RemoteError("box a-1 unreachable")
        return UnitOutcome("ok")

    events: list[Event] = []
    results = Scheduler(units, execute, events.append).run()
    assert results["bootstrap:a"].status == "failed"
    assert "a-1 unreachable" in results["bootstrap:a"].message
    assert results["verify:a"].status == "blocked"
    assert results["join:x"].status == "blocked"  # transitively
    assert results["bootstrap:b"].status == "ok"
    assert results["verify:b"].status == "ok"
    assert any(e.status == "blocked" and e.unit == "verify:a" for e in events)


def test_a_bug_in_one_unit_is_contained() -> None:
    def execute(u: WorkUnit) -> UnitOutcome:
        if u.id == "bootstrap:a":
            raise KeyError("oops")
        return UnitOutcome("ok")

    results = Scheduler([unit("bootstrap:a", "a"), unit("bootstrap:b", "b")], execute,
                        lambda e: None).run()
    assert results["bootstrap:a"].status == "failed"
    assert results["bootstrap:b"].status == "ok"


@pytest.mark.parametrize(("max_parallel", "per_site", "expected"), [(3, 8, 3), (16, 2, 2)])
def test_concurrency_is_bounded(max_parallel: int, per_site: int, expected: int) -> None:
    active, peak = 0, 0
    lock = threading.Lock()

    def execute(u: WorkUnit) -> UnitOutcome:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return UnitOutcome("ok")

    units = [unit(f"preflight:b{i}", "s") for i in range(8)]
    Scheduler(units, execute, lambda e: None, max_parallel=max_parallel,
              per_site=per_site).run()
    assert peak == expected


def test_resume_skips_what_the_interrupted_run_finished(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    run = journal.start_run("plan-1")
    journal.unit_done(run, "bootstrap:a", "changed")
    journal.unit_done(run, "bootstrap:b", "failed")
    # No run_finished: the run was interrupted.
    assert journal.resumable("plan-1") == {"bootstrap:a"}
    assert journal.resumable("plan-2") == set(), "a different plan must redo everything"
    executed: list[str] = []

    def execute(u: WorkUnit) -> UnitOutcome:
        executed.append(u.id)
        return UnitOutcome("ok")

    results = Scheduler([unit("bootstrap:a", "a"), unit("bootstrap:b", "b")], execute,
                        lambda e: None, already_done=journal.resumable("plan-1")).run()
    assert executed == ["bootstrap:b"]
    assert results["bootstrap:a"].status == "skipped"
    journal.finish_run(run, ok=False)
    assert journal.resumable("plan-1") == {"bootstrap:a"}, "a failed run can be resumed"
    journal.finish_run(run, ok=True)
    assert journal.resumable("plan-1") == set(), "a successful run leaves nothing to resume"


def test_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    run = journal.start_run("p")
    journal.unit_done(run, "preflight:x", "ok")
    with journal.path.open("a") as handle:
        handle.write('{"event": "unit", "run": "')
    assert journal.resumable("p") == {"preflight:x"}


def test_second_run_on_the_same_fleet_is_refused(tmp_path: Path) -> None:
    with FleetLock(tmp_path):
        with pytest.raises(LockHeld) as caught:
            FleetLock(tmp_path).acquire()
        assert "another dnabox run" in caught.value.message
    # Released: a later run gets the lock.
    with FleetLock(tmp_path):
        pass


def test_a_need_outside_the_run_is_refused_before_anything_runs() -> None:
    executed: list[str] = []

    def execute(u: WorkUnit) -> UnitOutcome:
        executed.append(u.id)
        return UnitOutcome("ok")

    with pytest.raises(ValueError, match="verify:a needs bootstrap:z"):
        Scheduler([unit("bootstrap:a", "a"), unit("verify:a", "a", ("bootstrap:z",))],
                  execute, lambda e: None).run()
    assert executed == []


def test_a_cycle_is_refused_before_anything_runs() -> None:
    executed: list[str] = []

    def execute(u: WorkUnit) -> UnitOutcome:
        executed.append(u.id)
        return UnitOutcome("ok")

    units = [unit("preflight:x", "a"), unit("bootstrap:a", "a", ("verify:a", "preflight:x")),
             unit("verify:a", "a", ("bootstrap:a",))]
    with pytest.raises(ValueError, match="cycle") as caught:
        Scheduler(units, execute, lambda e: None).run()
    assert "bootstrap:a" in str(caught.value) and "verify:a" in str(caught.value)
    assert executed == []


def test_units_run_only_after_everything_they_need(repo_root: Path) -> None:
    units = build_dag(load_fleet(repo_root / "inventory/smartx-playground.yaml"))
    finished: set[str] = set()
    early: list[str] = []
    lock = threading.Lock()

    def execute(u: WorkUnit) -> UnitOutcome:
        with lock:
            early.extend(f"{u.id} before {n}" for n in u.needs if n not in finished)
        with lock:
            finished.add(u.id)
        return UnitOutcome("ok")

    # Reversed: the order of the list must not matter, only the needs.
    results = Scheduler(list(reversed(units)), execute, lambda e: None).run()
    assert early == []
    assert set(results) == {u.id for u in units}


def test_a_tolerated_failure_lets_the_unit_run_unless_every_tolerated_need_failed() -> None:
    units = [WorkUnit("preflight:a-1", "preflight", "a", ("a-1",)),
             WorkUnit("preflight:a-2", "preflight", "a", ("a-2",)),
             WorkUnit("preflight:b-1", "preflight", "b", ("b-1",)),
             WorkUnit("bootstrap:a", "bootstrap", "a", ("a-1", "a-2"),
                      needs=("preflight:a-1", "preflight:a-2"),
                      tolerates=("preflight:a-1", "preflight:a-2")),
             WorkUnit("bootstrap:b", "bootstrap", "b", ("b-1",), needs=("preflight:b-1",),
                      tolerates=("preflight:b-1",))]
    ran: list[str] = []

    def execute(u: WorkUnit) -> UnitOutcome:
        ran.append(u.id)
        if u.id in {"preflight:a-1", "preflight:b-1"}:
            return UnitOutcome("failed", f"{u.boxes[0]} unreachable")
        return UnitOutcome("ok")

    results = Scheduler(units, execute, lambda e: None).run()
    assert results["bootstrap:a"].status == "ok" and "bootstrap:a" in ran  # a-2 answered
    assert results["bootstrap:b"].status == "blocked"  # its only box never answered
    assert "bootstrap:b" not in ran
