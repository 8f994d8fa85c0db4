"""ansible-runner, wrapped once: every dnabox caller runs playbooks through ``run_playbook``.

The adapter owns the settings that make Ansible fast enough for the hot path (pipelining,
persistent SSH control connections, minimal facts) and the hygiene around secrets (a 0700
private data dir, extravars and env files removed before and after the run, the controller's
environment kept out of the run's ``command`` record, events not written to disk unless
asked). Host keys stay strict: the rendered inventory carries the fleet's known_hosts.

A private data dir is reused run after run (``<fleet state>/ansible/<label>``); each run
leaves ``artifacts/<uuid>/`` (stdout, status, rc, the recap), of which ``prune_artifacts``
keeps the newest ``KEEP_ARTIFACTS`` plus the newest failed one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dnabox.errors import EnvironmentProblem

TaskStatus = Literal["ok", "changed", "failed", "skipped", "unreachable"]


@dataclass(frozen=True)
class HostStats:
    ok: int
    changed: int
    failed: int
    unreachable: int
    skipped: int


@dataclass(frozen=True)
class TaskEvent:
    host: str
    role: str
    task: str
    status: TaskStatus
    # Why a task failed (Ansible's msg; already censored for no_log tasks), else ''.
    message: str = ""


@dataclass(frozen=True)
class PlaybookResult:
    rc: int
    status: str  # ansible-runner's: successful | failed | timeout | canceled
    hosts: dict[str, HostStats]
    # This run's artifacts/<uuid> (its stdout is the Ansible log), when runner made one.
    artifact_dir: Path | None = None

    @property
    def succeeded(self) -> bool:
        return self.rc == 0 and all(h.failed == 0 and h.unreachable == 0
                                    for h in self.hosts.values())


# Ansible reads these from the environment; the same values belong in a hand-written
# ansible.cfg when comparing with plain ansible-playbook (see docs/BOOTSTRAP.md).
PERFORMANCE_ENV: dict[str, str] = {
    # One SSH round trip per module instead of three (needs no requiretty; Debian has none).
    "ANSIBLE_PIPELINING": "True",
    # Reuse one SSH connection per box for the whole run (and the next one, within 120 s).
    # A dropped link (no reset) is noticed in ~15 s instead of at the task timeout.
    "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s "
                        "-o ServerAliveInterval=5 -o ServerAliveCountMax=3",
    "ANSIBLE_GATHERING": "smart",
    "ANSIBLE_HOST_KEY_CHECKING": "True",
    # Transient SSH failures (refused while sshd restarts, resets) get retried.
    "ANSIBLE_SSH_RETRIES": "3",
    "ANSIBLE_TIMEOUT": "30",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    "ANSIBLE_DEPRECATION_WARNINGS": "False",
    "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
    "ANSIBLE_NOCOLOR": "True",
    # The controller's strategy loop polls its workers every 1 ms by default: on a small
    # controller that spin competes with the boxes for the cores during long tasks (apt).
    "ANSIBLE_INTERNAL_POLL_INTERVAL": "0.01",
}

_STATUS_BY_EVENT: dict[str, TaskStatus] = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}


def task_event(event: dict[str, Any]) -> TaskEvent | None:
    """The task result carried by one ansible-runner event, or None for other events."""
    status = _STATUS_BY_EVENT.get(str(event.get("event", "")))
    if status is None:
        return None
    data = event.get("event_data") or {}
    result = data.get("res") or {}
    if status == "ok" and isinstance(result, dict) and result.get("changed"):
        status = "changed"
    if status == "failed" and data.get("ignore_errors"):
        status = "ok"
    message = ""
    if status in {"failed", "unreachable"} and isinstance(result, dict):
        message = str(result.get("msg") or result.get("stderr") or "")[:500]
    return TaskEvent(host=str(data.get("host", "")), role=str(data.get("role", "") or ""),
                     task=str(data.get("task", "")), status=status, message=message)


def host_stats(stats: dict[str, dict[str, int]] | None) -> dict[str, HostStats]:
    """Per-host counters from runner's ``stats`` (ansible's play recap)."""
    stats = stats or {}
    hosts: set[str] = set()
    for key in ("ok", "changed", "failures", "dark", "skipped", "processed"):
        hosts |= set(stats.get(key, {}))

    def count(key: str, host: str) -> int:
        return int(stats.get(key, {}).get(host, 0))

    return {
        host: HostStats(ok=count("ok", host), changed=count("changed", host),
                        failed=count("failures", host), unreachable=count("dark", host),
                        skipped=count("skipped", host))
        for host in sorted(hosts)
    }


# Runs whose artifacts a private data dir keeps (plus the newest failed one, if older).
KEEP_ARTIFACTS = 3


def _prepare_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # Inventory, extravars and run artifacts live here: nobody else may read them.
    os.chmod(path, 0o700)
    # A run killed before its cleanup left its inputs behind. ansible-runner writes a fresh
    # env/extravars only where none exists, else it puts the extra variables (the D-N-A
    # secrets) on ansible-playbook's command line: visible in ps, saved in artifacts/*/command.
    _remove_secret_inputs(path)


def _remove_secret_inputs(path: Path) -> None:
    # ansible-runner writes extravars and envvars under env/; they may hold secrets.
    for name in ("extravars", "envvars", "passwords", "ssh_key", "cmdline"):
        target = path / "env" / name
        if target.exists():
            target.unlink()


def _scrub_command_records(path: Path, kept_env: set[str]) -> None:
    """ansible-runner saves each run's command with the controller's whole environment
    (``artifacts/<uuid>/command``): PULUMI_CONFIG_PASSPHRASE, cloud credentials. Keep the
    command and only the variables dnabox set."""
    for record in (path / "artifacts").glob("*/command"):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record.unlink(missing_ok=True)  # unreadable: it may hold anything
            continue
        env = data.get("env") if isinstance(data, dict) else None
        if not isinstance(env, dict) or set(env) <= kept_env:
            continue
        data["env"] = {k: v for k, v in env.items() if k in kept_env}
        # In place (no rename): the run directory's mtime orders the runs for pruning.
        with record.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False)


def _run_failed(artifact: Path) -> bool:
    try:
        return (artifact / "status").read_text(encoding="utf-8").strip() != "successful"
    except OSError:
        return True  # no status: the run died (or is running); worth keeping as failed


def prune_artifacts(path: Path, keep: int = KEEP_ARTIFACTS) -> list[Path]:
    """Remove all but the newest ``keep`` runs' ``artifacts/<uuid>`` under the private data
    dir ``path``, and the newest failed run's beyond them (what an operator reads to debug,
    kept until a newer run fails). Returns the removed ones."""
    root = path / "artifacts"
    if not root.is_dir():
        return []
    runs = sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()),
                  key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    kept = set(runs[:keep])
    failed = next((p for p in runs if _run_failed(p)), None)
    if failed is not None:
        kept.add(failed)
    removed = [p for p in runs if p not in kept]
    for run in removed:
        shutil.rmtree(run, ignore_errors=True)
    return removed


def run_playbook(
    playbook: Path,
    inventory: dict[str, Any],
    *,
    private_data_dir: Path,
    limit: list[str] | None = None,
    tags: list[str] | None = None,
    extravars: dict[str, Any] | None = None,
    forks: int = 50,
    on_event: Callable[[TaskEvent], None] | None = None,
    roles_path: Path | None = None,
) -> PlaybookResult:
    """Run ``playbook`` against ``inventory`` (a YAML-ready dict) and count results per host.

    ``on_event`` receives every task result as it happens (from runner's event thread).
    """
    try:
        import ansible_runner
    except ImportError as exc:  # pragma: no cover - a dependency of dnabox
        raise EnvironmentProblem("ansible-runner is not installed",
                                 hint="pip install ansible-runner") from exc
    if shutil.which("ansible-playbook") is None:
        raise EnvironmentProblem("ansible-playbook is not on PATH",
                                 hint="pip install ansible-core (a dependency of dnabox)")
    _prepare_private_dir(private_data_dir)
    envvars = {
        **PERFORMANCE_ENV,
        "ANSIBLE_ROLES_PATH": str(roles_path or playbook.resolve().parent / "roles"),
    }

    def handle(event: dict[str, Any]) -> bool:
        parsed = task_event(event)
        if parsed is not None and on_event is not None:
            on_event(parsed)
        # Keep only the recap on disk (runner.stats reads it back): task results may quote
        # file contents; the stdout file holds the (no_log-filtered) log.
        return event.get("event") == "playbook_on_stats"

    try:
        runner = ansible_runner.run(
            private_data_dir=str(private_data_dir),
            playbook=str(playbook.resolve()),
            inventory=inventory,
            limit=",".join(limit) if limit else None,
            tags=",".join(tags) if tags else None,
            extravars=extravars or {},
            forks=forks,
            envvars=envvars,
            event_handler=handle,
            quiet=True,
            # prune_artifacts rotates instead (runner's rotation drops failed runs too).
            rotate_artifacts=0,
        )
    finally:
        _remove_secret_inputs(private_data_dir)
        _scrub_command_records(private_data_dir, set(envvars))
        prune_artifacts(private_data_dir)
    artifact_dir = Path(runner.config.artifact_dir)
    return PlaybookResult(rc=int(runner.rc), status=str(runner.status),
                          hosts=host_stats(runner.stats),
                          artifact_dir=artifact_dir if artifact_dir.is_dir() else None)
