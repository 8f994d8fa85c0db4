"""The D-N-A loop on the lab: data in at the end, a model out at the core, served at the edge,
through a cut link and back.

publish at an end device -> its edge pond -> the core lake; train v1 at the core; predict at
every serving edge; cut the producer's edge site off (`lab partition`) and keep publishing:
its pond keeps every sample and the edge keeps serving v1 from its registry mirror; heal:
the lake catches up with nothing lost; retrain to v2 on the larger lake; every serving edge
serves v2. Each step ends in a ``Proof``; waits poll the layer's own status with a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dnabox.adapters.ssh import ConnectionPool
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.lab import partition
from dnabox.plan.dna import DnaTopology, build_topology
from dnabox.provision.dna_ops import publish, read_status
from dnabox.provision.dna_service import DEFAULT_FEATURES, TrainReport, predict, train
from dnabox.provision.proofs import Proof

Note = Callable[[str], None]


@dataclass(frozen=True)
class LoopPlan:
    """Who does what in the loop, from the fleet's D-N-A topology."""

    producer: str  # an end device's box
    pond_site: str  # the edge site keeping its samples (the one the loop cuts off)
    model: str
    serving_sites: tuple[str, ...]


def loop_plan(fleet: Fleet) -> LoopPlan | None:
    """None when the fleet has no D-N-A layer with a producer, a pond and a served model."""
    topology = build_topology(fleet)
    if topology is None or not topology.publishers:
        return None
    publisher = topology.publishers[0]
    model = _model_of(topology, publisher.dataset)
    if model is None:
        return None
    sites = tuple(sorted({s.site for s in topology.services
                          if s.role == "inference" and s.model == model}))
    return LoopPlan(publisher.box, publisher.pond, model, sites) if sites else None


def _model_of(topology: DnaTopology, dataset: str) -> str | None:
    trained = [s.model for s in topology.services
               if s.role == "trainer" and s.dataset == dataset and s.model]
    return trained[0] if trained else None


def wait_for(what: str, ready: Callable[[], bool], timeout: float) -> float:
    """Poll ``ready`` until it holds; the seconds it took. Raises when the deadline passes."""
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > timeout:
            raise DnaboxError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)  # a poll interval: ready() decides
    return time.monotonic() - started


def _lake(fleet: Fleet) -> int:
    return read_status(fleet).lake_samples


def _serves(fleet: Fleet, plan: LoopPlan, pool: ConnectionPool, version: int) -> float:
    """Wait until every serving edge answers with ``version``; the seconds it took."""
    def everywhere() -> bool:
        for site in plan.serving_sites:
            try:
                answer = predict(fleet, site, plan.model, dict(DEFAULT_FEATURES), pool)
            except DnaboxError:  # 503 until the site's first version arrives
                return False
            if answer.version != version:
                return False
        return True

    return wait_for(f"every serving edge to serve v{version}", everywhere, 60)


def run_loop(fleet: Fleet, plan: LoopPlan, note: Note, *, samples: int = 2000,
             while_cut: int = 1000) -> list[Proof]:
    """The whole loop; one Proof per step, stopping at the first that fails."""
    proofs: list[Proof] = []
    with ConnectionPool() as pool:
        try:
            _steps(fleet, plan, pool, note, proofs, samples, while_cut)
        except DnaboxError as exc:
            proofs.append(Proof("the D-N-A loop", False, exc.message))
    return proofs


def _steps(fleet: Fleet, plan: LoopPlan, pool: ConnectionPool, note: Note,
           proofs: list[Proof], samples: int, while_cut: int) -> None:
    def prove(what: str, ok: bool, detail: str) -> bool:
        proofs.append(Proof(what, ok, detail))
        return ok

    base = _lake(fleet)
    sent = publish(fleet, plan.producer, samples)
    took = wait_for("the lake to hold the samples", lambda: _lake(fleet) >= base + samples, 120)
    if not prove(f"{samples} samples {plan.producer} -> pond {plan.pond_site} -> core lake",
                 _lake(fleet) == base + samples,
                 f"published at {sent.rate:,.0f}/s, all in the lake {took:.1f} s later"):
        return
    first = train(fleet, plan.model, pool)
    prove(f"trained {plan.model} v{first.version} at the core", first.version >= 1,
          _metric(first))
    _serves(fleet, plan, pool, first.version)
    for site in plan.serving_sites:
        answer = predict(fleet, site, plan.model, dict(DEFAULT_FEATURES), pool)
        prove(f"{site} answered with v{answer.version}", answer.version == first.version,
              f"{answer.prediction:.1f} km/h in {answer.seconds * 1000:.0f} ms")
    note(f"cutting site {plan.pond_site} off the others")
    partition.partition(fleet, plan.pond_site)
    try:
        lake_cut = _lake(fleet)
        cut = publish(fleet, plan.producer, while_cut)
        status = read_status(fleet)
        kept = [p for p in status.ponds if p.site == plan.pond_site]
        prove(f"{plan.pond_site} cut off: the lake waits", status.lake_samples == lake_cut,
              f"{cut.published} samples published at {plan.producer}, kept in its pond "
              f"(the hub cannot reach it: {all(p.samples is None for p in kept)})")
        if plan.pond_site in plan.serving_sites:
            during = predict(fleet, plan.pond_site, plan.model, dict(DEFAULT_FEATURES), pool)
            prove(f"{plan.pond_site} keeps serving while cut off",
                  during.version == first.version,
                  f"v{during.version} from its registry mirror")
    finally:
        partition.heal(fleet, plan.pond_site)
        note(f"healed site {plan.pond_site}")
    caught = wait_for("the lake to catch up", lambda: _lake(fleet) >= lake_cut + while_cut, 180)
    prove("the lake caught up with nothing lost", _lake(fleet) == lake_cut + while_cut,
          f"{while_cut} samples arrived {caught:.1f} s after heal")
    second = train(fleet, plan.model, pool)
    prove(f"retrained {plan.model} to v{second.version} on the larger lake",
          second.version > first.version, f"{_metric(second)} (v{first.version}: "
                                           f"{_metric(first)})")
    took = _serves(fleet, plan, pool, second.version)
    prove(f"every serving edge serves v{second.version}", True,
          f"{', '.join(plan.serving_sites)}, {took:.1f} s after training finished")


def _metric(report: TrainReport) -> str:
    metric = report.metric
    return (f"RMSE {metric.get('rmse')} km/h, R2 {metric.get('r2')} on "
            f"{metric.get('held_out')} held-out samples")
