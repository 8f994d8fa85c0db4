"""`dnabox status` and `dnabox drift`: how the boxes compare with the desired state."""

from __future__ import annotations

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
    stdout,
)
from dnabox.plan.selection import select

STATE_STYLE = {"converged": "green", "pending": "yellow", "unreachable": "red"}


@command
def status(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    cluster: ClusterOption = None,
    limit: LimitOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show per box whether it is converged, pending (roles to run) or unreachable.

    One SSH round trip per box, all boxes in parallel. Exit 1 when any box is not converged.

    Example: dnabox status -i inventory/lab.yaml --json
    """
    # deferred: SSH (asyncssh) and the plan (jinja2) are ~0.5 s at every CLI start.
    from dnabox.provision.inspect import read_fleet
    from dnabox.provision.plans import controller_plans

    fleet = fleet_from(inventory)
    boxes = [b.name for b in select(fleet, selection(box, site, tier, cluster, limit))]
    readings = read_fleet(fleet, controller_plans(fleet, locations(ctx)), boxes=boxes)
    if json_output:
        print_json({"boxes": [r.as_json() for r in readings]})
    else:
        table = Table(title=f"Status of {fleet.name}")
        for column in ("box", "site", "tier", "state", "detail"):
            table.add_column(column)
        for r in readings:
            detail = r.error or ", ".join(f"{d.role} ({d.reason})" for d in r.decisions
                                          if d.needs_run)
            style = STATE_STYLE[r.status]
            table.add_row(r.box, r.site, r.tier, f"[{style}]{r.status}[/]", detail)
        stdout().print(table)
    if any(r.status != "converged" for r in readings):
        raise typer.Exit(1)


@command
def drift(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    cluster: ClusterOption = None,
    limit: LimitOption = None,
    json_output: JsonOption = False,
) -> None:
    """Compare every file dnabox manages on the boxes with its desired content.

    Prints a unified diff (box -> desired) per drifted or missing file. Exit 1 on drift.

    Example: dnabox drift -i inventory/lab.yaml
    """
    from dnabox.provision.inspect import read_fleet
    from dnabox.provision.plans import controller_plans

    fleet = fleet_from(inventory)
    boxes = [b.name for b in select(fleet, selection(box, site, tier, cluster, limit))]
    readings = read_fleet(fleet, controller_plans(fleet, locations(ctx)), with_diffs=True,
                          boxes=boxes)
    drifted = {r.box: r.diffs for r in readings if r.diffs}
    unreachable = {r.box: r.error for r in readings if r.state is None}
    if json_output:
        print_json({"drifted": drifted, "unreachable": unreachable})
    else:
        out = stdout()
        for name, diffs in sorted(drifted.items()):
            for path, diff in sorted(diffs.items()):
                out.rule(f"{name}: {path}")
                out.print(diff, markup=False, highlight=False)
        for name, error in sorted(unreachable.items()):
            out.print(f"[red]{name}: unreachable[/] {error}")
        if not drifted and not unreachable:
            out.print(f"[green]no drift[/] on {len(readings)} boxes")
    if drifted or unreachable:
        raise typer.Exit(1)
