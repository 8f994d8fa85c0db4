"""`dnabox inventory`: validate, show and draw a fleet description."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    error_document,
    fleet_from,
    print_json,
    stdout,
)
from dnabox.errors import InventoryError
from dnabox.plan.topology import COLLAPSE_ABOVE

if TYPE_CHECKING:
    from dnabox.inventory import Fleet

app = typer.Typer(help="Validate, show and draw fleet descriptions.", no_args_is_help=True)

FileArgument = Annotated[Path | None, typer.Argument(
    help="Fleet description (YAML); the same as -i FILE.", show_default=False)]


def _fleet_file(file: Path | None, inventory: Path) -> Path:
    """The positional FILE where given (as before), else -i/--inventory/$DNABOX_INVENTORY."""
    return file if file is not None else inventory


@app.command()
@command
def validate(file: FileArgument = None, inventory: InventoryOption = DEFAULT_INVENTORY,
             json_output: JsonOption = False) -> None:
    """Check a fleet file; list every problem with its file, line and field.

    Exit 0 when valid, 4 when not. Nothing is changed either way. With --json, an
    invalid file prints {"valid": false, "problems": [{file, line, field, message}]} (and
    the usual error document's "ok": false and "error").

    Example: dnabox inventory validate inventory/smartx-playground.yaml
    """
    # deferred: the role plan is ~0.1 s at every CLI start.
    from dnabox.inventory.yaml_source import read_yaml
    from dnabox.plan.artifacts import architecture_findings

    file = _fleet_file(file, inventory)
    try:
        fleet = fleet_from(file)
        # Per-architecture artifacts need the role plan: checked here, not in the model.
        findings = architecture_findings(fleet)
        if findings:
            doc = read_yaml(Path(fleet.source))
            raise InventoryError([doc.problem(path, message) for path, message in findings])
    except InventoryError as exc:
        if json_output:
            print_json({"file": str(file), "valid": False, **exc.as_json(),
                        **error_document(exc)})
        raise
    if json_output:
        print_json({"ok": True, "file": str(file), "valid": True, "sites": len(fleet.sites),
                    "boxes": len(fleet.boxes), "clusters": len(fleet.clusters)})
        return
    stdout().print(
        f"[green]valid[/]: {escape(str(file))} - {len(fleet.sites)} sites, "
        f"{len(fleet.boxes)} boxes, {len(fleet.clusters)} clusters, {len(fleet.overlays)} overlays",
        soft_wrap=True,
    )


@app.command()
@command
def show(file: FileArgument = None, inventory: InventoryOption = DEFAULT_INVENTORY,
         json_output: JsonOption = False) -> None:
    """Show the sites, boxes and clusters of a fleet as tables (or JSON).

    Example: dnabox inventory show inventory/lab.yaml --json
    """
    fleet = fleet_from(_fleet_file(file, inventory))
    if json_output:
        print_json(fleet.model_dump(mode="json"))
        return
    out = stdout()
    for table in (_sites_table(fleet), _boxes_table(fleet), _clusters_table(fleet),
                  _files_table(fleet)):
        if table.row_count:
            out.print(table)


def _sites_table(fleet: Fleet) -> Table:
    table = Table(title=f"Sites of {fleet.name}")
    for column in ("site", "tier", "region", "boxes"):
        table.add_column(column)
    for site in fleet.sites:
        count = sum(1 for b in fleet.boxes if b.site == site.name)
        # Free text from the file: shown as written, never read as Rich markup.
        table.add_row(site.name, site.tier, Text(site.region), str(count))
    return table


def _boxes_table(fleet: Fleet) -> Table:
    table = Table(title="Boxes")
    for column in ("box", "site", "tier", "size", "address", "planes", "cluster"):
        table.add_column(column)
    for box in fleet.boxes:
        cluster = fleet.cluster_of(box.name)
        role = ""
        if cluster is not None:
            role = f"{cluster.name} ({'cp' if box.name in cluster.control_planes else 'worker'})"
        planes = ", ".join(f"{p}={i.address}" for p, i in box.interfaces.items())
        table.add_row(box.name, box.site, fleet.tier_of(box), box.size, str(box.address),
                      planes, role)
    return table


def _clusters_table(fleet: Fleet) -> Table:
    table = Table(title="Clusters")
    for column in ("cluster", "distribution", "control planes", "workers", "runtimes", "mesh"):
        table.add_column(column)
    for cluster in fleet.clusters:
        table.add_row(cluster.name, f"{cluster.distribution} {cluster.kubernetes_version}",
                      ", ".join(cluster.control_planes), ", ".join(cluster.workers),
                      ", ".join(cluster.runtimes), cluster.mesh)
    return table


def _files_table(fleet: Fleet) -> Table:
    """The files the fleet points to, as resolved (relative paths are relative to the
    fleet file), and whether they exist here."""
    from dnabox.inventory.paths import path_fields
    from dnabox.inventory.yaml_source import format_path

    table = Table(title="Files")
    table.add_column("field")
    table.add_column("path", overflow="fold")  # a cut path is a wrong path
    table.add_column("here")
    for where, _what, path in path_fields(fleet):
        table.add_row(format_path(where), Text(path),
                      "found" if Path(path).exists() else "missing")
    return table


@app.command()
@command
def graph(
    file: FileArgument = None,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Picture to write: .svg, .png or .dot.")
    ] = Path("topology.svg"),
    expand: Annotated[
        list[str] | None,
        typer.Option("--expand", metavar="SITE",
                     help="Draw this site's boxes even above the threshold (repeatable)."),
    ] = None,
    collapse_above: Annotated[
        int, typer.Option(min=0, help="Draw a site of more boxes as one node with counts.")
    ] = COLLAPSE_ABOVE,
) -> None:
    """Draw the fleet by tier: sites, boxes, clusters, planes and overlay links.

    Core sites on top, edge sites in the middle, end devices below; Kubernetes clusters as
    dashed outlines, planes as badges on each box, overlays as site-to-site links with
    their tunnel counts, and a legend. A site of more than --collapse-above boxes is one
    node with counts; --expand SITE opens it. SVG elements carry stable ids (box-NAME,
    site-NAME) for a live view: see docs/CONCEPTS.md.

    Example: dnabox inventory graph inventory/smartx-playground.yaml -o topology.png
    """
    from dnabox.adapters.graphviz import render, topology_dot
    from dnabox.plan.topology import topology_view

    fleet = fleet_from(_fleet_file(file, inventory))
    view = topology_view(fleet, collapse_above=collapse_above, expand=expand or ())
    render(topology_dot(view), output)
    stdout().print(f"wrote {output}", markup=False, soft_wrap=True)
