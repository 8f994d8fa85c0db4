"""`dnabox plan` and `dnabox up`: show what would change, then converge the fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dnabox.cli.agent import start_agent_after
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
from dnabox.plan.selection import select
from dnabox.provision.event_relay import EventRelay
from dnabox.provision.up_options import Engine, UpOptions

if TYPE_CHECKING:
    from dnabox.provision.scheduler import UnitOutcome


@command
def plan(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    cluster: ClusterOption = None,
    limit: LimitOption = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Connect to no box: plan as if every box were freshly installed.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Show per box which roles `dnabox up` would run and why, with file diffs.

    A role runs when it is new on the box, its desired state changed, or a file it
    manages drifted on the box. Reads every box once over SSH (--offline: none, every box
    taken as blank); changes nothing.

    Example: dnabox plan -i inventory/lab.yaml
    """
    # deferred: SSH (asyncssh) and the plan (jinja2) are ~0.5 s at every CLI start.
    from dnabox.provision.inspect import read_blank, read_fleet
    from dnabox.provision.plans import controller_plans

    fleet = fleet_from(inventory)
    boxes = [b.name for b in select(fleet, selection(box, site, tier, cluster, limit))]
    plans = controller_plans(fleet, locations(ctx))
    readings = (read_blank(fleet, plans, boxes) if offline
                else read_fleet(fleet, plans, with_diffs=True, boxes=boxes))
    if json_output:
        print_json({"boxes": [r.as_json() | {"diffs": r.diffs} for r in readings]})
        return
    out = stdout()
    table = Table(title=f"Plan for {fleet.name}")
    for column in ("box", "site", "tier", "state", "roles to run"):
        table.add_column(column)
    for reading in readings:
        todo = ", ".join(f"{d.role} ({d.reason})" for d in reading.decisions if d.needs_run)
        table.add_row(reading.box, reading.site, reading.tier, reading.status,
                      reading.error or todo or "-")
    out.print(table)
    for reading in readings:
        for path, diff in sorted(reading.diffs.items()):
            out.rule(f"{reading.box}: {path}")
            out.print(diff, markup=False, highlight=False)


@command
def up(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    cluster: ClusterOption = None,
    limit: LimitOption = None,
    resume: Annotated[bool, typer.Option(help="Skip units the interrupted run finished.")] = False,
    parallel: Annotated[int, typer.Option(help="Work units at once, whole fleet.")] = 16,
    per_site: Annotated[int, typer.Option(help="Work units at once within one site.")] = 8,
    forks: Annotated[int, typer.Option("--forks", "-f", help="Ansible forks per site shard; "
                                       "boxes at once on the direct path.")] = 50,
    engine: Annotated[Engine, typer.Option(
        help="auto: roles that can (base, container_runtime, ovs, cni without artifacts) "
             "run as one SSH round trip per box, the rest through ansible-playbook; "
             "ansible: every role through ansible-playbook.")] = Engine.AUTO,
    json_output: JsonOption = False,
) -> None:
    """Converge the fleet: run only the roles whose fingerprint differs, site by site.

    Preflight reads every box's stored fingerprints in one SSH round trip; roles run only
    where something changed, site shards in parallel; a failed site never stops the
    others. Both engines run the same role content: packages, templates/ and each role's
    apply script. Exit 0 when every unit converged, 1 otherwise (the summary names them).

    Example: dnabox up -i inventory/lab.yaml
    """
    # deferred: the engine (SSH, Ansible, the plan) is ~0.5 s at every CLI start.
    from dnabox.provision.engine import Provisioner

    fleet = fleet_from(inventory)
    chosen = selection(box, site, tier, cluster, limit)
    only = frozenset() if chosen.everything else frozenset(b.name for b in select(fleet, chosen))
    options = UpOptions(max_parallel=parallel, per_site=per_site, forks=forks, resume=resume,
                        only_boxes=only, engine=engine)
    renderer = renderer_for(json_output, session(ctx).verbosity, stdout())
    where = locations(ctx)
    with renderer:
        relay = EventRelay(renderer, where.fleet_state(fleet.name))  # a live `dnabox view`
        try:
            report = Provisioner(fleet, where, relay, options).up()
        finally:
            relay.close()
    if not json_output:
        _summary(report.units, report.ran, report.retries)
    start_agent_after(inventory, fleet, locations(ctx))
    if not report.ok:
        raise typer.Exit(1)


def _summary(units: dict[str, UnitOutcome], ran: dict[str, list[str]], retries: int) -> None:
    out = stdout()
    table = Table(title="Summary")
    for column in ("unit", "status", "seconds", "detail"):
        table.add_column(column)
    for unit_id, outcome in units.items():
        colour = {"failed": "red", "blocked": "red", "changed": "yellow"}.get(
            outcome.status, "green")
        table.add_row(unit_id, f"[{colour}]{outcome.status}[/]", f"{outcome.seconds:.1f}",
                      outcome.message)
    out.print(table)
    if retries:
        out.print(f"transient SSH failures retried: {retries}")
    if ran:
        out.print("roles run: " + "; ".join(f"{b}: {', '.join(r)}" for b, r in sorted(ran.items())))
