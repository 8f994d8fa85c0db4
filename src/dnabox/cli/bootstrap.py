"""`dnabox bootstrap`: parse, run ``provision.bootstrap``, render its report (a live table
per box while it runs)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    BoxOption,
    ClusterOption,
    InventoryOption,
    JsonOption,
    LimitOption,
    SiteOption,
    TierOption,
    command,
    fleet_from,
    locations,
    print_json,
    selection,
    stderr,
)
from dnabox.errors import RemoteError

if TYPE_CHECKING:
    from dnabox.adapters.ansible import TaskEvent

TagsOption = Annotated[list[str] | None, typer.Option("--role",
                                                       help="Only these roles (Ansible tags).")]
ForksOption = Annotated[int, typer.Option("--forks", "-f",
                                          help="Boxes Ansible works on at once.")]


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

    def __init__(self, console: Console) -> None:
        self.rows: dict[str, BoxProgress] = {}
        self._lock = threading.Lock()
        self._console = console
        self._live: Live | None = None  # shown once the boxes are chosen, not on bad input

    def __enter__(self) -> ProgressTable:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)

    def start(self, boxes: list[str]) -> None:
        with self._lock:
            self.rows = {box: BoxProgress() for box in boxes}
            self._live = Live(self._render(), console=self._console, refresh_per_second=4,
                              transient=False)
            self._live.__enter__()

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
            if self._live is not None:
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


@command
def bootstrap(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    cluster: ClusterOption = None,
    limit: LimitOption = None,
    role: TagsOption = None,
    forks: ForksOption = 50,
    json_output: JsonOption = False,
) -> None:
    """Bootstrap boxes with Ansible: run playbooks/site.yml on them over SSH.

    Renders the Ansible inventory from the fleet, checks that every artifact the chosen
    boxes need is declared (before touching any box), then runs every role each box needs,
    showing progress per box. Exit 0 when every box converged, 1 when one failed.

    Example: dnabox bootstrap -i inventory/lab.yaml --site edge-a --json
    """
    # deferred: the Ansible inventory and the plan (jinja2) are ~0.2 s at every CLI start.
    from dnabox.provision.bootstrap import bootstrap as run_bootstrap

    err = stderr()
    with ProgressTable(err) as progress:
        report = run_bootstrap(fleet_from(inventory), locations(ctx),
                               selection(box, site, tier, cluster, limit), roles=role,
                               forks=forks, on_start=progress.start, on_event=progress)
    for box_name, row in progress.rows.items():
        if row.failure:
            err.print(f"[red]{box_name}[/]: {escape(row.failure)}", highlight=False)
    failed = report.failed
    err.print(f"{len(report.boxes)} boxes in {report.seconds:.1f} s; ansible status "
              f"{report.status}" + (f"; [red]failed: {', '.join(failed)}[/]" if failed else ""))
    if json_output:
        print_json(report.as_json())
    if not report.ok:
        log = report.log_dir or report.run_dir / "artifacts" / "*"
        raise RemoteError(f"bootstrap failed on {', '.join(failed) or 'the run'}",
                          hint=f"see the Ansible log in {log}/stdout")
