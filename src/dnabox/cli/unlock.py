"""`dnabox unlock`: free boxes leased by a dnabox run whose controller is gone."""

from __future__ import annotations

from typing import Annotated

import typer

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
    print_json,
    selection,
    stdout,
)
from dnabox.plan.selection import select


@command
def unlock_command(
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: BoxOption = None,
    site: SiteOption = None,
    tier: TierOption = None,
    cluster: ClusterOption = None,
    limit: LimitOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Remove the leases a crashed or vanished `dnabox up` left on the boxes.

    Every `up` leases the boxes it works on (holder host, user, pid, run, expiry); another
    controller's run is refused (exit 5) until the lease is released or expires. This shows
    the holders, asks, and removes the leases. A holder on this machine whose process
    still runs is left alone. Exit 0 when every lease shown was removed, 1 otherwise.

    Example: dnabox unlock -i inventory/lab.yaml --yes
    """
    # deferred: SSH (asyncssh) is ~0.3 s at every CLI start.
    from dnabox.provision.unlock import read_leases, unlock

    fleet = fleet_from(inventory)
    names = [b.name for b in select(fleet, selection(box, site, tier, cluster, limit))]
    reading = read_leases(fleet, names)
    out = stdout()
    if not json_output:
        for name, lease in sorted(reading.leases.items()):
            note = f" [red](holder alive: {reading.alive[name]})[/]" if name in reading.alive \
                else ""
            out.print(f"{name}: leased by {lease.describe()}{note}", highlight=False)
        for name, error in sorted(reading.unreachable.items()):
            out.print(f"[red]{name}: unreachable[/] {error}", highlight=False)
    removable = [b for b in reading.leases if b not in reading.alive]
    if removable and not yes and not json_output:
        typer.confirm(f"Remove the lease on {len(removable)} box(es)?", abort=True)
    elif removable and not yes:
        raise typer.BadParameter("--json needs --yes to remove leases", param_hint="--yes")
    freed = unlock(fleet, reading) if removable else []
    if json_output:
        print_json({**reading.as_json(), "freed": freed})
    elif not reading.leases:
        out.print(f"no leases on {len(names)} boxes")
    else:
        out.print(f"freed {len(freed)} box(es)")
    if reading.alive or reading.unreachable or len(freed) != len(removable):
        raise typer.Exit(1)
