"""`dnabox bootstrap`: the plain bare-metal bootstrap, playbooks/site.yml on chosen boxes.

Every chosen box runs every role it needs (`dnabox up` is the incremental way). Missing
artifacts stop the command before any box is touched.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from dnabox.adapters.ansible import PlaybookResult, TaskEvent, run_playbook
from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    fleet_from,
    locations,
    print_json,
    stderr,
)
from dnabox.errors import RemoteError
from dnabox.plan.ansible_inventory import render_inventory
from dnabox.plan.artifacts import check_artifacts
from dnabox.plan.selection import select_boxes

BoxOption = Annotated[list[str] | None, typer.Option("--box", "-b", help="Only these boxes.")]
SiteOption = Annotated[list[str] | None, typer.Option("--site", "-s", help="Only these sites.")]
TierOption = Annotated[list[str] | None, typer.Option("--tier", "-t",
                                                       help="Only these tiers (core/edge/end).")]
TagsOption = Annotated[list[str] | None, typer.Option("--role", "-r",
                                                       help="Only these roles (Ansible tags).")]
ForksOption = Annotated[int, typer.Option("--forks", help="Boxes Ansible works on at once.")]


@dataclass
class BoxProgress:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    task: str = "waiting"
    failure: str = ""


class ProgressTable:
    """A live table, one row per box: counts so far and the task it is on."""

    def __init__(self, boxes: list[str], console: Console) -> None:
        self.rows = {box: BoxProgress() for box in boxes}
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=console, refresh_per_second=4,
                          transient=False)

    def __enter__(self) -> ProgressTable:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self._render())
        self._live.__exit__(None, None, None)

    def __call__(self, event: TaskEvent) -> None:
        with self._lock:
            row = self.rows.setdefault(event.host, BoxProgress())
            if event.status in {"failed", "unreachable"}:
                row.failed += 1
                row.failure = row.failure or f"{event.task}: {event.message}"
            elif event.status == "skipped":
                row.skipped += 1
                return  # the last task shown is the last one that ran
            else:
                row.ok += 1
                row.changed += event.status == "changed"
            row.task = f"{event.role}: {event.task}" if event.role else event.task
            self._live.update(self._render())

    def _render(self) -> Table:
        table = Table(title="dnabox bootstrap", expand=False)
        for column in ("box", "ok", "changed", "failed", "last task"):
            table.add_column(column)
        for box, row in self.rows.items():
            failed = f"[red]{row.failed}[/]" if row.failed else "0"
            table.add_row(box, str(row.ok), f"[yellow]{row.changed}[/]" if row.changed else "0",
                          failed, row.task[:70])
        return table


def summary(result: PlaybookResult, boxes: list[str]) -> dict[str, object]:
    rows = []
    for box in boxes:
        stats = result.hosts.get(box)
        if stats is None:
            rows.append({"name": box, "ok": 0, "changed": 0, "failed": 1, "unreachable": 0})
            continue
        rows.append({"name": box, "ok": stats.ok, "changed": stats.changed,
                     "failed": stats.failed, "unreachable": stats.unreachable})
    return {"boxes": rows}


@command
def bootstrap(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    role: TagsOption = None,
    forks: ForksOption = 50,
    json_output: JsonOption = False,
) -> None:
    """Bootstrap boxes with Ansible: run playbooks/site.yml on them over SSH.

    Renders the Ansible inventory from the fleet, checks that every artifact the chosen
    boxes need is declared (before touching any box), then runs every role each box needs,
    showing progress per box. Exit 0 when every box converged, 4 when one failed.

    Example: dnabox bootstrap -i inventory/lab.yaml --site edge-a --json
    """
    fleet = fleet_from(inventory)
    boxes = [b.name for b in select_boxes(fleet, boxes=box, sites=site, tiers=tier)]
    check_artifacts(fleet, boxes)
    where = locations(ctx)
    rendered = render_inventory(fleet, where)
    err = stderr()
    started = time.monotonic()
    run_dir = where.ensure_fleet_state(fleet.name) / "ansible" / "bootstrap"
    with ProgressTable(boxes, err) as progress:
        result = run_playbook(where.site_playbook, rendered, private_data_dir=run_dir,
                              limit=boxes, tags=role, forks=forks,
                              roles_path=where.roles, on_event=progress)
    seconds = time.monotonic() - started
    report = summary(result, boxes)
    failed = [r["name"] for r in report["boxes"]  # type: ignore[attr-defined]
              if r["failed"] or r["unreachable"]]
    for box_name, row in progress.rows.items():
        if row.failure:
            err.print(f"[red]{box_name}[/]: {escape(row.failure)}", highlight=False)
    err.print(f"{len(boxes)} boxes in {seconds:.1f} s; ansible status {result.status}"
              + (f"; [red]failed: {', '.join(failed)}[/]" if failed else ""))
    if json_output:
        print_json(report | {"seconds": round(seconds, 1)})
    if failed or result.rc != 0:
        raise RemoteError(f"bootstrap failed on {', '.join(failed) or 'the run'}",
                          hint=f"see the Ansible log in {run_dir}/artifacts/*/stdout")
