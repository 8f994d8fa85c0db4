"""`dnabox stack`: generate the stacks' config and run preview/up/destroy on them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dnabox.adapters import pulumi as pulumi_adapter
from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    fleet_from,
    print_json,
    stdout,
)
from dnabox.errors import DnaboxError
from dnabox.layers import stack_config

app = typer.Typer(help="Pulumi stacks: one per cluster (see docs/STACKS.md).",
                  no_args_is_help=True)

ClusterOption = Annotated[
    str | None, typer.Option("--cluster", "-c", help="Only this cluster's stack.")
]
ParallelOption = Annotated[
    int, typer.Option("--parallel", "-p", min=0, help="Stacks at once (0: all).")
]


@app.command()
@command
def config(
    inventory: InventoryOption = DEFAULT_INVENTORY,
    cluster: ClusterOption = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Project directory (holds Pulumi.yaml).")
    ] = Path("."),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file differs.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Write Pulumi.<cluster>.yaml for each cluster of the fleet.

    The inventory path is stored relative to the project directory, where the program
    resolves it. --check verifies checked-in files are current (CI runs it).

    Example: dnabox stack config -i inventory/smartx-playground.yaml --check
    """
    fleet = fleet_from(inventory)
    reference = Path(os.path.relpath(inventory.resolve(), output.resolve())).as_posix()
    files = stack_config.stack_files(fleet, reference, cluster)
    stale = [name for name, text in files.items()
             if not (output / name).is_file() or (output / name).read_text() != text]
    if json_output:
        print_json({"files": files, "stale": stale} if check else files)
    if check:
        if stale:
            raise stack_config.StaleStackConfig(f"stale stack config: {', '.join(stale)}",
                              hint=f"run: dnabox stack config -i {inventory}")
        if not json_output:
            stdout().print(f"[green]up to date[/]: {', '.join(files)}")
        return
    for name, text in files.items():
        (output / name).write_text(text)
    if not json_output:
        stdout().print(f"wrote {', '.join(str(output / n) for n in files)}")


def _run(inventory: Path, cluster: str | None, operation: pulumi_adapter.Operation,
         parallel: int, json_output: bool) -> None:
    # The CLI check comes first: nothing else matters without it.
    pulumi_adapter.require_pulumi_cli()
    fleet = fleet_from(inventory)
    jobs = pulumi_adapter.plan_jobs(fleet, inventory, operation, cluster)
    outcomes = pulumi_adapter.run_stacks(jobs, parallel=parallel)
    if json_output:
        print_json([o.as_dict() for o in outcomes])
    else:
        table = Table(title=f"pulumi {operation} - {fleet.name}")
        for column in ("stack", "result", "changes", "log"):
            table.add_column(column)
        for o in outcomes:
            changes = ", ".join(f"{k} {v}" for k, v in sorted(o.changes.items())) or "-"
            result = "[green]ok[/]" if o.ok else f"[red]failed[/]\n{o.error}"
            table.add_row(o.cluster, result, changes, o.log)
        stdout().print(table)
    failed = [o.cluster for o in outcomes if not o.ok]
    if failed:
        raise DnaboxError(f"{operation} failed on {len(failed)} of {len(outcomes)} stacks: "
                          f"{', '.join(failed)}", hint="read the logs listed above")


@app.command()
@command
def preview(inventory: InventoryOption = DEFAULT_INVENTORY, cluster: ClusterOption = None,
            parallel: ParallelOption = 0, json_output: JsonOption = False) -> None:
    """Show what `up` would change on each cluster's stack, in parallel.

    Example: dnabox stack preview -i inventory/smartx-playground.yaml --cluster core
    """
    _run(inventory, cluster, "preview", parallel, json_output)


@app.command()
@command
def up(inventory: InventoryOption = DEFAULT_INVENTORY, cluster: ClusterOption = None,
       parallel: ParallelOption = 0, json_output: JsonOption = False) -> None:
    """Apply the layers (baseline, runtimes, networks, mesh) to each cluster, in parallel.

    Example: dnabox stack up -i inventory/smartx-playground.yaml
    """
    _run(inventory, cluster, "up", parallel, json_output)


@app.command()
@command
def destroy(
    inventory: InventoryOption = DEFAULT_INVENTORY,
    cluster: ClusterOption = None,
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
    _run(inventory, cluster, "destroy", parallel, json_output)
