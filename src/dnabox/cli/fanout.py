"""`dnabox exec`: run one command on many boxes at once."""

from __future__ import annotations

import shlex
import sys
import threading
from typing import Annotated

import typer

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    fleet_from,
    print_json,
    stderr,
)
from dnabox.plan.selection import select_boxes
from dnabox.provision.fanout import fan_out


@command
def exec_command(
    cmd: Annotated[list[str], typer.Argument(help="The command, after `--`.")],
    inventory: InventoryOption = DEFAULT_INVENTORY,
    box: Annotated[list[str] | None, typer.Option("--box", "-b", help="Only these boxes.")] = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", "-s", help="Only these sites.")] = None,
    tier: Annotated[
        list[str] | None, typer.Option("--tier", "-t", help="core, edge or end.")] = None,
    parallel: Annotated[int, typer.Option(help="Boxes at once.")] = 64,
    json_output: JsonOption = False,
) -> None:
    """Run a command on the selected boxes in parallel; output is streamed per box.

    Lines are prefixed with the box name. Exit 0 when the command succeeded everywhere,
    1 when it failed or a box was unreachable (the summary lists exit codes per box).

    Example: dnabox exec -i inventory/lab.yaml --tier edge -- uptime
    """
    fleet = fleet_from(inventory)
    boxes = select_boxes(fleet, boxes=box, sites=site, tiers=tier)
    width = max(len(b.name) for b in boxes)
    lock = threading.Lock()
    collected: dict[str, list[str]] = {b.name: [] for b in boxes}

    def on_line(name: str, line: str) -> None:
        with lock:
            if json_output:
                collected[name].append(line)
            else:
                sys.stdout.write(f"{name:<{width}} | {line}\n")
                sys.stdout.flush()

    results = fan_out(fleet, boxes, shlex.join(cmd) if len(cmd) > 1 else cmd[0], on_line,
                      parallel=parallel)
    if json_output:
        print_json({"boxes": [{"name": r.box, "rc": r.rc, "seconds": round(r.seconds, 3),
                               "error": r.error or None, "output": collected[r.box]}
                              for r in results]})
    else:
        err = stderr()
        for r in results:
            if r.rc != 0:
                err.print(f"{r.box}: " + (f"exit {r.rc}" if r.rc is not None else r.error),
                          markup=False)
        ok = sum(1 for r in results if r.rc == 0)
        err.print(f"{ok}/{len(results)} boxes succeeded", markup=False)
    if any(r.rc != 0 for r in results):
        raise typer.Exit(1)
