"""`dnabox bundle build`: the packages and artifacts an air-gapped fleet needs, in one dir."""

from __future__ import annotations

from pathlib import Path
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
    stdout,
)

app = typer.Typer(help="Offline bundles for air-gapped sites.", no_args_is_help=True)

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Bundle directory (created).")]
RootfsOption = Annotated[
    Path | None,
    typer.Option("--rootfs", help="Run apt inside this Debian root filesystem (when this "
                                  "machine is not Debian bookworm), e.g. "
                                  "/var/cache/dnabox/rootfs/bookworm."),
]


@app.command("build")
@command
def build(inventory: InventoryOption = DEFAULT_INVENTORY,
          out: OutOption = Path("bundle"),
          rootfs: RootfsOption = None,
          json_output: JsonOption = False) -> None:
    """Collect every Debian package (with dependencies) and declared artifact of a fleet.

    The roles install from the bundle when the inventory says
    `artifacts: {source: offline, bundle_dir: DIR}`. An artifact a role needs but the
    fleet does not declare is an error naming it; a checksum mismatch keeps nothing.

    Example: dnabox bundle build -i inventory/smartx-playground.yaml -o /srv/dnabox-bundle
    """
    # deferred: urllib and the package catalogue, ~35 ms at every CLI start.
    from dnabox.adapters.bundle import AptPackageSource, build_bundle

    fleet = fleet_from(inventory)
    err = stderr()
    report = build_bundle(fleet, out.resolve(), source=AptPackageSource(rootfs),
                          on_progress=lambda message: err.print(f"[dim]{message}[/]"))
    if json_output:
        print_json(report.as_json())
        return
    stdout().print(f"bundle {report.directory}: {len(report.packages)} packages, "
                   f"{len(report.artifacts)} artifacts ({', '.join(report.artifacts) or '-'})")
