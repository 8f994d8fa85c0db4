"""`dnabox lab`: real boxes on this machine, for the demo and the integration tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    fleet_from,
    locations,
    print_json,
    stderr,
    stdout,
)
from dnabox.errors import DnaboxError
from dnabox.provision.agent.client import stop as stop_agent

app = typer.Typer(help="Build, inspect and remove the local lab of boxes.",
                  no_args_is_help=True)


def _progress(message: str) -> None:
    stderr().print(f"[dim]lab:[/] {message}", highlight=False)


@app.command()
@command
def up(inventory: InventoryOption = DEFAULT_INVENTORY, json_output: JsonOption = False,
       light: Annotated[bool, typer.Option(
           help="Light boxes: the base role's packages already in the root filesystem "
                "(for fleets that skip every other role, e.g. bench/scale's thousand)."
       )] = False) -> None:
    """Bring up one box per inventory box: own netns, root filesystem, sshd and host key.

    Idempotent: running boxes are kept as they are. Needs root. The first run builds the
    root filesystem and the package repository caches (see `dnabox lab cache`).

    Example: sudo dnabox lab up -i inventory/lab.yaml
    """
    # deferred: the lab (layout, lifecycle), ~60 ms at every CLI start.
    from dnabox import lab

    fleet = fleet_from(inventory)
    report = lab.up(fleet, log=_progress, light=light)
    if json_output:
        print_json({"fleet": report.fleet, "started": report.started, "kept": report.kept,
                    "removed": report.removed, "seconds": report.seconds})
        return
    stdout().print(
        f"[green]lab {report.fleet} is up[/]: {len(report.started)} started, "
        f"{len(report.kept)} kept, {len(report.removed)} removed in {report.seconds:.1f} s"
    )


@app.command()
@command
def replace(
    box: Annotated[list[str], typer.Option("--box", help="Box to replace (repeatable).")],
    inventory: InventoryOption = DEFAULT_INVENTORY,
) -> None:
    """Swap lab boxes for "new hardware": same name and address, blank disk, new host key.

    Stands in for replacing a failed server. The lab records the new host keys in its
    known_hosts (as the operator would after verifying them); then bring the replacement
    in with `dnabox runbook run replace_box --box NAME`.

    Example: sudo dnabox lab replace -i inventory/lab.yaml --box edge-a-1
    """
    from dnabox import lab

    fleet = fleet_from(inventory)
    report = lab.replace(fleet, box, log=_progress)
    stdout().print(f"[green]replaced[/] {', '.join(box)} in {report.seconds:.1f} s")


BoxesToFreeze = Annotated[list[str], typer.Option(
    "--box", help="Box to freeze or thaw (repeatable).")]
PackageServer = Annotated[bool, typer.Option(
    "--packages", help="The lab's package server too (installs stall on it).")]
SiteArg = Annotated[str, typer.Option("--site", help="The site to cut off or restore.")]


@app.command()
@command
def freeze(box: BoxesToFreeze = [],  # noqa: B006 (typer reads the default, never mutates it)
           packages: PackageServer = False,
           inventory: InventoryOption = DEFAULT_INVENTORY) -> None:
    """Freeze boxes (a hung machine: connections open, nothing answers) or the package server.

    For fault drills and tests: hold a run at a known point, then `dnabox lab thaw`.

    Example: sudo dnabox lab freeze --box end-a-1
    """
    _set_frozen(box, packages, inventory, frozen=True)


@app.command()
@command
def partition(site: SiteArg, inventory: InventoryOption = DEFAULT_INVENTORY,
              wan: Annotated[bool, typer.Option(
                  "--wan", help="Cut the management plane too: the controller loses the "
                                "site's boxes (its WAN link is down).")] = False,
              json_output: JsonOption = False) -> None:
    """Cut a site's links to every other site in the lab's router (not management).

    The site's data and control planes, and the overlays riding them, lose every other
    site; SSH over the management plane keeps working, unless --wan cuts it too.
    Idempotent. Undo with `lab heal`.

    Example: sudo dnabox lab partition -i inventory/lab.yaml --site edge-a
    """
    from dnabox.lab import partition as lab_partition

    report = lab_partition.partition(fleet_from(inventory), site, wan=wan)
    if json_output:
        print_json(report.as_json() | {"wan": wan})
        return
    kept = "the controller cut off too" if wan else "management untouched"
    stdout().print(f"[yellow]site {site} partitioned[/] from every other site "
                   f"({len(report.pairs)} subnet pairs; {kept})")


@app.command()
@command
def thaw(box: BoxesToFreeze = [],  # noqa: B006 (typer reads the default, never mutates it)
         packages: PackageServer = False,
         inventory: InventoryOption = DEFAULT_INVENTORY) -> None:
    """Let frozen boxes (or the package server) run again.

    Example: sudo dnabox lab thaw --box end-a-1
    """
    _set_frozen(box, packages, inventory, frozen=False)


def _set_frozen(boxes: list[str], packages: bool, inventory: Path, *, frozen: bool) -> None:
    from dnabox import lab

    if not boxes and not packages:
        raise DnaboxError("name at least one --box, or --packages")
    lab.freeze(fleet_from(inventory), boxes, frozen=frozen, package_server=packages)
    what = [*boxes, *(["the package server"] if packages else [])]
    stdout().print(f"{'frozen' if frozen else 'thawed'}: {', '.join(what)}")


@app.command()
@command
def heal(site: SiteArg, inventory: InventoryOption = DEFAULT_INVENTORY,
         json_output: JsonOption = False) -> None:
    """Restore the links `lab partition` cut for a site. Idempotent.

    Example: sudo dnabox lab heal -i inventory/lab.yaml --site edge-a
    """
    from dnabox.lab import partition as lab_partition

    report = lab_partition.heal(fleet_from(inventory), site)
    if json_output:
        print_json(report.as_json())
        return
    stdout().print(f"[green]site {site} healed[/] ({report.changed} rules removed)")


@app.command()
@command
def down(ctx: typer.Context, inventory: InventoryOption = DEFAULT_INVENTORY) -> None:
    """Remove every namespace, process, link, cgroup and file the lab made.

    Works after a crashed `lab up` too. The caches stay (see `dnabox lab cache`). The
    fleet's connection agent (`dnabox agent`) stops first: its boxes are going away.

    Example: sudo dnabox lab down -i inventory/lab.yaml
    """
    from dnabox import lab

    fleet = fleet_from(inventory)
    agent = stop_agent(str(locations(ctx).fleet_state(fleet.name)))
    if agent is not None:
        _progress(f"stopped the fleet's connection agent (pid {agent})")
    removed = lab.down(fleet, log=_progress)
    stdout().print(f"lab {fleet.name} removed" if removed else f"lab {fleet.name} was not up")


@app.command()
@command
def status(inventory: InventoryOption = DEFAULT_INVENTORY,
           json_output: JsonOption = False) -> None:
    """Show each box of the lab: running, starting, stopped or absent.

    Example: dnabox lab status --json
    """
    from dnabox import lab

    fleet = fleet_from(inventory)
    boxes = lab.status(fleet)
    if json_output:
        print_json({"boxes": [{"name": b.name, "site": b.site, "address": b.address,
                               "state": b.state} for b in boxes]})
        return
    table = Table(title=f"Lab {fleet.name}")
    for column in ("box", "site", "address", "state"):
        table.add_column(column)
    for box in boxes:
        table.add_row(box.name, box.site, box.address, box.state)
    stdout().print(table)


@app.command()
@command
def ssh(
    box: Annotated[str, typer.Argument(help="Box name.")],
    remote: Annotated[list[str] | None, typer.Argument(help="Command to run (after --).")] = None,
    inventory: InventoryOption = DEFAULT_INVENTORY,
) -> None:
    """Open a shell on a box, or run a command, with the lab's key and strict host keys.

    Example: dnabox lab ssh core-1 -- hostname
    """
    from dnabox import lab

    fleet = fleet_from(inventory)
    names = [b.name for b in fleet.boxes]
    if box not in names:
        raise DnaboxError(f"no box {box} in {inventory}", hint=f"boxes: {', '.join(names)}")
    paths = lab.LabPaths()
    target = fleet.box(box)
    argv = lab.ssh_argv(
        key=paths.private_key(fleet.name), known_hosts=paths.known_hosts(fleet.name),
        user=fleet.ssh_for(target).user, address=str(target.address),
        port=fleet.ssh_for(target).port, command=remote or [],
    )
    if not paths.known_hosts(fleet.name).exists():
        raise DnaboxError(f"the lab of fleet {fleet.name} is not up",
                          hint=f"sudo dnabox lab up -i {inventory}")
    sys.stdout.flush()
    raise typer.Exit(subprocess.run(argv, check=False).returncode)


@app.command()
@command
def cache(inventory: InventoryOption = DEFAULT_INVENTORY) -> None:
    """Build the lab's caches if missing: a Debian root filesystem and a package repository
    for each Debian release the fleet's boxes run (bookworm, trixie).

    The repository holds every package the bootstrap roles install, with dependencies.
    Needs the Debian mirror once; `lab up` builds missing caches itself.

    Example: sudo dnabox lab cache -i inventory/lab.yaml
    """
    from dnabox import lab

    for release in lab.cache(fleet_from(inventory), log=_progress):
        stdout().print(f"{release.suite}: root filesystem {release.rootfs}, "
                       f"package repository {release.repo}")
