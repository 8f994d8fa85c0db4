"""`dnabox runbook`: list, show and run day-2 runbooks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    fleet_from,
    locations,
    print_json,
    stdout,
)
from dnabox.cli.progress import JsonLines, SiteProgress
from dnabox.errors import DnaboxError
from dnabox.plan.selection import select_boxes
from dnabox.provision import runbooks

app = typer.Typer(help="Day-2 runbooks: add/replace a box, drain, rolling upgrades, "
                       "diagnostics.", no_args_is_help=True)


@app.command("list")
@command
def list_runbooks(json_output: JsonOption = False) -> None:
    """List the runbooks.

    Example: dnabox runbook list
    """
    if json_output:
        print_json({"runbooks": [{"name": s.name, "summary": s.summary}
                                 for s in runbooks.RUNBOOKS.values()]})
        return
    table = Table(title="Runbooks")
    table.add_column("name")
    table.add_column("what it does")
    for spec in runbooks.RUNBOOKS.values():
        table.add_row(spec.name, spec.summary)
    stdout().print(table)


@app.command()
@command
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Runbook name.")]) -> None:
    """Explain one runbook and show its playbook.

    Example: dnabox runbook show rolling_upgrade
    """
    spec = runbooks.spec(name)
    out = stdout()
    out.print(f"[bold]{spec.name}[/]: {spec.summary}\n\n{spec.details}")
    if spec.playbook:
        where = locations(ctx)
        path = where.runbooks / spec.playbook
        out.rule(str(path.relative_to(where.assets)))
        out.print(path.read_text(encoding="utf-8"), markup=False, highlight=False)


@app.command()
@command
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Runbook name (see `dnabox runbook list`).")],
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: Annotated[list[str] | None, typer.Option("--box", "-b", help="Target boxes.")] = None,
    site: Annotated[list[str] | None, typer.Option("--site", "-s", help="Target sites.")] = None,
    tier: Annotated[list[str] | None, typer.Option("--tier", "-t", help="Target tiers.")] = None,
    role: Annotated[str, typer.Option(help="rolling_upgrade: the role.")] = "container_runtime",
    max_unavailable: Annotated[int, typer.Option(
        help="rolling_upgrade: boxes of one site upgraded at once.")] = 1,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = False,
    force: Annotated[bool, typer.Option(help="replace_box: rebuild even if it answers.")] = False,
    dest: Annotated[Path, typer.Option(help="collect_diagnostics: where tarballs go.")] = Path(
        "diagnostics"),
    json_output: JsonOption = False,
) -> None:
    """Run a runbook on the selected boxes (all boxes when none is selected).

    Examples:
      dnabox runbook run add_box -i inventory/lab.yaml --box edge-a-2
      dnabox runbook run rolling_upgrade --role container_runtime --max-unavailable 1
      dnabox runbook run collect_diagnostics --site edge-a --dest ./diag
    """
    spec = runbooks.spec(name)
    fleet = fleet_from(inventory)
    if name in {"add_box", "replace_box"} and not box:
        raise DnaboxError(f"{name} needs --box NAME", hint="name the box from the inventory")
    targets = select_boxes(fleet, boxes=box, sites=site, tiers=tier)
    renderer = JsonLines() if json_output else SiteProgress(stdout())
    with renderer:
        context = runbooks.RunbookContext(fleet, locations(ctx), renderer)
        if spec.name == "add_box":
            report = runbooks.add_box(context, targets)
        elif spec.name == "replace_box":
            report = runbooks.replace_box(context, targets, force=force)
        elif spec.name == "rolling_upgrade":
            report = runbooks.rolling_upgrade(
                context, targets, role=role, max_unavailable=max_unavailable, resume=resume,
                verify=runbooks.ssh_verifier(context, role))
        elif spec.name == "collect_diagnostics":
            dest.mkdir(parents=True, exist_ok=True)
            report = runbooks.simple(context, name, targets,
                                     {"diagnostics_dest": str(dest.resolve())})
        else:
            report = runbooks.simple(context, name, targets)
    if json_output:
        print_json({"runbook": report.name, "ok": report.ok, "message": report.message,
                    "batches": report.batches, "ran": report.ran})
    else:
        colour = "green" if report.ok else "red"
        stdout().print(f"[{colour}]{report.name}: {report.message}[/]")
    if not report.ok:
        raise typer.Exit(1)
