"""`dnabox demo`: parse, run ``lab.demo.run_demo``, draw its steps and its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    fleet_from,
    locations,
    print_json,
    stderr,
    stdout,
)
from dnabox.cli.progress import SiteProgress

if TYPE_CHECKING:
    from dnabox.lab.demo import PlanRow, StatusRow, UpRun
    from dnabox.provision.proofs import Proof


class RichDemoView:
    """The demo's steps as rules, notes, tables and live progress bars on one console."""

    def __init__(self, console: Console) -> None:
        self.out = console

    def step(self, title: str) -> None:
        self.out.rule(title)

    def note(self, text: str) -> None:
        if text.startswith("lab: "):
            self.out.print(f"[dim]lab:[/] {text[len('lab: '):]}", highlight=False)
        else:
            self.out.print(text)

    def plan(self, rows: list[PlanRow]) -> None:
        table = Table()
        for column in ("box", "tier", "state", "roles to run"):
            table.add_column(column)
        for row in rows:
            table.add_row(row.box, row.tier, row.state, row.todo)
        self.out.print(table)

    def up(self, run: UpRun) -> None:
        self.out.print(f"{'[green]ok[/]' if run.ok else '[red]failed[/]'}: "
                       f"{run.role_runs} role runs on {run.boxes} boxes")

    def proof(self, proof: Proof) -> None:
        mark = "[green]ok[/]" if proof.ok else "[red]FAILED[/]"
        self.out.print(f"{mark} {proof.what}: {proof.detail}", highlight=False)

    def status(self, rows: list[StatusRow]) -> None:
        table = Table()
        for column in ("box", "site", "tier", "state"):
            table.add_column(column)
        for row in rows:
            colour = "green" if row.ok else "red"
            table.add_row(row.box, row.site, row.tier, f"[{colour}]{row.state}[/]")
        self.out.print(table)

    def progress(self) -> SiteProgress:
        return SiteProgress(self.out)


@command
def demo(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    keep: Annotated[bool, typer.Option(help="Leave the lab up afterwards.")] = False,
    picture: Annotated[Path, typer.Option(help="Where to write the topology.")] = Path(
        "topology.svg"),
    json_output: JsonOption = False,
) -> None:
    """Build the lab, plan, converge it for real, prove it works, then tear it down.

    Steps: validate the fleet -> build the lab boxes -> `dnabox plan` -> `dnabox up` ->
    prove (a packet across the VXLAN overlay between sites, a container started by
    containerd) -> re-run on the converged fleet -> status table -> topology picture ->
    tear down (unless --keep). Needs root. Exit 1 when a step fails. With --json the steps
    go to stderr and the report to stdout.

    Example: sudo dnabox demo --keep
    """
    # deferred: the lab, the engine and the picture are ~0.3 s at every CLI start.
    from dnabox.lab.demo import run_demo

    out = stderr() if json_output else stdout()
    report = run_demo(fleet_from(inventory), locations(ctx), RichDemoView(out),
                      picture=picture, keep=keep)
    if keep:
        out.print(f"remove the lab with `dnabox lab down -i {inventory}`")
    verdict = "[green]demo complete[/]" if report.ok else "[red]demo failed[/]"
    out.print(f"{verdict} in {report.seconds:.0f} s; topology: {picture}")
    if json_output:
        print_json(report.as_json())
    if not report.ok:
        raise typer.Exit(1)
