"""`dnabox agent status|stop`: the connection agent that keeps SSH connections for exec."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

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
from dnabox.locations import Locations
from dnabox.provision.agent.client import start_in_background, status, stop
from dnabox.provision.agent.protocol import fleet_name_of, persist_seconds

if TYPE_CHECKING:
    from dnabox.inventory import Fleet

app = typer.Typer(
    help="The connection agent: keeps authenticated SSH connections so `dnabox exec` "
         "starts in a fraction of the time. Idle timeout: DNABOX_AGENT_PERSIST (seconds, "
         "default 600; 0 never starts one).",
    no_args_is_help=True,
)


def start_agent_after(inventory: Path, fleet: Fleet, where: Locations) -> None:
    """Start the fleet's agent in the background (exec, up); never fails the command."""
    if persist_seconds() > 0:
        with contextlib.suppress(OSError):
            start_in_background(str(inventory), str(where.ensure_fleet_state(fleet.name)))


def _agent_dir(inventory: Path, where: Locations) -> str:
    """Where the fast path looks for the agent; the full model only when the quick read fails."""
    try:
        name = fleet_name_of(inventory.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        name = None
    return str(where.fleet_state(name or fleet_from(inventory).name))


@app.command("status")
@command
def status_command(ctx: typer.Context, inventory: InventoryOption = DEFAULT_INVENTORY,
                   json_output: JsonOption = False) -> None:
    """Whether the fleet's agent runs: pid, connections, SSH handshakes, commands its kept
    shells answered (status and preflight reads, the lease), requests served.

    Exit 0 when an agent runs, 1 when none does.

    Example: dnabox agent status -i inventory/lab.yaml --json
    """
    current = status(_agent_dir(inventory, locations(ctx)))
    if json_output:
        details = {k: v for k, v in (current or {}).items() if k != "t"}
        print_json({"running": current is not None, **details})
    elif current is None:
        stdout().print("no agent running", markup=False)
    else:
        stdout().print(
            f"agent {current['pid']} for fleet {current['fleet']}: "
            f"{current['connections']} connections open, {current['handshakes']} SSH "
            f"handshakes, {current.get('kept_shell_commands', 0)} commands in kept shells, "
            f"{current['requests']} requests, idle {current['idle']}s of "
            f"{current['persist']:.0f}s", markup=False, soft_wrap=True)
    if current is None:
        raise typer.Exit(1)


@app.command("stop")
@command
def stop_command(ctx: typer.Context, inventory: InventoryOption = DEFAULT_INVENTORY) -> None:
    """Stop the fleet's agent and close its connections (exit 0 also when none ran).

    Example: dnabox agent stop -i inventory/lab.yaml
    """
    pid = stop(_agent_dir(inventory, locations(ctx)))
    stdout().print("no agent running" if pid is None else f"stopped agent {pid}", markup=False)
