"""`dnabox demo`: the whole toolkit on the built-in lab, from nothing to proven and back.

validate the fleet -> build the lab boxes -> plan -> `dnabox up` -> prove (a packet across
the VXLAN overlay between sites, a container started by containerd) -> the D-N-A loop (when
the fleet declares the layer: data to the lake, a model trained at the core and served at
the edge, through a cut link; ``lab.dna_loop``) -> re-run on the converged fleet -> status
-> tear down (unless kept). The steps report to a ``DemoView``
as they go (the CLI draws them); the result is one ``DemoReport``.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dnabox.adapters.graphviz import render, topology_dot
from dnabox.adapters.ssh import ConnectionPool
from dnabox.inventory.model import Fleet
from dnabox.lab.dna_loop import loop_plan, run_loop
from dnabox.lab.lifecycle import down, up
from dnabox.locations import Locations
from dnabox.plan.desired import BoxPlan
from dnabox.plan.topology import topology_view
from dnabox.provision.engine import Provisioner
from dnabox.provision.events import EventSink
from dnabox.provision.inspect import read_fleet
from dnabox.provision.plans import controller_plans
from dnabox.provision.proofs import Proof, container_run, cross_site_pairs, overlay_ping

STEPS = 8


@dataclass(frozen=True)
class PlanRow:
    box: str
    tier: str
    state: str
    todo: str  # the roles to run and why, or the error reading the box


@dataclass(frozen=True)
class StatusRow:
    box: str
    site: str
    tier: str
    state: str

    @property
    def ok(self) -> bool:
        return self.state == "converged"


@dataclass(frozen=True)
class UpRun:
    ok: bool
    role_runs: int
    boxes: int
    seconds: float


@dataclass
class DemoReport:
    fleet: str
    picture: Path
    kept: bool = False
    lab: dict[str, Any] = field(default_factory=dict)
    plan: list[PlanRow] = field(default_factory=list)
    runs: list[UpRun] = field(default_factory=list)
    proofs: list[Proof] = field(default_factory=list)
    dna: list[Proof] = field(default_factory=list)
    status: list[StatusRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (len(self.runs) == 2 and all(r.ok for r in self.runs)
                and bool(self.proofs) and all(p.ok for p in self.proofs)
                and all(p.ok for p in self.dna)
                and bool(self.status) and all(s.ok for s in self.status))

    def as_json(self) -> dict[str, Any]:
        return {"fleet": self.fleet, "ok": self.ok, "seconds": round(self.seconds, 1),
                "picture": str(self.picture), "kept": self.kept, "lab": self.lab,
                "plan": [asdict(r) for r in self.plan], "runs": [asdict(r) for r in self.runs],
                "proofs": [asdict(p) for p in self.proofs],
                "dna": [asdict(p) for p in self.dna],
                "status": [asdict(s) for s in self.status]}


class DemoView(Protocol):
    """What the demo shows while it runs."""

    def step(self, title: str) -> None: ...

    def note(self, text: str) -> None: ...

    def plan(self, rows: list[PlanRow]) -> None: ...

    def up(self, run: UpRun) -> None: ...

    def proof(self, proof: Proof) -> None: ...

    def status(self, rows: list[StatusRow]) -> None: ...

    def progress(self) -> AbstractContextManager[EventSink]:
        """A sink drawing one `dnabox up` run while it lasts."""
        ...


def run_demo(fleet: Fleet, locations: Locations, view: DemoView, *, picture: Path,
             keep: bool = False) -> DemoReport:
    """Build the lab, plan, converge it for real, prove it works, then tear it down."""
    started = time.monotonic()
    report = DemoReport(fleet.name, picture, kept=keep)
    view.step(f"1/{STEPS} fleet {fleet.name}: {len(fleet.sites)} sites, "
              f"{len(fleet.boxes)} boxes")
    render(topology_dot(topology_view(fleet)), picture)
    view.note(f"topology written to {picture}")

    view.step(f"2/{STEPS} build the lab (namespaces, own rootfs, sshd, host keys)")
    built = up(fleet, log=lambda message: view.note(f"lab: {message}"))
    report.lab = {"started": len(built.started), "kept": len(built.kept),
                  "seconds": round(built.seconds, 1)}
    view.note(f"{len(built.started)} boxes started, {len(built.kept)} kept "
              f"in {built.seconds:.1f} s")
    try:
        view.step(f"3/{STEPS} plan: what `dnabox up` will do and why")
        plans = controller_plans(fleet, locations)
        report.plan = _plan_rows(fleet, plans)
        view.plan(report.plan)

        view.step(f"4/{STEPS} dnabox up: converge every box, sites in parallel")
        report.runs.append(_up(fleet, locations, view))

        view.step(f"5/{STEPS} prove it works")
        report.proofs = _prove(fleet)
        for proof in report.proofs:
            view.proof(proof)

        loop = loop_plan(fleet)
        if loop is None:
            view.step(f"6/{STEPS} the D-N-A loop: skipped (the fleet declares no dna: layer)")
        else:
            view.step(f"6/{STEPS} the D-N-A loop: {loop.producer} -> pond {loop.pond_site} -> "
                      f"lake, {loop.model} trained at the core, served at "
                      f"{', '.join(loop.serving_sites)}")
            report.dna = run_loop(fleet, loop, view.note)
            for proof in report.dna:
                view.proof(proof)

        view.step(f"7/{STEPS} re-run on the converged fleet (one SSH round trip per box)")
        report.runs.append(_up(fleet, locations, view))
        view.note(f"converged re-run took {report.runs[-1].seconds:.1f} s")

        view.step(f"8/{STEPS} status")
        # Planned again: `up` made the fleet's D-N-A secrets, whose digest is in the plans.
        report.status = [StatusRow(r.box, r.site, r.tier, r.status)
                         for r in read_fleet(fleet, controller_plans(fleet, locations))]
        view.status(report.status)
    finally:
        if keep:
            view.note("lab left up (--keep)")
        else:
            view.step("tear down")
            down(fleet)
            view.note("lab removed")
        report.seconds = time.monotonic() - started
    return report


def _plan_rows(fleet: Fleet, plans: dict[str, BoxPlan]) -> list[PlanRow]:
    rows = []
    for reading in read_fleet(fleet, plans):
        todo = ", ".join(f"{d.role} ({d.reason})" for d in reading.decisions if d.needs_run)
        rows.append(PlanRow(reading.box, reading.tier, reading.status,
                            reading.error or todo or "-"))
    return rows


def _up(fleet: Fleet, locations: Locations, view: DemoView) -> UpRun:
    began = time.monotonic()
    with view.progress() as sink:
        result = Provisioner(fleet, locations, sink).up()
    run = UpRun(result.ok, sum(len(r) for r in result.ran.values()), len(result.ran),
                time.monotonic() - began)
    view.up(run)
    return run


def _prove(fleet: Fleet) -> list[Proof]:
    with ConnectionPool() as pool:
        proofs = [overlay_ping(fleet, pool, src, dst, overlay)
                  for src, dst, overlay in cross_site_pairs(fleet)]
        container_box = next((b for b in fleet.boxes if fleet.tier_of(b) == "edge"),
                             fleet.boxes[0])
        proofs.append(container_run(fleet, pool, container_box))
    return proofs
