"""Run a DAG of work units with bounded concurrency and failure isolation.

A failed unit blocks only the units that need it: one site failing never stops another.
The order is ``graphlib.TopologicalSorter``'s over the units' ``needs``.
Concurrency is bounded globally (threads) and per site (semaphores), so a site with many
boxes cannot starve the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from dnabox.errors import DnaboxError
from dnabox.plan.dag import WorkUnit
from dnabox.provision.events import Event, EventSink, UnitStatus


@dataclass(frozen=True)
class UnitOutcome:
    status: UnitStatus
    message: str = ""
    seconds: float = 0.0


Execute = Callable[[WorkUnit], UnitOutcome]


class Scheduler:
    """Runs ``units`` in the order their ``needs`` give (graphlib's topological sort).

    Every need must name a unit of the run, and the needs must not form a cycle: both are
    bugs in whoever built the units, refused before anything runs.
    """

    def __init__(self, units: list[WorkUnit], execute: Execute, sink: EventSink, *,
                 max_parallel: int = 16, per_site: int = 8,
                 already_done: set[str] | None = None) -> None:
        self.units = {u.id: u for u in units}
        self.execute = execute
        self.sink = sink
        self.max_parallel = max(1, max_parallel)
        self.per_site = max(1, per_site)
        self.already_done = already_done or set()
        self._site_slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()
        self._order = self._sorter()

    def _sorter(self) -> TopologicalSorter[str]:
        unknown = sorted(f"{u.id} needs {n}" for u in self.units.values() for n in u.needs
                         if n not in self.units)
        if unknown:
            raise ValueError(f"work units need units that are not in the run: {unknown}")
        sorter = TopologicalSorter({u.id: u.needs for u in self.units.values()})
        try:
            sorter.prepare()
        except CycleError as exc:
            raise ValueError(f"work units need each other in a cycle: {exc.args[1]}") from exc
        return sorter

    def _slot(self, site: str) -> threading.BoundedSemaphore:
        with self._slots_lock:
            if site not in self._site_slots:
                self._site_slots[site] = threading.BoundedSemaphore(self.per_site)
            return self._site_slots[site]

    def _guarded(self, unit: WorkUnit) -> UnitOutcome:
        slot = self._slot(unit.site) if unit.site else None
        if slot:
            slot.acquire()
        started = time.monotonic()
        self.sink(Event("unit", "started", unit=unit.id, site=unit.site))
        try:
            outcome = self.execute(unit)
        except DnaboxError as exc:
            outcome = UnitOutcome("failed", exc.message)
        except Exception as exc:  # a bug in one unit must not take down the other sites
            outcome = UnitOutcome("failed", f"{type(exc).__name__}: {exc}")
        finally:
            if slot:
                slot.release()
        return UnitOutcome(outcome.status, outcome.message, time.monotonic() - started)

    def run(self) -> dict[str, UnitOutcome]:
        results: dict[str, UnitOutcome] = {}
        for unit_id in sorted(self.already_done & set(self.units)):
            results[unit_id] = UnitOutcome("skipped", "done by the interrupted run (--resume)")
            self.sink(Event("unit", "skipped", unit=unit_id, site=self.units[unit_id].site,
                            message=results[unit_id].message))
        running: dict[Future[UnitOutcome], WorkUnit] = {}
        with ThreadPoolExecutor(max_workers=self.max_parallel,
                                thread_name_prefix="dnabox-unit") as pool:
            try:
                while self._order.is_active():
                    self._start_ready(pool, results, running)
                    if not running:
                        continue  # every ready unit was settled without running: ask again
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        unit = running.pop(future)
                        results[unit.id] = outcome = future.result()
                        self._order.done(unit.id)
                        self.sink(Event("unit", outcome.status, unit=unit.id,
                                        site=unit.site, message=outcome.message,
                                        data={"seconds": round(outcome.seconds, 3)}))
            except BaseException:
                for future in running:
                    future.cancel()
                raise
        return results

    def _tolerable(self, unit: WorkUnit, blockers: list[str]) -> bool:
        """Only tolerated needs failed, and not all of them: the unit runs without them."""
        tolerated = [n for n in unit.tolerates if n in self.units]
        return all(n in unit.tolerates for n in blockers) and len(blockers) < len(tolerated)

    def _start_ready(self, pool: ThreadPoolExecutor, results: dict[str, UnitOutcome],
                     running: dict[Future[UnitOutcome], WorkUnit]) -> None:
        """Start every unit whose needs are settled; settle at once those that cannot run
        (done by an interrupted run, or blocked by a failed need)."""
        for unit_id in self._order.get_ready():
            unit = self.units[unit_id]
            if unit_id in results:  # skipped: the interrupted run finished it
                self._order.done(unit_id)
                continue
            blockers = [n for n in unit.needs if results[n].status in {"failed", "blocked"}]
            if blockers and not self._tolerable(unit, blockers):
                results[unit_id] = UnitOutcome("blocked", f"blocked by {', '.join(blockers)}")
                self.sink(Event("unit", "blocked", unit=unit_id, site=unit.site,
                                message=results[unit_id].message))
                self._order.done(unit_id)
                continue
            running[pool.submit(self._guarded, unit)] = unit
