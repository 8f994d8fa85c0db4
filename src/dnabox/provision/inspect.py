"""`dnabox plan`, `status` and `drift`: read the boxes, compare with the desired state."""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dnabox.adapters.jobs import Job, LazyPool
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.plan.desired import BoxPlan, RenderedFile
from dnabox.provision.agent.batch import BatchOutcome, run_batch
from dnabox.provision.remote import (
    BoxFacts,
    BoxState,
    RoleDecision,
    decide,
    preflight_command,
    state_from,
)

if TYPE_CHECKING:
    from dnabox.adapters.ssh import BoxConnection

MAX_DIFF_LINES = 80


@dataclass(frozen=True)
class BoxReading:
    box: str
    site: str
    tier: str
    state: BoxState | None
    error: str = ""
    decisions: tuple[RoleDecision, ...] = ()
    diffs: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.state is None:
            return "unreachable"
        if any(d.needs_run for d in self.decisions):
            return "pending"
        return "converged"

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.box, "site": self.site, "tier": self.tier, "state": self.status,
            "error": self.error or None,
            "roles": {d.role: d.reason for d in self.decisions},
            "drifted_files": sorted(self.diffs),
        }


def read_fleet(fleet: Fleet, plans: dict[str, BoxPlan], *, with_diffs: bool = False,
               boxes: list[str] | None = None, parallel: int = 256) -> list[BoxReading]:
    """Read every box at once, one round trip each (plus one per file when diffing).

    Over the connection agent's kept connections when it runs (no handshakes), else over
    connections of our own.
    """
    names = boxes or [b.name for b in fleet.boxes]
    jobs = [Job(name, fleet.ssh_for(fleet.box(name)), preflight_command(plans[name]),
                timeout=60) for name in names]
    with LazyPool() as own:
        outcome = run_batch(fleet.name, fleet.source or "", jobs, own, parallel=parallel) \
            if fleet.source else BatchOutcome(own.run_many(jobs, parallel=parallel), 0)
        readings = []
        for answer in outcome.results:
            box = fleet.box(answer.box)
            site = fleet.site(box.site)
            try:
                state = state_from(answer)
            except DnaboxError as exc:
                readings.append(BoxReading(box.name, site.name, site.tier, None, exc.message))
                continue
            plan = plans[box.name]
            decisions = tuple(decide(plan, state))
            diffs: dict[str, str] = {}
            if with_diffs:
                connection = own.get(box.name, fleet.ssh_for(box))
                for rendered in plan.files:
                    if state.file_hashes.get(rendered.dest) != rendered.sha256:
                        diffs[rendered.dest] = unified_diff(rendered,
                                                            _fetch(connection, rendered.dest))
            readings.append(BoxReading(box.name, site.name, site.tier, state, "", decisions,
                                       diffs))
        return readings


def _fetch(connection: BoxConnection, path: str) -> str | None:
    result = connection.run(f"cat {shlex.quote(path)}", timeout=30)
    return result.stdout if result.rc == 0 else None


def unified_diff(rendered: RenderedFile, current: str | None) -> str:
    """The change `dnabox up` would make to one file, as a unified diff (box -> desired)."""
    before = [] if current is None else current.splitlines(keepends=True)
    after = rendered.content.splitlines(keepends=True)
    label = rendered.dest if current is not None else "/dev/null"
    lines = list(difflib.unified_diff(before, after, fromfile=label, tofile=rendered.dest))
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines\n"]
    return "".join(lines)


BLANK = BoxState(BoxFacts("", "", "", 0, 0, ""), {})


def read_blank(fleet: Fleet, plans: dict[str, BoxPlan], boxes: list[str]) -> list[BoxReading]:
    """`dnabox plan --offline`: what `up` would do on freshly installed boxes, without
    connecting to any (a new fleet repo, CI without access to the boxes)."""
    readings = []
    for name in boxes:
        site = fleet.site(fleet.box(name).site)
        plan = plans[name]
        diffs = {f.dest: unified_diff(f, None) for f in plan.files}
        readings.append(BoxReading(name, site.name, site.tier, BLANK, "",
                                   tuple(decide(plan, BLANK)), diffs))
    return readings
