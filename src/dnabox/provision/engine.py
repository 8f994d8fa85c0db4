"""`dnabox up`: the hot path.

Preflight reads every box's stored fingerprints in one round trip; only the roles whose
fingerprint differs run, in site shards that run concurrently; fingerprints are written
back after success. A converged fleet costs one SSH round trip per box. Roles that can take
the direct path (``dnabox.plan.direct_program``: packages, files and the role's apply script in one
SSH round trip) do so; the others, and every role with ``--engine ansible``, run through
ansible-playbook.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from dnabox.adapters.ansible import HostStats, TaskEvent
from dnabox.adapters.jobs import CommandResult, Job, JobResult
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.catalogue import formation_roles
from dnabox.plan.dag import WorkUnit, build_dag
from dnabox.plan.desired import BoxPlan, box_variables
from dnabox.plan.direct_program import ProgramAssets, build_program, direct_capable
from dnabox.provision.agent.batch import run_batch
from dnabox.provision.direct_run import DirectOutcome
from dnabox.provision.dna_credentials import box_secrets
from dnabox.provision.engine_parts import EngineParts, default_parts
from dnabox.provision.events import Event, EventSink
from dnabox.provision.generated_files import generated_files
from dnabox.provision.journal import Journal
from dnabox.provision.lease import (
    Holder,
    Lease,
    lease_refusal,
    parse_take,
    release_command,
    take_command,
)
from dnabox.provision.lock import FleetLock
from dnabox.provision.plans import controller_plans
from dnabox.provision.remote import (
    FINGERPRINTS,
    BoxFacts,
    RoleDecision,
    decide,
    fact_problems,
    fingerprints_document,
    preflight_command,
    read_state,
    state_from,
    write_fingerprints,
)
from dnabox.provision.scheduler import Scheduler, UnitOutcome
from dnabox.provision.stack_units import run_stack_unit
from dnabox.provision.up_options import Engine, UpOptions

if TYPE_CHECKING:
    from dnabox.adapters.ssh import BoxConnection

LEASE_MARK = "@@dnabox-lease@@"
# Formed by the control_plane/join units, in order, not by the per-site bootstrap.
FORMATION_ROLES = formation_roles()


@dataclass
class UpReport:
    units: dict[str, UnitOutcome]
    ran: dict[str, list[str]] = field(default_factory=dict)
    retries: int = 0  # transient SSH failures (refused, reset, timeouts) retried
    via_agent: int = 0  # boxes whose preflight rode on the connection agent's connections

    @property
    def ok(self) -> bool:
        return all(o.status not in {"failed", "blocked"} for o in self.units.values())


def split_lease(answer: JobResult) -> tuple[JobResult, bool, Lease | None]:
    """The preflight part of a lease-and-preflight answer, whether the lease was taken and,
    if not, whose it is."""
    result = answer.result
    if result is None:
        return answer, False, None
    lease_part, marked, rest = result.stdout.partition(LEASE_MARK + "\n")
    if not marked:  # the box's shell never got past the lease step
        return JobResult(answer.box, None, f"{answer.box}: could not take the lease: "
                         f"{result.stderr.strip() or 'no answer'}", "remote"), False, None
    taken, other = parse_take(lease_part)
    if not taken and other is None:
        return JobResult(answer.box, None, f"{answer.box}: could not take the lease: "
                         f"{lease_part.strip()[-200:] or result.stderr.strip()[-200:]}",
                         "remote"), False, None
    return (JobResult(answer.box, CommandResult(result.rc, rest, result.stderr,
                                                result.seconds)), taken, other)


def plan_id(plans: dict[str, BoxPlan]) -> str:
    blob = json.dumps({b: p.fingerprints for b, p in sorted(plans.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Provisioner:
    def __init__(self, fleet: Fleet, locations: Locations, sink: EventSink,
                 options: UpOptions | None = None, parts: EngineParts | None = None) -> None:
        self.fleet = fleet
        self.locations = locations
        self.state = locations.ensure_fleet_state(fleet.name)
        self.sink = sink
        self.options = options or UpOptions()
        self.ansible_inventory = render_ansible_inventory(fleet, locations)
        self.plans = controller_plans(fleet, locations, self.ansible_inventory,
                                      create_secrets=True)
        # What each box had converged, as read by preflight and updated after each run.
        self._stored: dict[str, dict[str, str]] = {}
        self._decisions: dict[str, list[RoleDecision]] = {}
        self._unreachable: dict[str, DnaboxError] = {}
        # What preflight read on each box, and where that contradicts the inventory.
        self._facts: dict[str, BoxFacts] = {}
        self._wrong_facts: dict[str, list[str]] = {}
        self._via_agent = 0
        self._ran: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        parts = parts or default_parts(sink, self.options.ansible_slots)
        self.pool = parts.pool
        self._batcher = parts.batcher(self._run_batch)
        self._run_playbook = parts.run_playbook
        self._run_direct_program = parts.run_direct
        # Boxes on the direct path at once, whole fleet (site shards share it): 100 fresh
        # boxes fetching packages together overran the lab's repository (measured).
        self._direct_slots = threading.BoundedSemaphore(max(1, self.options.forks))
        self._assets = ProgramAssets.load(locations)

    def _wanted(self, box: str) -> bool:
        return not self.options.only_boxes or box in self.options.only_boxes

    def up(self) -> UpReport:
        with FleetLock(self.state):
            journal = Journal(self.state)
            current = plan_id(self.plans)
            done = journal.resumable(current) if self.options.resume else set()
            units = self._units()
            holder = Holder.here(str(self.state))
            # Before the journal: a run refused by another controller's lease leaves no
            # trace, so the interrupted run it might follow can still be resumed.
            try:
                leased = self._read_and_lease([b.name for b in self.fleet.boxes
                                               if self._wanted(b.name)], holder)
            except BaseException:
                self.pool.close()
                raise
            run = journal.start_run(current)
            self.sink(Event("run", "started", message=f"{len(units)} units",
                            data={"units": [{"id": u.id, "site": u.site} for u in units],
                                  "run": run, "lease": holder.run}))

            def execute(unit: WorkUnit) -> UnitOutcome:
                outcome = self._execute(unit)
                journal.unit_done(run, unit.id, outcome.status)
                return outcome

            try:
                results = Scheduler(units, execute, self.sink,
                                    max_parallel=self.options.max_parallel,
                                    per_site=self.options.per_site, already_done=done).run()
            finally:
                self._release(leased, holder)
                self.pool.close()
            report = UpReport(results, dict(self._ran), self.pool.retries, self._via_agent)
            journal.finish_run(run, report.ok)
            self.sink(Event("run", "ok" if report.ok else "failed",
                            data={"failed": [u for u, o in results.items()
                                             if o.status in {"failed", "blocked"}],
                                  "retries": report.retries}))
            return report

    def _units(self) -> list[WorkUnit]:
        """The DAG's units that touch a wanted box; needs of units left out are met."""
        units = [u for u in build_dag(self.fleet)
                 if not u.boxes or any(self._wanted(b) for b in u.boxes)]
        kept = {u.id for u in units}
        return [replace(u, needs=tuple(n for n in u.needs if n in kept),
                        tolerates=tuple(n for n in u.tolerates if n in kept))
                for u in units]

    def _batch(self, jobs: list[Job]) -> list[JobResult]:
        """Over the connection agent's kept connections when it runs, else over ours."""
        if not self.fleet.source:
            return self.pool.run_many(jobs)
        outcome = run_batch(self.fleet.name, self.fleet.source, jobs, self.pool)
        self._via_agent += outcome.via_agent
        return outcome.results

    def _read_and_lease(self, boxes: list[str], holder: Holder) -> list[str]:
        """Every box's state and our lease on it, one round trip per box for all of them.

        Returns the boxes we hold; raises LockHeld (after releasing them) when another
        controller's run holds any box.
        """
        jobs = [Job(box, self.fleet.ssh_for(self.fleet.box(box)),
                    f"{take_command(holder)}; echo {LEASE_MARK}; "
                    f"{preflight_command(self.plans[box])}", timeout=60) for box in boxes]
        taken: list[str] = []
        held: dict[str, Lease | None] = {}
        for raw in self._batch(jobs):
            answer, taken_here, other = split_lease(raw)
            if taken_here:
                taken.append(answer.box)
            elif answer.result is not None:
                held[answer.box] = other
                continue
            try:
                state = state_from(answer)
            except DnaboxError as exc:
                self._unreachable[answer.box] = exc
                continue
            self._stored[answer.box] = dict(state.fingerprints)
            self._decisions[answer.box] = decide(self.plans[answer.box], state)
            self._facts[answer.box] = state.facts
            wrong = fact_problems(self.fleet, answer.box, state.facts)
            if wrong:
                self._wrong_facts[answer.box] = wrong
        if held:
            self._release(taken, holder)
            raise lease_refusal(held)
        return taken

    def _release(self, boxes: list[str], holder: Holder) -> None:
        jobs = [Job(box, self.fleet.ssh_for(self.fleet.box(box)), release_command(holder.run),
                    timeout=30) for box in boxes]
        for answer in self._batch(jobs):
            if answer.result is None or answer.result.rc != 0:
                self.sink(Event("box", "info", box=answer.box,
                                message="lease not released (it expires on its own): "
                                        + (answer.error or answer.result.stderr.strip()
                                           if answer.result else answer.error)))

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
        """Report what the up-front read found (`_read_and_lease` read every box at once)."""
        box = unit.boxes[0]
        if box in self._unreachable:
            raise self._unreachable[box]
        wrong = self._wrong_facts.get(box)
        if wrong:
            # The plan (packages, artifacts, config formats) was made for the declaration.
            self.sink(Event("box", "failed", box=box, site=unit.site, message="; ".join(wrong)))
            return UnitOutcome("failed", "; ".join(wrong))
        decisions = self._decisions[box]
        pending = [f"{d.role} ({d.reason})" for d in decisions if d.needs_run]
        self.sink(Event("box", "info", box=box, site=unit.site,
                        message="converged" if not pending else "to run: " + ", ".join(pending),
                        data={"pending": [d.role for d in decisions if d.needs_run],
                              **self._fact_data(box)}))
        return UnitOutcome("ok")

    def _fact_data(self, box: str) -> dict[str, str]:
        facts = self._facts.get(box)
        if facts is None:
            return {}
        return {"os": facts.os_codename, "arch": facts.arch, "containerd": facts.containerd}

    def _pending_roles(self, box: str, *, formation: bool) -> list[str]:
        return [d.role for d in self._decisions.get(box, [])
                if d.needs_run and (d.role in FORMATION_ROLES) == formation]

    def _forms(self, box: str) -> bool:
        return not FORMATION_ROLES.isdisjoint(self.plans[box].fingerprints)

    def _bootstrap(self, unit: WorkUnit) -> UnitOutcome:
        """The site's boxes that preflight cleared; those it did not (unreachable, or not
        what the inventory declares) fail the unit, by name, after the others ran."""
        boxes = [b for b in unit.boxes if self._wanted(b)]
        held_back = {b: self._unreachable[b].message for b in boxes if b in self._unreachable}
        held_back |= {b: "; ".join(self._wrong_facts[b]) for b in boxes
                      if b in self._wrong_facts}
        outcome = self._run_roles(unit, {b: self._pending_roles(b, formation=False)
                                         for b in boxes if b not in held_back})
        if not held_back:
            return outcome
        reasons = "; ".join(f"{b}: {why}" for b, why in sorted(held_back.items()))
        detail = f"; {outcome.message}" if outcome.status == "failed" else ""
        return UnitOutcome("failed", f"not run on {reasons}{detail}")

    def _formation(self, unit: WorkUnit) -> UnitOutcome:
        planned = [b for b in unit.boxes if self._forms(b)]
        if not planned:
            return UnitOutcome("skipped", "no box of this unit runs the kubernetes role")
        if any(b not in self._decisions for b in planned):
            return UnitOutcome("failed", "preflight did not run for every member")
        return self._run_roles(unit, {b: self._pending_roles(b, formation=True)
                                      for b in planned if self._wanted(b)})

    def _run_roles(self, unit: WorkUnit, work: dict[str, list[str]]) -> UnitOutcome:
        pending = {box: roles for box, roles in work.items() if roles}
        if not pending:
            return UnitOutcome("ok", "converged")
        direct = {box: roles for box, roles in pending.items() if self._direct(box, roles)}
        failed = self._run_direct(unit, direct)
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for box, roles in pending.items():
            if box not in direct:
                groups[tuple(roles)].append(box)
        for group, boxes in sorted(groups.items()):
            stats = self._batcher.run(group, boxes)
            for box in boxes:
                host = stats.get(box)
                if host is None or host.failed or host.unreachable:
                    failed.append(box)
                    continue
                self._record(box, list(group))
        if failed:
            return UnitOutcome("failed", f"failed on {', '.join(sorted(failed))}")
        return UnitOutcome("changed", f"ran {len(pending)} boxes")

    def _direct(self, box: str, roles: list[str]) -> bool:
        if self.options.engine is not Engine.AUTO:
            return False
        variables = box_variables(self.ansible_inventory, box)
        return all(direct_capable(role, variables) for role in roles)

    def _run_direct(self, unit: WorkUnit, work: dict[str, list[str]]) -> list[str]:
        """Run each box's direct program (boxes in parallel); return the boxes that failed."""
        if not work:
            return []

        def one(box: str) -> DirectOutcome:
            with self._lock:
                stored = self._converged(box, work[box])
            hidden = (box_secrets(self.fleet, self.state, [box]).get(box, {})
                      if "dna" in work[box] else {})
            program = build_program(
                self.plans[box], work[box], box_variables(self.ansible_inventory, box),
                assets=self._assets, fingerprints_document=fingerprints_document(stored),
                state_file=FINGERPRINTS, secrets={"dna": hidden} if hidden else None)

            def step(name: str) -> None:
                self.sink(Event("task", "info", box=box, site=unit.site, message=name,
                                data={"status": "started", "engine": "direct"}))

            def change(what: str) -> None:
                self.sink(Event("task", "info", box=box, site=unit.site, message=what,
                                data={"status": "changed", "engine": "direct"}))

            try:
                with self._direct_slots:
                    outcome = self._run_direct_program(self._connection(box), program, step,
                                                       change)
            except DnaboxError as exc:
                outcome = DirectOutcome(False, "connect", error=exc.message)
            if outcome.ok:
                with self._lock:
                    self._stored[box] = stored
                    self._ran[box].extend(program.roles)
            else:
                self.sink(Event("task", "failed", box=box, site=unit.site,
                                message=f"{outcome.step} failed: {outcome.error}",
                                data={"status": "failed", "engine": "direct"}))
            return outcome

        workers = max(1, min(len(work), self.options.forks))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="direct") as pool:
            outcomes = dict(zip(work, pool.map(one, list(work)), strict=True))
        return sorted(box for box, outcome in outcomes.items() if not outcome.ok)

    def _converged(self, box: str, roles: list[str]) -> dict[str, str]:
        """The box's stored fingerprints once ``roles`` converged (roles no longer planned
        for the box are forgotten: re-adding them re-runs them)."""
        desired = self.plans[box].fingerprints
        stored = {**self._stored.get(box, {}), **{role: desired[role] for role in roles}}
        return {role: fp for role, fp in stored.items() if role in desired}

    def _run_batch(self, roles: tuple[str, ...], boxes: list[str],
                   label: str) -> dict[str, HostStats]:
        # Secrets travel as extra variables, which run_playbook removes after the run.
        extravars = {"dna_secret_files": box_secrets(self.fleet, self.state, boxes)} \
            if "dna" in roles else {}
        run_dir = self.state / "ansible" / label
        # Files the planner makes in Python (no templates): copied from the run's directory.
        with generated_files(self.plans, boxes, roles, run_dir) as generated:
            result = self._run_playbook(
                self.locations.site_playbook, self.ansible_inventory,
                extravars={**extravars, **generated} or None, private_data_dir=run_dir,
                limit=boxes, tags=list(roles), forks=self.options.forks,
                roles_path=self.locations.roles, on_event=self._task_event,
            )
        return result.hosts

    def _task_event(self, event: TaskEvent) -> None:
        failed = event.status in {"failed", "unreachable"}
        message = f"{event.role}: {event.task}"
        if failed and event.message:
            message += f": {event.message}"
        site = self.fleet.box(event.host).site if event.host in self.plans else ""
        self.sink(Event("task", "failed" if failed else "info", box=event.host, site=site,
                        message=message, data={"status": event.status, "engine": "ansible"}))

    def _record(self, box: str, roles: list[str]) -> None:
        with self._lock:
            stored = self._converged(box, roles)
            self._stored[box] = stored
        write_fingerprints(self._connection(box), stored)
        with self._lock:
            self._ran[box].extend(roles)

    def _stacks(self, unit: WorkUnit) -> UnitOutcome:
        formed = [b for b in unit.boxes if self._forms(b)]
        if not formed:
            return UnitOutcome("skipped", "no cluster is formed (kubernetes role skipped)")
        return run_stack_unit(self.fleet, self.locations, unit.cluster)

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
