"""The ansible-runner adapter: typed events and per-host counts, secrets not left behind."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from dnabox.adapters.ansible import (
    KEEP_ARTIFACTS,
    HostStats,
    TaskEvent,
    host_stats,
    prune_artifacts,
    run_playbook,
    task_event,
)


def event(name: str, **data: object) -> dict[str, object]:
    return {"event": name, "event_data": {"host": "b1", "role": "ovs", "task": "T", **data}}


def test_task_events_map_to_statuses() -> None:
    assert task_event(event("runner_on_ok", res={"changed": False})) == TaskEvent(
        "b1", "ovs", "T", "ok")
    assert task_event(event("runner_on_ok", res={"changed": True})).status == "changed"
    failed = task_event(event("runner_on_failed", res={"msg": "boom"}))
    assert failed is not None and failed.status == "failed" and failed.message == "boom"
    assert task_event(event("runner_on_failed", ignore_errors=True, res={})).status == "ok"
    assert task_event(event("runner_on_skipped")).status == "skipped"
    assert task_event(event("runner_on_unreachable", res={"msg": "x"})).status == "unreachable"
    assert task_event(event("playbook_on_task_start")) is None


def test_host_stats_from_the_recap() -> None:
    stats = {"ok": {"a": 5, "b": 3}, "changed": {"a": 2}, "failures": {"b": 1},
             "dark": {"c": 1}, "skipped": {"a": 4}, "processed": {"a": 1, "b": 1, "c": 1}}
    assert host_stats(stats) == {
        "a": HostStats(ok=5, changed=2, failed=0, unreachable=0, skipped=4),
        "b": HostStats(ok=3, changed=0, failed=1, unreachable=0, skipped=0),
        "c": HostStats(ok=0, changed=0, failed=0, unreachable=1, skipped=0),
    }
    assert host_stats(None) == {}


PLAYBOOK = """
- name: Adapter check
  hosts: all
  gather_facts: false
  tasks:
    - name: Unchanged
      ansible.builtin.command: "true"
      changed_when: false
    - name: Changed
      ansible.builtin.command: "true"
    - name: Skipped
      ansible.builtin.command: "true"
      when: false
    - name: Secret
      ansible.builtin.debug:
        msg: "{{ secret }}"
      no_log: true
    - name: Fails on b2
      ansible.builtin.fail:
        msg: b2 is broken
      when: inventory_hostname == 'b2'
"""


def test_run_playbook_counts_streams_and_cleans_up(tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    inventory = {"all": {"hosts": {"b1": None, "b2": None},
                         "vars": {"ansible_connection": "local",
                                  "ansible_python_interpreter": sys.executable}}}
    events: list[TaskEvent] = []
    private = tmp_path / "run"
    result = run_playbook(playbook, inventory, private_data_dir=private,
                          extravars={"secret": "hunter2-secret"}, on_event=events.append,
                          forks=2)
    assert result.rc != 0 and not result.succeeded
    assert result.hosts["b1"] == HostStats(ok=3, changed=1, failed=0, unreachable=0, skipped=2)
    assert result.hosts["b2"].failed == 1
    statuses = {(e.host, e.task): e.status for e in events}
    assert statuses[("b1", "Changed")] == "changed"
    assert statuses[("b2", "Fails on b2")] == "failed"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert not (private / "env" / "extravars").exists()
    leaked = [p for p in private.rglob("*") if p.is_file()
              and "hunter2-secret" in p.read_text(errors="replace")]
    assert leaked == []


def test_limit_and_tags_reach_ansible(tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.replace("    - name: Changed\n",
                                         "    - name: Changed\n      tags: [only]\n"))
    inventory = {"all": {"hosts": {"b1": None, "b2": None},
                         "vars": {"ansible_connection": "local", "secret": "s",
                                  "ansible_python_interpreter": sys.executable}}}
    result = run_playbook(playbook, inventory, private_data_dir=tmp_path / "run",
                          limit=["b1"], tags=["only"])
    assert result.succeeded, result
    assert set(result.hosts) == {"b1"}
    assert result.hosts["b1"].changed == 1 and result.hosts["b1"].ok == 1


@pytest.mark.parametrize("missing", ["extravars", "envvars"])
def test_secret_inputs_are_removed_even_when_absent(tmp_path: Path, missing: str) -> None:
    from dnabox.adapters.ansible import _remove_secret_inputs

    (tmp_path / "env").mkdir()
    (tmp_path / "env" / missing).write_text("x")
    _remove_secret_inputs(tmp_path)
    assert not (tmp_path / "env" / missing).exists()


def test_a_killed_runs_leftovers_and_the_environment_reach_no_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ansible-runner writes env/extravars only where none exists (else the extra variables,
    the D-N-A secrets, go on the command line) and saves every run's command with the whole
    environment (PULUMI_CONFIG_PASSPHRASE in CI) in artifacts/<uuid>/command."""
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "passphrase-in-the-environment")
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    inventory = {"all": {"hosts": {"b1": None},
                         "vars": {"ansible_connection": "local",
                                  "ansible_python_interpreter": sys.executable}}}
    private = tmp_path / "run"
    (private / "env").mkdir(parents=True)
    (private / "env" / "extravars").write_text('{"secret": "a killed run\'s secret"}')
    result = run_playbook(playbook, inventory, private_data_dir=private,
                          extravars={"secret": "hunter2-secret"})
    assert result.succeeded, result
    leaked = [p.relative_to(private) for p in private.rglob("*") if p.is_file() and any(
        s in p.read_text(errors="replace") for s in (
            "hunter2-secret", "killed run", "passphrase-in-the-environment"))]
    assert leaked == []
    # What the run was stays readable: its command and the variables dnabox set.
    assert result.artifact_dir is not None and (result.artifact_dir / "stdout").is_file()
    command = json.loads((result.artifact_dir / "command").read_text())
    assert "ansible-playbook" in command["command"][0]
    assert command["env"]["ANSIBLE_PIPELINING"] == "True"


def artifact(root: Path, name: str, age: int, status: str | None) -> Path:
    run = root / "artifacts" / name
    run.mkdir(parents=True)
    if status is not None:
        (run / "status").write_text(status)
    os.utime(run, (1_000_000 - age, 1_000_000 - age))
    return run


def test_prune_keeps_the_newest_runs_and_the_newest_failure(tmp_path: Path) -> None:
    old_failure = artifact(tmp_path, "f-old", 90, "failed")
    failure = artifact(tmp_path, "f-new", 50, "failed")
    older = [artifact(tmp_path, f"ok-{age}", age, "successful") for age in (80, 70, 60)]
    newest = [artifact(tmp_path, f"ok-{age}", age, "successful") for age in (30, 20, 10)]
    removed = prune_artifacts(tmp_path)
    assert sorted(removed) == sorted([old_failure, *older])
    assert sorted((tmp_path / "artifacts").iterdir()) == sorted([failure, *newest])
    # A newer failure replaces it; a run that left no status (killed) counts as failed.
    killed = artifact(tmp_path, "killed", 5, None)
    assert sorted(prune_artifacts(tmp_path)) == sorted([failure, newest[0]])
    assert sorted((tmp_path / "artifacts").iterdir()) == sorted([killed, *newest[1:]])


def test_a_failed_run_outlives_later_successful_ones(tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    inventory = {"all": {"hosts": {"b1": None, "b2": None},
                         "vars": {"ansible_connection": "local", "secret": "s",
                                  "ansible_python_interpreter": sys.executable}}}
    private = tmp_path / "run"
    failed = run_playbook(playbook, inventory, private_data_dir=private, forks=2)
    assert not failed.succeeded and failed.artifact_dir is not None
    for _ in range(KEEP_ARTIFACTS + 1):
        assert run_playbook(playbook, inventory, private_data_dir=private,
                            limit=["b1"]).succeeded
    runs = list((private / "artifacts").iterdir())
    assert len(runs) == KEEP_ARTIFACTS + 1 and failed.artifact_dir in runs
    assert "b2 is broken" in (failed.artifact_dir / "stdout").read_text()
