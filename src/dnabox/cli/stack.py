"""`dnabox stack`: generate the stacks' config and run preview/up/destroy on them."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
from dnabox.errors import EXIT_FAILED, DnaboxError

if TYPE_CHECKING:
    from dnabox.adapters import pulumi as pulumi_adapter

app = typer.Typer(help="Pulumi stacks: one per cluster, named <fleet>-<cluster> "
                       "(see docs/STACKS.md).",
                  no_args_is_help=True)

StackClusterOption = Annotated[
    str | None, typer.Option("--cluster", "-c", help="Only this cluster's stack.")
]
ParallelOption = Annotated[
    int, typer.Option("--parallel", "-p", min=0, help="Stacks at once (0: all).")
]


@app.command()
@command
def config(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    cluster: StackClusterOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Project directory (holds Pulumi.yaml; "
                                  "default: the fleet repo).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file differs.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Write the dnabox keys of Pulumi.<fleet>-<cluster>.yaml for each cluster of the fleet.

    Only dnabox:inventory, dnabox:cluster and dnabox:kubeconfig are written; every other
    key of an existing file (encryptionsalt, secretsprovider, your own config) is kept. The
    inventory path is stored relative to the project directory, where the program resolves
    it. --check verifies checked-in files are current (CI runs it).

    Example: dnabox stack config -i inventory/smartx-playground.yaml --check
    """
    # deferred: the stacks' config and the Pulumi adapter cost every other command's start.
    from dnabox.layers import stack_config

    fleet = fleet_from(inventory)
    project = output or locations(ctx).project
    reference = Path(os.path.relpath(inventory.resolve(), project.resolve())).as_posix()
    files = stack_config.stack_files(fleet, reference, project, cluster)
    stale = [f.name for f in files if not f.current]
    if json_output:
        print_json({"files": {f.name: f.text for f in files}, "stale": stale})
    if check:
        if stale:
            raise stack_config.StaleStackConfig(f"stale stack config: {', '.join(stale)}",
                              hint=f"run: dnabox stack config -i {inventory}")
        if not json_output:
            stdout().print(f"[green]up to date[/]: {', '.join(f.name for f in files)}")
        return
    for f in files:
        if not f.current:
            (project / f.name).write_text(f.text, encoding="utf-8")
    if not json_output:
        written = [str(project / f.name) for f in files if not f.current]
        stdout().print(f"wrote {', '.join(written)}" if written else
                       f"up to date: {', '.join(f.name for f in files)}", soft_wrap=True)


def _run(ctx: typer.Context, inventory: Path, cluster: str | None,
         operation: pulumi_adapter.Operation, parallel: int,
         json_output: bool) -> list[pulumi_adapter.StackOutcome]:
    from dnabox.adapters import pulumi as pulumi_adapter

    # The CLI check comes first: nothing else matters without it.
    pulumi_adapter.require_pulumi_cli()
    fleet = fleet_from(inventory)
    jobs = pulumi_adapter.plan_jobs(fleet, inventory, operation, locations(ctx), cluster)
    outcomes = pulumi_adapter.run_stacks(jobs, parallel=parallel)
    if json_output:
        print_json({"ok": all(o.ok for o in outcomes),
                    "stacks": [o.as_dict() for o in outcomes]})
    else:
        table = Table(title=f"pulumi {operation} - {fleet.name}")
        for column in ("stack", "result", "changes", "log"):
            table.add_column(column)
        for o in outcomes:
            changes = ", ".join(f"{k} {v}" for k, v in sorted(o.changes.items())) or "-"
            result = "[green]ok[/]" if o.ok else f"[red]failed[/]\n{o.error}"
            table.add_row(o.stack or o.cluster, result, changes, o.log)
        stdout().print(table)
    failed = [o.stack or o.cluster for o in outcomes if not o.ok]
    if failed:
        raise StackFailed(f"{operation} failed on {len(failed)} of {len(outcomes)} stacks: "
                          f"{', '.join(failed)}", hint="read the logs listed above")
    return outcomes


def can_ask() -> bool:
    """A person at a terminal can answer the question before `up` applies."""
    return sys.stdin.isatty()


class StackFailed(DnaboxError):
    """A stack operation failed (its log says why)."""

    exit_code = EXIT_FAILED


@app.command()
@command
def preview(ctx: typer.Context, inventory: InventoryOption = DEFAULT_INVENTORY,
            cluster: StackClusterOption = None, parallel: ParallelOption = 0,
            json_output: JsonOption = False) -> None:
    """Show what `up` would change on each cluster's stack, in parallel.

    Example: dnabox stack preview -i inventory/smartx-playground.yaml --cluster core
    """
    _run(ctx, inventory, cluster, "preview", parallel, json_output)


@app.command()
@command
def up(ctx: typer.Context, inventory: InventoryOption = DEFAULT_INVENTORY,
       cluster: StackClusterOption = None, parallel: ParallelOption = 0,
       yes: Annotated[bool, typer.Option("--yes", help="Apply without the preview and the "
                                         "question (CI).")] = False,
       json_output: JsonOption = False) -> None:
    """Preview each cluster's stack, ask, then apply the layers (baseline, runtimes,
    networks, mesh), stacks in parallel.

    Without --yes the preview is shown first and nothing is applied unless you answer yes
    (a non-interactive run without --yes stops after the preview).

    Example: dnabox stack up -i inventory/smartx-playground.yaml --yes
    """
    if not yes:
        if json_output:
            raise DnaboxError("--json cannot ask before applying", hint="add --yes")
        _run(ctx, inventory, cluster, "preview", parallel, json_output)
        if not can_ask():
            raise DnaboxError("not applied: the preview needs an answer and there is no "
                              "terminal to ask", hint="add --yes to apply without asking")
        if not typer.confirm("Apply these changes?", default=False):
            stdout().print("not applied")
            return
    _run(ctx, inventory, cluster, "up", parallel, json_output)


@app.command()
@command
def destroy(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    cluster: StackClusterOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm the destruction.")] = False,
    parallel: ParallelOption = 0,
    json_output: JsonOption = False,
) -> None:
    """Delete every resource the stacks created (nodes only lose their labels/taints).

    Example: dnabox stack destroy -i inventory/lab.yaml --cluster edge --yes
    """
    if not yes:
        raise DnaboxError("destroy removes every layer from the selected clusters",
                          hint="add --yes to confirm")
    _run(ctx, inventory, cluster, "destroy", parallel, json_output)
