"""`dnabox view`: serve the live web view of a fleet."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
from typing import Annotated

import typer

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    command,
    fleet_from,
    locations,
    stderr,
)
from dnabox.errors import DnaboxError


@command
def view(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    bind: Annotated[str, typer.Option(
        help="Address to listen on. Anything but loopback requires the token printed once "
             "at start.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).", min=0,
                                      max=65535)] = 8470,
    refresh: Annotated[float, typer.Option(
        help="Seconds between reads of the boxes' state.", min=1.0)] = 10.0,
    offline: Annotated[bool, typer.Option(
        help="Never connect to a box: show the layout and what runs report.")] = False,
) -> None:
    """Serve a live, read-only web view: topology by tier with each box's state, runs as
    they happen, box pages (roles, fingerprints, drift, facts), and the D-N-A flow.

    `dnabox up` runs of the same fleet (same state dir) appear live. Every asset ships with
    dnabox: no internet needed. JSON for other tools under /api/ (docs/VIEW.md).

    Example: dnabox view -i inventory/lab.yaml --port 8470
    """
    if bind != "localhost":
        try:
            ipaddress.ip_address(bind)
        except ValueError:
            raise DnaboxError(f"--bind {bind!r} is not an IP address",
                              hint="e.g. 127.0.0.1 (default) or 0.0.0.0") from None
    # Imported here: the web server's libraries (aiohttp) cost every other command's start
    # ~0.2 CPU-s, which a cold `dnabox status` of a fleet pays once more per run; asyncio
    # and the plan likewise.
    import asyncio

    from dnabox.provision.plans import controller_plans
    from dnabox.view.server import FleetView, ViewSettings, is_loopback, new_token, serve

    fleet = fleet_from(inventory)
    token = None if is_loopback(bind) else new_token()
    where = locations(ctx)
    # Offline nothing is compared with the boxes: no plan (minutes for a thousand boxes).
    plans = {} if offline else controller_plans(fleet, where)
    settings = ViewSettings(fleet=fleet, plans=plans,
                            state_dir=where.ensure_fleet_state(fleet.name), token=token,
                            refresh_seconds=refresh, offline=offline)

    def ready(url: str) -> None:
        err = stderr()
        err.print(f"dnabox view of {fleet.name}: {url}", highlight=False)
        if token is not None:
            # Printed once, here, for the operator: never logged or served.
            err.print(f"token (shown once): {url}?token={token}", highlight=False, soft_wrap=True)
        err.print("Ctrl-C stops it.", highlight=False)

    async def main() -> None:
        serving = asyncio.ensure_future(serve(FleetView(settings), bind, port, ready))
        # SIGTERM ends it as cleanly as Ctrl-C: the run socket is removed on the way out.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return
    except OSError as exc:
        raise DnaboxError(f"cannot listen on {bind}:{port}: {exc.strerror}",
                          hint="pick another --port, or --port 0 for any free one") from None
