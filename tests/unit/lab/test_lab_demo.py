"""The demo workflow as a library call, with the lab, the provisioner and the proofs faked."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dnabox.inventory import load_fleet
from dnabox.lab import demo
from dnabox.locations import Locations
from dnabox.provision.proofs import Proof

ROOT = Path(__file__).resolve().parents[3]


class RecordingView:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def step(self, title: str) -> None:
        self.seen.append(f"step {title.split(' ', maxsplit=1)[0]}")

    def note(self, text: str) -> None:
        self.seen.append("note")

    def plan(self, rows: Any) -> None:
        self.seen.append(f"plan {len(rows)}")

    def up(self, run: Any) -> None:
        self.seen.append(f"up {run.ok}")

    def proof(self, proof: Proof) -> None:
        self.seen.append(f"proof {proof.ok}")

    def status(self, rows: Any) -> None:
        self.seen.append(f"status {len(rows)}")

    def progress(self) -> Any:
        return nullcontext(lambda event: None)


def fake_lab(monkeypatch: pytest.MonkeyPatch, *, second_up_ok: bool = True,
             proof_ok: bool = True, fail_plan: bool = False, loop_ok: bool = True) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(demo, "render", lambda dot, path: calls.append("picture"))
    monkeypatch.setattr(demo, "up", lambda fleet, log: (calls.append("lab up"), SimpleNamespace(
        started=fleet.boxes, kept=[], seconds=1.0))[1])
    monkeypatch.setattr(demo, "down", lambda fleet: calls.append("lab down"))

    def plan_fleet(fleet: Any, locations: Any) -> dict[str, Any]:
        if fail_plan:
            raise RuntimeError("planner broke")
        calls.append("plan")
        return {}

    monkeypatch.setattr(demo, "controller_plans", plan_fleet)
    monkeypatch.setattr(demo, "read_fleet", lambda fleet, plans: [
        SimpleNamespace(box=b.name, site=b.site, tier="edge", status="converged", error="",
                        decisions=()) for b in fleet.boxes])
    runs = iter([True, second_up_ok])

    class Provisioner:
        def __init__(self, fleet: Any, locations: Any, sink: Any) -> None:
            calls.append("dnabox up")

        def up(self) -> Any:
            return SimpleNamespace(ok=next(runs), ran={"core-1": ["base", "ovs"]})

    monkeypatch.setattr(demo, "Provisioner", Provisioner)
    monkeypatch.setattr(demo, "_prove", lambda fleet: [Proof("ping", proof_ok, "1 ms")])

    def run_loop(fleet: Any, plan: Any, note: Any) -> list[Proof]:
        calls.append(f"dna loop {plan.producer}->{plan.pond_site} {plan.model}")
        return [Proof("served v2", loop_ok, "edge-a")]

    monkeypatch.setattr(demo, "run_loop", run_loop)
    return calls


def run(tmp_path: Path, keep: bool = False) -> tuple[demo.DemoReport, RecordingView]:
    view = RecordingView()
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    report = demo.run_demo(fleet, Locations(ROOT, tmp_path), view,
                           picture=tmp_path / "t.svg", keep=keep)
    return report, view


def test_the_demo_runs_its_eight_steps_and_tears_the_lab_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_lab(monkeypatch)
    report, view = run(tmp_path)
    # The lab fleet's D-N-A layer: end-a-1 publishes into edge-a's pond; its model is
    # trained at the core and served at the edge.
    [loop] = [c for c in calls if c.startswith("dna loop")]
    assert loop.startswith("dna loop end-a-1->edge-a ")
    # Status is read on plans made after `up`: the first made the fleet's D-N-A secrets,
    # whose digest the plans hold (plans from before it read every box as pending).
    assert calls == ["picture", "lab up", "plan", "dnabox up", loop, "dnabox up", "plan",
                     "lab down"]
    assert [s for s in view.seen if s.startswith("step")] == [
        "step 1/8", "step 2/8", "step 3/8", "step 4/8", "step 5/8", "step 6/8", "step 7/8",
        "step 8/8", "step tear"]
    assert report.ok
    document = report.as_json()
    assert document["ok"] is True and document["lab"]["started"] == 4
    assert [r["role_runs"] for r in document["runs"]] == [2, 2]
    assert {s["state"] for s in document["status"]} == {"converged"}


@pytest.mark.parametrize("broken", [{"second_up_ok": False}, {"proof_ok": False},
                                    {"loop_ok": False}])
def test_a_failed_run_or_proof_fails_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              broken: dict[str, bool]) -> None:
    fake_lab(monkeypatch, **broken)
    report, _ = run(tmp_path)
    assert not report.ok and not report.as_json()["ok"]


def test_keep_leaves_the_lab_and_an_error_still_tears_it_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_lab(monkeypatch)
    run(tmp_path, keep=True)
    assert "lab down" not in calls
    calls = fake_lab(monkeypatch, fail_plan=True)
    with pytest.raises(RuntimeError, match="planner broke"):
        run(tmp_path)
    assert calls[-1] == "lab down"
