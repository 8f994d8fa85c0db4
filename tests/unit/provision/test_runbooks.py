"""Runbooks: batch planning, target selection, and the CLI catalogue."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dnabox.cli.app import app
from dnabox.errors import DnaboxError
from dnabox.inventory import load_fleet
from dnabox.locations import ASSETS, Locations
from dnabox.plan.selection import Selection, select_boxes
from dnabox.provision.runbooks import (
    RUNBOOKS,
    RunbookContext,
    RunbookOptions,
    RunbookReport,
    batches,
    run_runbook,
)


def test_batches_go_site_by_site_core_first_within_the_budget(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/smartx-playground.yaml")
    plan = batches(fleet, list(reversed(fleet.boxes)), max_unavailable=2)
    sites = [batch[0].site for batch in plan]
    assert sites[0] == "gist-core" and sites[-1] == "gist-end"
    assert all(len(batch) <= 2 for batch in plan)
    assert all(len({b.site for b in batch}) == 1 for batch in plan), "one site per batch"
    assert sorted(b.name for batch in plan for b in batch) == sorted(b.name for b in fleet.boxes)
    # gist-core has 3 boxes: two batches (2 + 1) before any edge site starts.
    assert [len(b) for b in plan[:2]] == [2, 1] and sites[2] != "gist-core"


def test_select_boxes(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/smartx-playground.yaml")
    assert {b.name for b in select_boxes(fleet, tiers=["end"])} == {
        "end-gist-nuc-1", "end-gist-nuc-2", "end-gist-pi-1"}
    assert [b.name for b in select_boxes(fleet, sites=["jnu-edge"], boxes=["edge-jnu-2"])] == [
        "edge-jnu-2"]
    with pytest.raises(DnaboxError, match="--box nope: no box of that name"):
        select_boxes(fleet, boxes=["nope"])
    with pytest.raises(DnaboxError, match="no box matches all of the given selectors"):
        select_boxes(fleet, sites=["jnu-edge"], tiers=["core"])


def test_every_runbook_playbook_exists_and_parses(repo_root: Path) -> None:
    for spec in RUNBOOKS.values():
        if spec.playbook:
            plays = yaml.safe_load((ASSETS / "playbooks/runbooks" / spec.playbook).read_text())
            assert plays and plays[0]["hosts"] == "all", spec.name


def test_runbook_cli_lists_and_refuses_unknown_names(repo_root: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["runbook", "list", "--json"])
    assert listed.exit_code == 0
    assert "rolling_upgrade" in listed.output and "collect_diagnostics" in listed.output
    unknown = runner.invoke(app, ["runbook", "run", "nope"])
    assert unknown.exit_code == 2
    assert "no runbook named 'nope'" in unknown.output
    missing_box = runner.invoke(app, ["runbook", "run", "add_box", "-i",
                                      str(repo_root / "inventory/lab.yaml")])
    assert missing_box.exit_code == 2 and "--box" in missing_box.output


def test_runbook_pages_are_generated_from_the_code(repo_root: Path) -> None:
    from dnabox.locations import Locations
    from dnabox.provision.runbook_docs import render

    for spec in RUNBOOKS.values():
        page = repo_root / "docs" / "runbooks" / f"{spec.name}.md"
        assert page.read_text() == render(spec, Locations.discover(repo_root)), (
            f"{page} is stale: python -m dnabox.provision.runbook_docs docs/runbooks")


def fake_context(repo_root: Path, tmp_path: Path) -> RunbookContext:
    fleet = load_fleet(repo_root / "inventory/smartx-playground.yaml")
    return RunbookContext(fleet, Locations(repo_root, tmp_path), lambda event: None)


def test_run_runbook_dispatches_to_the_spec_with_the_selected_targets(
        repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], RunbookOptions]] = []

    def run(ctx: RunbookContext, targets: Any, options: RunbookOptions) -> RunbookReport:
        calls.append(([b.name for b in targets], options))
        return RunbookReport("rolling_upgrade", True, message="done")

    monkeypatch.setitem(RUNBOOKS, "rolling_upgrade",
                        replace(RUNBOOKS["rolling_upgrade"], run=run))
    options = RunbookOptions(role="ovs", max_unavailable=2)
    report = run_runbook(fake_context(repo_root, tmp_path), "rolling_upgrade",
                         Selection(sites=("jnu-edge",)), options=options)
    assert calls == [(["edge-jnu-1", "edge-jnu-2"], options)]
    assert report.as_json() == {"runbook": "rolling_upgrade", "ok": True, "message": "done",
                                "batches": [], "ran": {}}


def test_a_runbook_refuses_options_it_does_not_take_and_boxes_it_needs(
        repo_root: Path, tmp_path: Path) -> None:
    context = fake_context(repo_root, tmp_path)
    with pytest.raises(DnaboxError, match="drain does not take --role, --max-unavailable"):
        run_runbook(context, "drain", options=RunbookOptions(role="ovs", max_unavailable=1))
    with pytest.raises(DnaboxError, match="add_box needs --box NAME"):
        run_runbook(context, "add_box", Selection(sites=("jnu-edge",)))
    with pytest.raises(DnaboxError, match="no runbook named 'nope'"):
        run_runbook(context, "nope")
    assert all(set(s.options) <= {f.name for f in fields(RunbookOptions)}
               for s in RUNBOOKS.values())


def test_k8s_upgrade_refusals_are_clear_errors_not_tracebacks(repo_root: Path) -> None:
    runner = CliRunner()
    playground = str(repo_root / "inventory/smartx-playground.yaml")
    missing = runner.invoke(app, ["runbook", "run", "k8s_upgrade", "-i", playground])
    assert missing.exit_code == 2 and "--to" in missing.output
    jump = runner.invoke(app, ["runbook", "run", "k8s_upgrade", "-i", playground, "--to", "1.38",
                               "--cluster", "core"])
    assert jump.exit_code == 2 and "Kubernetes 1.38 is not supported" in jump.output
    assert "Traceback" not in jump.output
    replace = runner.invoke(app, ["runbook", "run", "replace_control_plane", "-i", playground,
                                  "--box", "core-gist-3"])
    assert replace.exit_code == 2 and "--old" in replace.output


def test_every_health_check_is_valid_shell() -> None:
    import subprocess

    from dnabox.plan.catalogue import CATALOGUE

    for spec in CATALOGUE:
        subprocess.run(["sh", "-n", "-c", spec.health_check], check=True)
    kubernetes = next(s for s in CATALOGUE if s.name == "kubernetes")
    assert "Ready" in kubernetes.health_check and "command -v" not in kubernetes.health_check


def test_kubeadm_init_is_guarded_by_a_live_api_server_not_a_file() -> None:
    tasks = yaml.safe_load((ASSETS / "playbooks/roles/kubernetes/tasks/control_plane.yml")
                           .read_text())
    init = next(t for t in tasks if "Initialise" in t["name"])
    assert "creates" not in init["ansible.builtin.command"]
    assert "not kubernetes_admin_conf.stat.exists" in init["when"]
    refuse = next(t for t in tasks if "half-formed" in t["name"])
    assert "kubernetes_existing_ready.rc != 0" in refuse["when"]
    names = [t["name"] for t in tasks]
    assert names.index("Kubernetes | Check that the existing control plane answers (kubeadm)") \
        < names.index(refuse["name"]) < names.index(init["name"])
    # The API server answers before anything goes on: only the kubeconfig hand-off follows.
    assert names[-2:] == ["Kubernetes | Wait for the API server",
                          "Kubernetes | Hand the kubeconfig to the controller"]
