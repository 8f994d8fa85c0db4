"""`dnabox up`: the hot path.

Preflight reads every box's stored fingerprints in one round trip; Ansible then runs only
the roles whose fingerprint differs, in site shards that run concurrently; fingerprints are
written back after success. A converged fleet costs one SSH round trip per box.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dnabox.adapters.ansible import HostStats, TaskEvent, run_playbook
from dnabox.adapters.ssh import BoxConnection, ConnectionPool
from dnabox.inventory.model import Fleet
from dnabox.plan.ansible_inventory import render_inventory
from dnabox.plan.dag import WorkUnit, build_dag
from dnabox.plan.desired import BoxPlan, plan_fleet
from dnabox.plan.project import ProjectPaths
from dnabox.provision.batcher import AnsibleBatcher
from dnabox.provision.events import Event, EventSink
from dnabox.provision.journal import Journal
from dnabox.provision.lock import FleetLock
from dnabox.provision.remote import RoleDecision, decide, read_state, write_fingerprints
from dnabox.provision.scheduler import Scheduler, UnitOutcome

# Formed by the control_plane/join units, in order, not by the per-site bootstrap.
FORMATION_ROLE = "kubernetes"


@dataclass(frozen=True)
class UpOptions:
    max_parallel: int = 16
    per_site: int = 8
    forks: int = 50
    resume: bool = False
    only_boxes: frozenset[str] = frozenset()
    ansible_slots: int = field(default_factory=lambda: os.cpu_count() or 2)


@dataclass
class UpReport:
    units: dict[str, UnitOutcome]
    ran: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.status not in {"failed", "blocked"} for o in self.units.values())


def plan_id(plans: dict[str, BoxPlan]) -> str:
    blob = json.dumps({b: p.fingerprints for b, p in sorted(plans.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Provisioner:
    def __init__(self, fleet: Fleet, project: ProjectPaths, state: Path, sink: EventSink,
                 options: UpOptions | None = None) -> None:
        self.fleet = fleet
        self.project = project
        self.state = state
        self.sink = sink
        self.options = options or UpOptions()
        self.inventory = render_inventory(fleet, project)
        self.plans = plan_fleet(fleet, project, self.inventory)
        # What each box had converged, as read by preflight and updated after each run.
        self._stored: dict[str, dict[str, str]] = {}
        self._decisions: dict[str, list[RoleDecision]] = {}
        self._ran: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        self.pool = ConnectionPool(on_retry=self._on_retry)
        # As many Ansible controllers at once as there are cores (see provision/batcher.py).
        self._batcher = AnsibleBatcher(self._run_batch, slots=self.options.ansible_slots)

    def _on_retry(self, box: str, attempt: int, reason: str) -> None:
        self.sink(Event("box", "retry", box=box, message=f"attempt {attempt} failed: {reason}"))

    def _wanted(self, box: str) -> bool:
        return not self.options.only_boxes or box in self.options.only_boxes

    def up(self) -> UpReport:
        with FleetLock(self.state):
            journal = Journal(self.state)
            current = plan_id(self.plans)
            done = journal.resumable(current) if self.options.resume else set()
            run = journal.start_run(current)
            units = [u for u in build_dag(self.fleet)
                     if not u.boxes or any(self._wanted(b) for b in u.boxes)]
            self.sink(Event("run", "started", message=f"{len(units)} units",
                            data={"units": [{"id": u.id, "site": u.site} for u in units],
                                  "run": run}))

            def execute(unit: WorkUnit) -> UnitOutcome:
                outcome = self._execute(unit)
                journal.unit_done(run, unit.id, outcome.status)
                return outcome

            try:
                results = Scheduler(units, execute, self.sink,
                                    max_parallel=self.options.max_parallel,
                                    per_site=self.options.per_site, already_done=done).run()
            finally:
                self.pool.close()
            report = UpReport(results, dict(self._ran))
            journal.finish_run(run, report.ok)
            self.sink(Event("run", "ok" if report.ok else "failed",
                            data={"failed": [u for u, o in results.items()
                                             if o.status in {"failed", "blocked"}]}))
            return report

    def _execute(self, unit: WorkUnit) -> UnitOutcome:
        handler = {
            "preflight": self._preflight,
            "bootstrap": self._bootstrap,
            "control_plane": self._formation,
            "join": self._formation,
            "stacks": self._stacks,
            "verify": self._verify,
        }[unit.kind]
        return handler(unit)

    def _connection(self, box: str) -> BoxConnection:
        return self.pool.get(box, self.fleet.ssh_for(self.fleet.box(box)))

    def _preflight(self, unit: WorkUnit) -> UnitOutcome:
        box = unit.boxes[0]
        state = read_state(self._connection(box), self.plans[box])
        decisions = decide(self.plans[box], state)
        with self._lock:
            self._stored[box] = dict(state.fingerprints)
            self._decisions[box] = decisions
        pending = [f"{d.role} ({d.reason})" for d in decisions if d.needs_run]
        self.sink(Event("box", "info", box=box, site=unit.site,
                        message="converged" if not pending else "to run: " + ", ".join(pending),
                        data={"pending": [d.role for d in decisions if d.needs_run]}))
        return UnitOutcome("ok")

    def _pending_roles(self, box: str, *, formation: bool) -> list[str]:
        return [d.role for d in self._decisions.get(box, [])
                if d.needs_run and (d.role == FORMATION_ROLE) == formation]

    def _bootstrap(self, unit: WorkUnit) -> UnitOutcome:
        boxes = [b for b in unit.boxes if self._wanted(b)]
        return self._run_roles(unit, {b: self._pending_roles(b, formation=False) for b in boxes})

    def _formation(self, unit: WorkUnit) -> UnitOutcome:
        planned = [b for b in unit.boxes if FORMATION_ROLE in self.plans[b].fingerprints]
        if not planned:
            return UnitOutcome("skipped", "no box of this unit runs the kubernetes role")
        if any(b not in self._decisions for b in planned):
            return UnitOutcome("failed", "preflight did not run for every member")
        return self._run_roles(unit, {b: self._pending_roles(b, formation=True)
                                      for b in planned if self._wanted(b)})

    def _run_roles(self, unit: WorkUnit, work: dict[str, list[str]]) -> UnitOutcome:
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for box, pending in work.items():
            if pending:
                groups[tuple(pending)].append(box)
        if not groups:
            return UnitOutcome("ok", "converged")
        failed: list[str] = []
        for roles, boxes in sorted(groups.items()):
            stats = self._batcher.run(roles, boxes)
            for box in boxes:
                host = stats.get(box)
                if host is None or host.failed or host.unreachable:
                    failed.append(box)
                    continue
                self._record(box, list(roles))
        if failed:
            return UnitOutcome("failed", f"ansible failed on {', '.join(sorted(failed))}")
        return UnitOutcome("changed", f"ran {sum(len(b) for b in groups.values())} boxes")

    def _run_batch(self, roles: tuple[str, ...], boxes: list[str],
                   label: str) -> dict[str, HostStats]:
        result = run_playbook(
            self.project.site_playbook, self.inventory,
            private_data_dir=self.state / "ansible" / label, limit=boxes, tags=list(roles),
            forks=self.options.forks, roles_path=self.project.roles, on_event=self._task_event,
        )
        return result.hosts

    def _task_event(self, event: TaskEvent) -> None:
        failed = event.status in {"failed", "unreachable"}
        message = f"{event.role}: {event.task}"
        if failed and event.message:
            message += f": {event.message}"
        site = self.fleet.box(event.host).site if event.host in self.plans else ""
        self.sink(Event("task", "failed" if failed else "info", box=event.host, site=site,
                        message=message, data={"status": event.status}))

    def _record(self, box: str, roles: list[str]) -> None:
        desired = self.plans[box].fingerprints
        with self._lock:
            stored = {**self._stored.get(box, {}), **{role: desired[role] for role in roles}}
            # Roles no longer planned for the box are forgotten: re-adding them re-runs them.
            stored = {role: fp for role, fp in stored.items() if role in desired}
            self._stored[box] = stored
        write_fingerprints(self._connection(box), stored)
        with self._lock:
            self._ran[box].extend(roles)

    def _stacks(self, unit: WorkUnit) -> UnitOutcome:
        formed = [b for b in unit.boxes if FORMATION_ROLE in self.plans[b].fingerprints]
        if not formed:
            return UnitOutcome("skipped", "no cluster is formed (kubernetes role skipped)")
        if shutil.which("pulumi") is None:
            return UnitOutcome("skipped", "the Pulumi CLI is not installed; "
                               "run `dnabox stack up` where it is")
        return UnitOutcome("skipped", "stacks run with `dnabox stack up` once a kubeconfig "
                           "for the cluster is configured")

    def _verify(self, unit: WorkUnit) -> UnitOutcome:
        """Boxes that ran roles must now read back converged (files and fingerprints)."""
        ran = [b for b in unit.boxes if self._ran.get(b)]
        off: list[str] = []
        for box in ran:
            state = read_state(self._connection(box), self.plans[box])
            pending = [d for d in decide(self.plans[box], state)
                       if d.needs_run and d.role in self._ran[box]]
            if pending:
                off.append(f"{box}: " + ", ".join(f"{d.role} {d.reason}" for d in pending))
        if off:
            return UnitOutcome("failed", "not converged after the run: " + "; ".join(off))
        return UnitOutcome("ok", f"{len(ran)} boxes verified" if ran else "nothing ran")
