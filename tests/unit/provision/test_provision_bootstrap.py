"""`dnabox bootstrap` as a library call: selection, the artifact gate, the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dnabox.adapters.ansible import HostStats, PlaybookResult
from dnabox.inventory import load_fleet
from dnabox.locations import Locations
from dnabox.plan.artifacts import ArtifactMissing
from dnabox.plan.selection import Selection
from dnabox.provision import bootstrap as module
from dnabox.provision.bootstrap import bootstrap

ROOT = Path(__file__).resolve().parents[3]


def test_bootstrap_runs_site_yml_on_the_selection_and_reports_every_box(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[dict[str, Any]] = []

    def run_playbook(playbook: Path, inventory: dict[str, Any], **kwargs: Any
                     ) -> PlaybookResult:
        runs.append({"playbook": playbook.name, **kwargs})
        # end-a-1 is never reported on (unreachable before the first task).
        return PlaybookResult(2, "failed", {"edge-a-1": HostStats(5, 2, 0, 0, 1)})

    monkeypatch.setattr(module, "run_playbook", run_playbook)
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    started: list[list[str]] = []
    report = bootstrap(fleet, Locations(ROOT, tmp_path), Selection(sites=("edge-a", "end-a")),
                       roles=["ovs"],
                       forks=7, on_start=started.append)
    assert started == [["edge-a-1", "end-a-1"]]
    assert [(r["playbook"], r["limit"], r["tags"], r["forks"]) for r in runs] == [
        ("site.yml", ["edge-a-1", "end-a-1"], ["ovs"], 7)]
    assert report.failed == ["end-a-1"] and not report.ok
    assert report.as_json()["boxes"] == [
        {"name": "edge-a-1", "ok": 5, "changed": 2, "failed": 0, "unreachable": 0},
        {"name": "end-a-1", "ok": 0, "changed": 0, "failed": 1, "unreachable": 0}]


def test_missing_artifacts_stop_bootstrap_before_any_box(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "run_playbook", lambda *a, **k: pytest.fail("ran a playbook"))
    fleet = load_fleet(ROOT / "inventory" / "smartx-playground.yaml")
    undeclared = fleet.model_copy(update={"artifacts": fleet.artifacts.model_copy(
        update={"files": []})})
    with pytest.raises(ArtifactMissing, match="no box was touched"):
        bootstrap(undeclared, Locations(ROOT, tmp_path), on_start=lambda boxes: pytest.fail(
            "started"))


def test_generated_files_live_only_while_their_run_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run directory is reused run after run: a copy per content ever generated used to
    stay there for good (and a killed run's copies with it)."""
    seen: list[list[Path]] = []

    def run_playbook(playbook: Path, inventory: dict[str, Any], **kwargs: Any
                     ) -> PlaybookResult:
        per_box = kwargs["extravars"]["dnabox_generated_files"]
        sources = sorted({Path(f["src"]) for files in per_box.values() for f in files})
        assert sources and all(p.is_file() for p in sources)  # there while Ansible copies
        seen.append(sorted(kwargs["private_data_dir"].joinpath("generated").iterdir()))
        return PlaybookResult(0, "successful", {"edge-a-1": HostStats(5, 2, 0, 0, 0)})

    monkeypatch.setattr(module, "run_playbook", run_playbook)
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    locations = Locations(ROOT, tmp_path)
    generated = locations.fleet_state(fleet.name) / "ansible" / "bootstrap" / "generated"
    generated.mkdir(parents=True)
    (generated / ("0" * 64)).write_text("a killed run's copy")
    report = bootstrap(fleet, locations, Selection(boxes=("edge-a-1",)),
                       roles=["dna_services"])
    assert report.ok
    assert seen and generated / ("0" * 64) not in seen[0]
    assert not generated.exists()


def test_bootstrap_waits_for_no_other_run_of_the_fleet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs would share the run directory and its extravars (the second's on the
    command line): bootstrap takes the fleet's lock like `dnabox up`."""
    from dnabox.errors import LockHeld
    from dnabox.provision.lock import FleetLock

    monkeypatch.setattr(module, "run_playbook", lambda *a, **k: pytest.fail("ran a playbook"))
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    locations = Locations(ROOT, tmp_path)
    with FleetLock(locations.ensure_fleet_state(fleet.name)), pytest.raises(LockHeld):
        bootstrap(fleet, locations, Selection(boxes=("edge-a-1",)), roles=["ovs"])
