"""`dnabox locations`: where this dnabox finds its assets and keeps a fleet's state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnabox.cli.common import (
    INVENTORY_ENV,
    JsonOption,
    command,
    fleet_from,
    locations,
    print_json,
    stdout,
)


@command
def show_locations(
    ctx: typer.Context,
    inventory: Annotated[Path | None, typer.Option(
        "--inventory", "-i", envvar=INVENTORY_ENV,
        help="Fleet description (YAML): adds the fleet's own dirs.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Show the project (fleet repo), the state dir, the shipped playbooks and templates and,
    with -i, the fleet's state dir. Reads nothing on the boxes.

    Example: dnabox locations -i inventory/lab.yaml --json
    """
    where = locations(ctx)
    fleet_state = str(where.fleet_state(fleet_from(inventory).name)) if inventory else None
    values = {"project": str(where.project), "assets": str(where.assets),
              "state": str(where.state), "fleet_state": fleet_state,
              "on_box_state": where.on_box_state}
    if json_output:
        print_json(values)
        return
    out = stdout()
    for key, value in values.items():
        if value is not None:
            out.print(f"{key:<13} {value}", markup=False, soft_wrap=True)
