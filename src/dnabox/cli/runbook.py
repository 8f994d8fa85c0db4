"""`dnabox runbook`: list, show and run day-2 runbooks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
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
    session,
    stdout,
)
from dnabox.cli.progress import renderer_for

app = typer.Typer(help="Day-2 runbooks: add/replace a box, drain, rolling upgrades, "
                       "diagnostics.", no_args_is_help=True)


@app.command("list")
@command
def list_runbooks(json_output: JsonOption = False) -> None:
    """List the runbooks.

    Example: dnabox runbook list
    """
    # deferred: the runbooks load the engine (SSH, Ansible, the plan): ~0.5 s at every
    # CLI start.
    from dnabox.provision import runbooks

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
    from dnabox.provision import runbooks

    spec = runbooks.spec(name)
    out = stdout()
    out.print(f"[bold]{spec.name}[/]: {spec.summary}\n\n{spec.details}")
    if spec.options:
        out.print("options: " + ", ".join("--" + o.replace("_", "-") for o in spec.options))
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
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    cluster: ClusterOption = None,
    limit: LimitOption = None,
    role: Annotated[str | None, typer.Option(
        help="rolling_upgrade: the role [default: container_runtime].")] = None,
    max_unavailable: Annotated[int | None, typer.Option(
        help="rolling_upgrade, k8s_upgrade: boxes (workers) of one site upgraded at once "
             "[default: 1].")] = None,
    resume: Annotated[bool, typer.Option(
        help="rolling_upgrade, k8s_upgrade, replace_control_plane: continue an interrupted "
             "run.")] = False,
    to: Annotated[str | None, typer.Option(
        help="k8s_upgrade: the Kubernetes minor to move to.")] = None,
    old: Annotated[str | None, typer.Option(
        help="replace_control_plane: the failed control plane's name.")] = None,
    drain_timeout: Annotated[str | None, typer.Option(
        help="k8s_upgrade: how long a drain may wait for PodDisruptionBudgets "
             "[default: 300s].")] = None,
    patch: Annotated[str | None, typer.Option(
        help="k8s_upgrade: the patch release of the new artifacts (v<to>.<patch>) "
             "[default: 0].")] = None,
    force: Annotated[bool, typer.Option(help="replace_box: rebuild even if it answers.")] = False,
    dest: Annotated[Path | None, typer.Option(
        help="collect_diagnostics: where tarballs go [default: diagnostics].")] = None,
    json_output: JsonOption = False,
) -> None:
    """Run a runbook on the selected boxes (all boxes when none is selected).

    Each runbook takes only its own options (see `dnabox runbook show NAME`); another is
    refused. --cluster selects boxes like everywhere else, and for k8s_upgrade (all clusters
    when none) and replace_control_plane it names the cluster the runbook works on.

    Examples:
      dnabox runbook run add_box -i inventory/lab.yaml --box edge-a-2
      dnabox runbook run rolling_upgrade --role container_runtime --max-unavailable 1
      dnabox runbook run collect_diagnostics --site edge-a --dest ./diag
      dnabox runbook run k8s_upgrade -i fleet.yaml --to 1.37 --cluster core --max-unavailable 2
      dnabox runbook run replace_control_plane -i fleet.yaml --cluster core --old core-2 \
          --box core-4
    """
    from dnabox.provision import runbooks

    # An unknown name is refused before the inventory is read.
    takes_cluster = "cluster" in runbooks.spec(name).options
    options = runbooks.RunbookOptions(
        role=role, max_unavailable=max_unavailable, resume=resume, force=force, dest=dest,
        to=to, cluster=tuple(cluster) if cluster and takes_cluster else None, old=old,
        drain_timeout=drain_timeout, patch=patch)
    chosen = selection(box, site, tier, None if takes_cluster else cluster, limit)
    renderer = renderer_for(json_output, session(ctx).verbosity, stdout())
    with renderer:
        context = runbooks.RunbookContext(fleet_from(inventory), locations(ctx), renderer)
        report = runbooks.run_runbook(context, name, chosen, options=options)
    if json_output:
        print_json(report.as_json())
    else:
        colour = "green" if report.ok else "red"
        stdout().print(f"[{colour}]{report.name}: {report.message}[/]")
    if not report.ok:
        raise typer.Exit(1)
