"""Day-2 runbooks: add or replace a box, drain, rolling upgrades, diagnostics.

They reuse the provisioner's pieces: fingerprints decide what `add_box` and `replace_box`
run, the ansible adapter runs the on-box playbooks in ``playbooks/runbooks/``, and every
batch is journaled so an interrupted rolling upgrade resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dnabox.adapters.ansible import PlaybookResult, run_playbook
from dnabox.adapters.ssh import BoxConnection, ConnectionPool
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Box, Cluster, Fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.catalogue import CATALOGUE
from dnabox.plan.roles import roles_for
from dnabox.plan.selection import Selection, select
from dnabox.plan.upgrades import (
    Step,
    UpgradeOptions,
    plan_k8s_upgrade,
    plan_replace_control_plane,
)
from dnabox.provision.engine import Provisioner, UpReport
from dnabox.provision.events import Event, EventSink
from dnabox.provision.journal import Journal
from dnabox.provision.lock import FleetLock
from dnabox.provision.remote import FINGERPRINTS, write_fingerprints
from dnabox.provision.up_options import UpOptions


@dataclass
class RunbookReport:
    name: str
    ok: bool
    batches: list[dict[str, Any]] = field(default_factory=list)
    ran: dict[str, list[str]] = field(default_factory=dict)
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"runbook": self.name, "ok": self.ok, "message": self.message,
                "batches": self.batches, "ran": self.ran}


@dataclass(frozen=True)
class RunbookOptions:
    """What `dnabox runbook run` was told beyond the targets; each runbook takes only some
    (``RunbookSpec.options``), and one it does not take is refused, not ignored."""

    role: str | None = None
    max_unavailable: int | None = None
    resume: bool = False
    force: bool = False
    dest: Path | None = None
    # k8s_upgrade / replace_control_plane
    to: str | None = None
    cluster: tuple[str, ...] | None = None
    old: str | None = None
    drain_timeout: str | None = None
    patch: str | None = None

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) not in (None, False)]


@dataclass(frozen=True)
class RunbookContext:
    fleet: Fleet
    locations: Locations
    sink: EventSink

    @property
    def state(self) -> Path:
        return self.locations.ensure_fleet_state(self.fleet.name)


def run_runbook(ctx: RunbookContext, name: str, chosen_by: Selection | None = None, *,
                options: RunbookOptions | None = None) -> RunbookReport:
    """Run runbook ``name`` on the selected boxes (every box when nothing is selected)."""
    chosen = spec(name)
    options = options or RunbookOptions()
    chosen_by = chosen_by or Selection()
    if chosen.needs_box and not chosen_by.boxes:
        raise DnaboxError(f"{name} needs --box NAME", hint="name the box from the inventory")
    refused = [o for o in options.given() if o not in chosen.options]
    if refused:
        flags = ", ".join("--" + o.replace("_", "-") for o in refused)
        raise DnaboxError(f"{name} does not take {flags}",
                          hint=f"`dnabox runbook show {name}` says what it does")
    targets = select(ctx.fleet, chosen_by)
    return chosen.run(ctx, targets, options)


def spec(name: str) -> RunbookSpec:
    if name not in RUNBOOKS:
        raise DnaboxError(f"no runbook named {name!r}",
                          hint=f"runbooks: {', '.join(RUNBOOKS)} (`dnabox runbook list`)")
    return RUNBOOKS[name]


def add_box(ctx: RunbookContext, boxes: Sequence[Box]) -> RunbookReport:
    report = Provisioner(ctx.fleet, ctx.locations, ctx.sink).up()
    return _from_up("add_box", report, [b.name for b in boxes])


def replace_box(ctx: RunbookContext, boxes: Sequence[Box], *, force: bool) -> RunbookReport:
    with ConnectionPool() as pool:
        for box in boxes:
            connection = pool.get(box.name, ctx.fleet.ssh_for(box))
            if not force and _converged_box_answers(connection):
                raise DnaboxError(
                    f"{box.name} answers and holds converged state: it has not failed",
                    hint="replace only a failed box, or pass --force to rebuild it anyway")
            # Forget what the old box had converged: every role runs on the replacement.
            write_fingerprints(connection, {})
            ctx.sink(Event("box", "info", box=box.name, message="state forgotten"))
    names = frozenset(b.name for b in boxes)
    report = Provisioner(ctx.fleet, ctx.locations, ctx.sink,
                         UpOptions(only_boxes=names)).up()
    return _from_up("replace_box", report, sorted(names))


def _converged_box_answers(connection: BoxConnection) -> bool:
    try:
        result = connection.run(f"test -s {FINGERPRINTS}", timeout=20)
    except DnaboxError:
        return False
    return result.rc == 0


def _from_up(name: str, report: UpReport, boxes: list[str]) -> RunbookReport:
    failed = [u for u, o in report.units.items() if o.status in {"failed", "blocked"}]
    message = "ok" if report.ok else f"failed units: {', '.join(failed)}"
    return RunbookReport(name, report.ok, ran=report.ran,
                         message=f"{message}; targets: {', '.join(boxes)}")


def run_playbook_on(ctx: RunbookContext, playbook: str, boxes: Sequence[Box], *,
                    extravars: dict[str, Any] | None = None, label: str = "") -> PlaybookResult:
    path = ctx.locations.runbooks / playbook
    return run_playbook(
        path, render_ansible_inventory(ctx.fleet, ctx.locations),
        private_data_dir=ctx.state / "ansible" / f"runbook-{label or path.stem}",
        limit=[b.name for b in boxes], extravars=extravars, roles_path=ctx.locations.roles,
        on_event=lambda e: ctx.sink(Event("task", "failed" if e.status in {
            "failed", "unreachable"} else "info", box=e.host,
            message=f"{e.task}: {e.message}" if e.message else e.task,
            data={"status": e.status})),
    )


def simple(ctx: RunbookContext, name: str, boxes: Sequence[Box],
           extravars: dict[str, Any] | None = None) -> RunbookReport:
    """A runbook that is one playbook over the targets (drain, undrain, diagnostics)."""
    with FleetLock(ctx.state):
        result = run_playbook_on(ctx, spec(name).playbook, boxes, extravars=extravars)
    failed = sorted(h for h, s in result.hosts.items() if s.failed or s.unreachable)
    missing = sorted({b.name for b in boxes} - set(result.hosts))
    ok = result.rc == 0 and not failed and not missing
    return RunbookReport(name, ok, message="ok" if ok else
                         f"failed on {', '.join(failed + missing) or 'the run'} (rc {result.rc})")


def batches(fleet: Fleet, boxes: Sequence[Box], max_unavailable: int) -> list[list[Box]]:
    """Site by site (core first, end last), at most ``max_unavailable`` boxes per batch."""
    order = {"core": 0, "edge": 1, "end": 2}
    sites = sorted({b.site for b in boxes},
                   key=lambda s: (order[fleet.site(s).tier], [x.name for x in fleet.sites]
                                  .index(s)))
    out: list[list[Box]] = []
    for site in sites:
        members = [b for b in boxes if b.site == site]
        iterator = iter(members)
        while chunk := list(itertools.islice(iterator, max(1, max_unavailable))):
            out.append(chunk)
    return out


def rolling_upgrade(ctx: RunbookContext, boxes: Sequence[Box], *, role: str,
                    max_unavailable: int, resume: bool,
                    verify: Callable[[list[Box]], list[str]] | None = None) -> RunbookReport:
    eligible = [b for b in boxes if role in roles_for(ctx.fleet, b)]
    if not eligible:
        raise DnaboxError(f"no selected box runs the {role} role",
                          hint="check the role name and --box/--site/--tier")
    plan = batches(ctx.fleet, eligible, max_unavailable)
    plan_id = f"rolling_upgrade:{role}:" + "|".join(",".join(b.name for b in batch)
                                                   for batch in plan)
    report = RunbookReport("rolling_upgrade", True)
    with FleetLock(ctx.state):
        journal = Journal(ctx.state / "runbooks")
        done = journal.resumable(plan_id) if resume else set()
        run = journal.start_run(plan_id)
        for index, batch in enumerate(plan, start=1):
            unit = f"batch:{index}"
            names = [b.name for b in batch]
            entry: dict[str, Any] = {"batch": index, "site": batch[0].site, "boxes": names}
            report.batches.append(entry)
            if unit in done:
                entry["status"] = "skipped"
                ctx.sink(Event("unit", "skipped", unit=unit, site=batch[0].site,
                               message="done by the interrupted run (--resume)"))
                continue
            ctx.sink(Event("unit", "started", unit=unit, site=batch[0].site,
                           message=", ".join(names)))
            result = run_playbook_on(ctx, "upgrade_role.yml", batch,
                                     extravars={"upgrade_role": role}, label=f"upgrade-{index}")
            problems = [f"{h}: ansible failed" for h, s in result.hosts.items()
                        if s.failed or s.unreachable]
            problems += [f"{n}: not reached" for n in names if n not in result.hosts]
            if not problems and verify is not None:
                problems = verify(batch)
            entry["status"] = "failed" if problems else "ok"
            journal.unit_done(run, unit, entry["status"])
            ctx.sink(Event("unit", "failed" if problems else "ok", unit=unit,
                           site=batch[0].site, message="; ".join(problems)))
            if problems:
                report.ok = False
                report.message = (f"stopped at batch {index} of {len(plan)}: "
                                  + "; ".join(problems))
                break
        journal.finish_run(run, report.ok)
    if report.ok:
        report.message = f"{len(plan)} batches upgraded and verified"
    return report


# What "healthy after an upgrade" means per role (a view of the catalogue).
ROLE_CHECKS: dict[str, str] = {spec.name: spec.health_check for spec in CATALOGUE}


def ssh_verifier(ctx: RunbookContext, role: str) -> Callable[[list[Box]], list[str]]:
    check = ROLE_CHECKS.get(role, "true")

    def verify(batch: list[Box]) -> list[str]:
        problems = []
        with ConnectionPool() as pool:
            for box in batch:
                try:
                    result = pool.get(box.name, ctx.fleet.ssh_for(box)).run(check, timeout=60)
                except DnaboxError as exc:
                    problems.append(f"{box.name}: {exc.message}")
                    continue
                if result.rc != 0:
                    problems.append(f"{box.name}: health check `{check}` failed")
        return problems

    return verify


RunbookRun = Callable[[RunbookContext, Sequence[Box], RunbookOptions], RunbookReport]


@dataclass(frozen=True)
class RunbookSpec:
    name: str
    summary: str
    playbook: str  # file under playbooks/runbooks/, '' when the provisioner does the work
    details: str
    run: RunbookRun
    # RunbookOptions fields it takes; needs_box: refused without --box.
    options: tuple[str, ...] = ()
    needs_box: bool = False


def _simple(name: str) -> RunbookRun:
    return lambda ctx, targets, options: simple(ctx, name, targets)


def _replace_box(ctx: RunbookContext, targets: Sequence[Box],
                 options: RunbookOptions) -> RunbookReport:
    return replace_box(ctx, targets, force=options.force)


def _rolling_upgrade(ctx: RunbookContext, targets: Sequence[Box],
                     options: RunbookOptions) -> RunbookReport:
    role = options.role or "container_runtime"
    return rolling_upgrade(ctx, targets, role=role, max_unavailable=options.max_unavailable or 1,
                           resume=options.resume, verify=ssh_verifier(ctx, role))


def _collect_diagnostics(ctx: RunbookContext, targets: Sequence[Box],
                         options: RunbookOptions) -> RunbookReport:
    dest = options.dest or Path("diagnostics")
    dest.mkdir(parents=True, exist_ok=True)
    return simple(ctx, "collect_diagnostics", targets, {"diagnostics_dest": str(dest.resolve())})


def _k8s_upgrade(ctx: RunbookContext, targets: Sequence[Box],
                 options: RunbookOptions) -> RunbookReport:
    if not options.to:
        raise DnaboxError("k8s_upgrade needs --to MINOR", hint="e.g. --to 1.37")
    upgrade = UpgradeOptions(to=options.to, max_unavailable=options.max_unavailable or 1,
                             drain_timeout=options.drain_timeout or "300s",
                             patch=options.patch or "0")
    return k8s_upgrade(ctx, options.cluster or (), upgrade, resume=options.resume)


def _replace_control_plane(ctx: RunbookContext, targets: Sequence[Box],
                           options: RunbookOptions) -> RunbookReport:
    if not options.old or len(options.cluster or ()) != 1 or len(targets) != 1:
        raise DnaboxError("replace_control_plane needs --cluster NAME, --old NAME and one --box",
                          hint="--old names the failed control plane, --box its replacement")
    (cluster,) = options.cluster or ("",)
    return replace_control_plane(ctx, cluster, options.old, targets[0].name,
                                 resume=options.resume)


RUNBOOKS: dict[str, RunbookSpec] = {spec.name: spec for spec in (
    RunbookSpec("add_box", "Bootstrap a new box and add it to its overlays and cluster", "",
                "Runs the provisioner: the new box gets every role; the other boxes of its "
                "overlays re-run only `ovs` (their tunnel list changed); nothing else moves. "
                "Then the box joins its cluster.",
                lambda ctx, targets, options: add_box(ctx, targets), needs_box=True),
    RunbookSpec("replace_box", "Bring a replacement in under a failed box's name", "",
                "Forgets what the box had converged and bootstraps it again from scratch. "
                "Refuses while the old box still answers unless --force. The replacement's "
                "host key must be verified and recorded first (dnabox never accepts it).",
                _replace_box, options=("force",), needs_box=True),
    RunbookSpec("drain", "Take boxes out of service", "drain.yml",
                "Cordons and drains the node when its cluster is reachable, stops the "
                "containerd workloads and marks the box drained.", _simple("drain")),
    RunbookSpec("undrain", "Return drained boxes to service", "undrain.yml",
                "Removes the drained mark and uncordons the node when its cluster is reachable.",
                _simple("undrain")),
    RunbookSpec("rolling_upgrade", "Upgrade one role site by site in bounded batches",
                "upgrade_role.yml",
                "Upgrades the role's packages and re-applies the role on at most "
                "--max-unavailable boxes of one site at a time, verifies each batch and stops "
                "at the first failed batch. Resumable with --resume.",
                _rolling_upgrade, options=("role", "max_unavailable", "resume")),
    RunbookSpec("collect_diagnostics", "Gather a diagnostics tarball per box",
                "collect_diagnostics.yml",
                "Logs, `ovs-vsctl show`, the containerd config, dmesg and dnabox state, with "
                "secrets left out, fetched to the controller as <dest>/<box>.tar.gz.",
                _collect_diagnostics, options=("dest",)),
    RunbookSpec("k8s_upgrade", "Upgrade clusters one Kubernetes minor (--to 1.37)",
                "k8s_step.yml",
                "Refuses a jump of more than one minor (and a minor the boxes' containerd or a "
                "lagging kubelet cannot take). Per cluster (--cluster, all when none): an etcd "
                "snapshot; kubeadm: the first control plane (`kubeadm upgrade plan`, `apply`), "
                "the other control planes (`kubeadm upgrade node`), then the workers in batches "
                "of --max-unavailable, site by site; each node is cordoned, drained through the "
                "API (the eviction API respects PodDisruptionBudgets; --drain-timeout), "
                "upgraded, checked Ready at the new version and uncordoned. k3s: servers one "
                "at a time, then agents in batches, the same way. Update the kubernetes "
                "artifacts (url, sha256) to the new release first; after the run, set the "
                "clusters' kubernetes_version. Every step is journaled: --resume continues "
                "after the last finished one.",
                _k8s_upgrade, options=("to", "cluster", "max_unavailable", "drain_timeout",
                                       "patch", "resume")),
    RunbookSpec("replace_control_plane", "Swap a failed control plane for a new box",
                "k8s_step.yml",
                "Edit the inventory first: the new box (--box) in the cluster's control_planes "
                "where the failed one (--old) was. Then: an etcd snapshot through a healthy "
                "control plane, the failed member removed from etcd (kubeadm; k3s drops it "
                "with the node), the failed node deleted from the API, the new box bootstrapped "
                "and joined as a control plane, and checked Ready. Journaled like k8s_upgrade.",
                _replace_control_plane, options=("cluster", "old", "resume"), needs_box=True),
)}


# --- Kubernetes lifecycle (k8s_upgrade, replace_control_plane) -----------------------------

StepRunner = Callable[[Step], list[str]]


def k8s_upgrade(ctx: RunbookContext, clusters: Sequence[str], options: UpgradeOptions, *,
                resume: bool, runner: StepRunner | None = None) -> RunbookReport:
    chosen = _clusters(ctx.fleet, clusters)
    steps = plan_k8s_upgrade(ctx.fleet, chosen, options)
    report = run_steps(ctx, "k8s_upgrade", steps, resume=resume,
                       runner=runner or step_runner(ctx))
    if report.ok:
        names = ", ".join(c.name for c in chosen)
        report.message += (f"; now set kubernetes_version: \"{options.to}\" for {names} in "
                           f"{ctx.fleet.source or 'the inventory'}")
    return report


def replace_control_plane(ctx: RunbookContext, cluster: str, old: str, new: str, *,
                          resume: bool, runner: StepRunner | None = None) -> RunbookReport:
    (chosen,) = _clusters(ctx.fleet, [cluster])
    steps = plan_replace_control_plane(ctx.fleet, chosen, old, new)
    return run_steps(ctx, "replace_control_plane", steps, resume=resume,
                     runner=runner or step_runner(ctx))


def _clusters(fleet: Fleet, names: Sequence[str]) -> list[Cluster]:
    known = {c.name: c for c in fleet.clusters}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DnaboxError(f"no cluster named {', '.join(unknown)} in fleet {fleet.name}",
                          hint=f"clusters: {', '.join(known) or 'none'}")
    return [known[n] for n in names] if names else list(fleet.clusters)


def run_steps(ctx: RunbookContext, name: str, steps: Sequence[Step], *, resume: bool,
              runner: StepRunner) -> RunbookReport:
    """Run ``steps`` in order, journaling each; stop at the first that fails."""
    digest = hashlib.sha256("|".join(s.id for s in steps).encode()).hexdigest()[:16]
    plan_id = f"{name}:{digest}"
    journal = Journal(ctx.state / "runbooks")
    done = journal.resumable(plan_id) if resume else set()
    run = journal.start_run(plan_id)
    report = RunbookReport(name, True)
    for step in steps:
        entry: dict[str, Any] = step.as_json()
        report.batches.append(entry)
        if step.id in done:
            entry["status"] = "skipped"
            ctx.sink(Event("unit", "skipped", unit=step.id, box=step.node,
                           message="done by the interrupted run (--resume)"))
            continue
        ctx.sink(Event("unit", "started", unit=step.id, box=step.node, message=step.kind))
        problems = runner(step)
        entry["status"] = "failed" if problems else "ok"
        journal.unit_done(run, step.id, entry["status"])
        ctx.sink(Event("unit", entry["status"], unit=step.id, box=step.node,
                       message="; ".join(problems)))
        if problems:
            report.ok = False
            report.message = (f"stopped at step {step.id} ({step.kind}): {'; '.join(problems)}"
                              "; fix it and re-run with --resume")
            break
    journal.finish_run(run, report.ok)
    if report.ok:
        report.message = f"{len(steps)} steps done"
    return report


def step_runner(ctx: RunbookContext) -> StepRunner:
    """Run a step for real: ``join`` through the provisioner, the others with k8s_step.yml on
    the step's box, each under the fleet lock (the provisioner takes it itself)."""

    def run(step: Step) -> list[str]:
        if step.kind == "join":
            report = Provisioner(ctx.fleet, ctx.locations, ctx.sink,
                                 UpOptions(only_boxes=frozenset({step.node}))).up()
            return [] if report.ok else [f"{step.node}: dnabox up failed"]
        via = ctx.fleet.box(step.via)
        with FleetLock(ctx.state):
            result = run_playbook_on(ctx, "k8s_step.yml", [via], extravars={
                "k8s_step": step.kind, "k8s_node": step.node, "k8s_args": dict(step.args)},
                label=f"k8s-{step.kind}")
        host = result.hosts.get(via.name)
        if host is None:
            return [f"{via.name}: not reached"]
        if host.failed or host.unreachable:
            return [f"{via.name}: {step.kind} failed (see the Ansible log)"]
        return []

    return run
