"""`dnabox plan`, `status` and `drift`: read the boxes, compare with the desired state."""

from __future__ import annotations

import difflib
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dnabox.adapters.ssh import BoxConnection, ConnectionPool
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.plan.desired import BoxPlan, RenderedFile
from dnabox.provision.remote import BoxState, RoleDecision, decide, read_state

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
               boxes: list[str] | None = None, parallel: int = 32) -> list[BoxReading]:
    """Read every box in parallel, one round trip each (plus one per file when diffing)."""
    names = boxes or [b.name for b in fleet.boxes]
    with ConnectionPool() as pool:
        def one(name: str) -> BoxReading:
            box = fleet.box(name)
            site = fleet.site(box.site)
            plan = plans[name]
            connection = pool.get(name, fleet.ssh_for(box))
            try:
                state = read_state(connection, plan)
            except DnaboxError as exc:
                return BoxReading(name, site.name, site.tier, None, exc.message)
            decisions = tuple(decide(plan, state))
            diffs: dict[str, str] = {}
            if with_diffs:
                for rendered in plan.files:
                    if state.file_hashes.get(rendered.dest) != rendered.sha256:
                        current = _fetch(connection, rendered.dest)
                        diffs[rendered.dest] = unified_diff(rendered, current)
            return BoxReading(name, site.name, site.tier, state, "", decisions, diffs)

        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names)))) as executor:
            return list(executor.map(one, names))


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
