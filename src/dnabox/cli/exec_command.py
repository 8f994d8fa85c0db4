"""`dnabox exec`: run one command on many boxes at once."""

from __future__ import annotations

from typing import Annotated

import typer

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
    selection,
)
from dnabox.cli.exec_output import ExecPrinter, command_line
from dnabox.plan.selection import select


@command
def exec_command(
    ctx: typer.Context,
    cmd: Annotated[list[str], typer.Argument(help="The command, after `--`.")],
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    cluster: ClusterOption = None,
    limit: LimitOption = None,
    parallel: Annotated[int, typer.Option(help="Boxes at once.")] = 64,
    json_output: JsonOption = False,
) -> None:
    """Run a command on the selected boxes in parallel; output is streamed per box.

    Lines are prefixed with the box name. Exit 0 when the command succeeded everywhere,
    1 when it failed or a box was unreachable (the summary lists exit codes per box).
    Afterwards a connection agent keeps the SSH connections for the next exec
    (DNABOX_AGENT_PERSIST=<idle seconds>, default 600; 0: none; `dnabox agent stop`).

    Example: dnabox exec -i inventory/lab.yaml --tier edge -- uptime
    """
    # deferred: SSH (asyncssh) is ~0.3 s at every CLI start.
    from dnabox.provision.fanout import fan_out

    fleet = fleet_from(inventory)
    boxes = select(fleet, selection(box, site, tier, cluster, limit))
    printer = ExecPrinter([b.name for b in boxes], json_output)
    results = fan_out(fleet, boxes, command_line(cmd), printer.line, parallel=parallel)
    code = printer.finish(results)
    start_agent_after(inventory, fleet, locations(ctx))
    if code:
        raise typer.Exit(code)
