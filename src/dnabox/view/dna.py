"""The D-N-A page's data: the layer's status from the hub, rates between two readings,
for a pond the hub cannot reach (its site is cut off), the pond read at its own box, and the
last predictions of every inference server, read at its own box.

So during a partition the page shows what an operator wants to see: the cut link, and a
pond that keeps growing at the edge while the lake waits for it.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from dnabox.adapters.ssh import ConnectionPool
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.plan.dna import DnaTopology, build_topology
from dnabox.provision.dna_ops import TOOL, DnaNotProvisioned, read_status
from dnabox.provision.dna_service import recent_predictions

MODEL_FIELDS = ("name", "version", "metric", "served")


@dataclass
class DnaWatch:
    """Successive readings of one fleet's D-N-A layer; rates come from the last two."""

    fleet: Fleet
    topology: DnaTopology | None = None
    last: dict[str, Any] | None = None
    _previous: tuple[float, dict[str, int]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.topology = build_topology(self.fleet)

    @property
    def enabled(self) -> bool:
        return self.topology is not None and bool(self.topology.hub)

    def read(self) -> dict[str, Any]:
        """One reading (blocking: SSH). Never raises for a layer that is not there yet."""
        if not self.enabled:
            self.last = {"schema": "dnabox/v1", "enabled": False,
                         "reason": f"fleet {self.fleet.name} declares no D-N-A layer"}
            return self.last
        try:
            status = read_status(self.fleet).as_json()
        except DnaNotProvisioned as exc:
            self.last = {"schema": "dnabox/v1", "enabled": False, "reason": exc.message}
            return self.last
        except DnaboxError as exc:
            status = {"ponds": [], "lake": {"samples": None, "by_site": {}}, "catalogue": {},
                      "models": [], "error": exc.message}
        self._read_cut_ponds(status)
        with ConnectionPool() as pool:
            # Asked at each edge, so a cut-off site's answers (from its last model) show too.
            predictions = recent_predictions(self.fleet, pool)
        now = time.time()
        counts = counters(status)
        rates = {}
        if self._previous is not None:
            then, before = self._previous
            rates = rates_between(before, counts, now - then)
        self._previous = (now, counts)
        self.last = {"schema": "dnabox/v1", "enabled": True, "read_at": now,
                     **status, "rates": rates, "predictions": predictions,
                     "models": [{k: m.get(k) for k in MODEL_FIELDS}
                                for m in status.get("models", [])]}
        return self.last

    def _read_cut_ponds(self, status: dict[str, Any]) -> None:
        """A pond the hub cannot reach is read on its own box, over the management plane."""
        assert self.topology is not None
        streams = {(p.site, p.dataset): p for p in self.topology.ponds}
        cut = [p for p in status.get("ponds", []) if p.get("samples") is None]
        if not cut:
            return
        with ConnectionPool() as pool:
            for pond in cut:
                plan = streams.get((pond["site"], pond["dataset"]))
                pond["cut"] = True
                if plan is None:
                    continue
                box = self.fleet.box(plan.box)
                try:
                    answer = pool.get(box.name, self.fleet.ssh_for(box)).run(
                        f"{TOOL} info {shlex.quote(plan.stream)}", timeout=30)
                    info = json.loads(answer.stdout) if answer.rc == 0 else {}
                except (DnaboxError, json.JSONDecodeError):
                    info = {}
                state = info.get("state", {}) if isinstance(info, dict) else {}
                if "messages" in state:
                    pond["samples_at_edge"] = int(state["messages"])


def counters(status: dict[str, Any]) -> dict[str, int]:
    """The counts rates are taken from: each pond (as seen anywhere) and the lake by site."""
    out: dict[str, int] = {}
    for pond in status.get("ponds", []):
        samples = pond.get("samples")
        if samples is None:
            samples = pond.get("samples_at_edge")
        if samples is not None:
            out[f"pond:{pond['site']}:{pond['dataset']}"] = int(samples)
    for site, samples in (status.get("lake", {}).get("by_site") or {}).items():
        out[f"lake:{site}"] = int(samples)
    return out


def rates_between(before: dict[str, int], after: dict[str, int],
                  seconds: float) -> dict[str, float]:
    """Samples per second for every counter read both times (a retention cut reads as 0)."""
    if seconds <= 0:
        return {}
    return {key: round(max(0, after[key] - before[key]) / seconds, 1)
            for key in after if key in before}
