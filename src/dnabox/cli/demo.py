"""`dnabox demo`: the whole toolkit on the built-in lab, from nothing to proven and back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dnabox import lab
from dnabox.adapters.graphviz import render
from dnabox.adapters.ssh import ConnectionPool
from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    command,
    fleet_from,
    locations,
    stdout,
)
from dnabox.cli.progress import SiteProgress
from dnabox.inventory.model import Fleet
from dnabox.locations import Locations
from dnabox.plan.desired import plan_fleet
from dnabox.plan.topology import topology_dot
from dnabox.provision.engine import Provisioner
from dnabox.provision.inspect import read_fleet
from dnabox.provision.proofs import container_run, cross_site_pairs, overlay_ping


@command
def demo(
    ctx: typer.Context,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    keep: Annotated[bool, typer.Option(help="Leave the lab up afterwards.")] = False,
    picture: Annotated[Path, typer.Option(help="Where to write the topology.")] = Path(
        "topology.svg"),
) -> None:
    """Build the lab, plan, converge it for real, prove it works, then tear it down.

    Steps: validate the fleet -> build the lab boxes -> `dnabox plan` -> `dnabox up` ->
    prove (a packet across the VXLAN overlay between sites, a container started by
    containerd) -> re-run on the converged fleet -> status table -> topology picture ->
    tear down (unless --keep). Needs root. Exit 1 when a step fails.

    Example: sudo dnabox demo --keep
    """
    out = stdout()
    fleet = fleet_from(inventory)
    where = locations(ctx)
    started = time.monotonic()

    out.rule(f"1/7 fleet {fleet.name}: {len(fleet.sites)} sites, {len(fleet.boxes)} boxes")
    render(topology_dot(fleet), picture)
    out.print(f"topology written to {picture}")

    out.rule("2/7 build the lab (namespaces, own rootfs, sshd, host keys)")
    report = lab.up(fleet, log=lambda m: out.print(f"[dim]lab:[/] {m}", highlight=False))
    out.print(f"{len(report.started)} boxes started, {len(report.kept)} kept "
              f"in {report.seconds:.1f} s")
    failed = False
    try:
        out.rule("3/7 plan: what `dnabox up` will do and why")
        plans = plan_fleet(fleet, where)
        table = Table()
        for column in ("box", "tier", "state", "roles to run"):
            table.add_column(column)
        for reading in read_fleet(fleet, plans):
            todo = ", ".join(f"{d.role} ({d.reason})" for d in reading.decisions if d.needs_run)
            table.add_row(reading.box, reading.tier, reading.status, reading.error or todo or "-")
        out.print(table)

        out.rule("4/7 dnabox up: converge every box, sites in parallel")
        first = _up(fleet, where, out)
        failed |= not first

        out.rule("5/7 prove it works")
        failed |= not _prove(fleet, out)

        out.rule("6/7 re-run on the converged fleet (one SSH round trip per box)")
        began = time.monotonic()
        failed |= not _up(fleet, where, out)
        out.print(f"converged re-run took {time.monotonic() - began:.1f} s")

        out.rule("7/7 status")
        table = Table()
        for column in ("box", "site", "tier", "state"):
            table.add_column(column)
        for reading in read_fleet(fleet, plans):
            colour = "green" if reading.status == "converged" else "red"
            failed |= reading.status != "converged"
            table.add_row(reading.box, reading.site, reading.tier,
                          f"[{colour}]{reading.status}[/]")
        out.print(table)
    finally:
        if keep:
            out.print(f"lab left up (--keep); remove it with `dnabox lab down -i {inventory}`")
        else:
            out.rule("tear down")
            lab.down(fleet)
            out.print("lab removed")
    verdict = "[red]demo failed[/]" if failed else "[green]demo complete[/]"
    out.print(f"{verdict} in {time.monotonic() - started:.0f} s; topology: {picture}")
    if failed:
        raise typer.Exit(1)


def _up(fleet: Fleet, where: Locations, out: Console) -> bool:
    with SiteProgress(out) as progress:
        report = Provisioner(fleet, where, progress).up()
    ran = sum(len(r) for r in report.ran.values())
    out.print(f"{'[green]ok[/]' if report.ok else '[red]failed[/]'}: "
              f"{ran} role runs on {len(report.ran)} boxes")
    return report.ok


def _prove(fleet: Fleet, out: Console) -> bool:
    ok = True
    with ConnectionPool() as pool:
        proofs = [overlay_ping(fleet, pool, src, dst, overlay)
                  for src, dst, overlay in cross_site_pairs(fleet)]
        container_box = next((b for b in fleet.boxes if fleet.tier_of(b) == "edge"),
                             fleet.boxes[0])
        proofs.append(container_run(fleet, pool, container_box))
    for proof in proofs:
        mark = "[green]ok[/]" if proof.ok else "[red]FAILED[/]"
        out.print(f"{mark} {proof.what}: {proof.detail}", highlight=False)
        ok &= proof.ok
    return ok
