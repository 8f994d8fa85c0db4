"""`dnabox dna`: the D-N-A layer (data ponds at the edge, the lake at the core, models)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    fleet_from,
    print_json,
    stdout,
)

app = typer.Typer(help="The D-N-A layer: ponds, lake, catalogue, models.",
                  no_args_is_help=True)


@app.command()
@command
def status(inventory: InventoryOption = DEFAULT_INVENTORY,
           json_output: JsonOption = False) -> None:
    """Show every pond (samples, lag to the lake), the lake per site, the catalogue and
    each model's version, metric and the version each serving edge holds.

    Read at the hub over SSH; a pond whose site is cut off shows as unreachable.

    Example: dnabox dna status -i inventory/lab.yaml --json
    """
    # deferred: SSH (asyncssh) is ~0.3 s at every CLI start.
    from dnabox.provision import dna_ops

    report = dna_ops.read_status(fleet_from(inventory))
    if json_output:
        print_json(report.as_json())
        return
    out = stdout()
    ponds = Table(title="ponds")
    for column in ("site", "box", "dataset", "samples", "lag"):
        ponds.add_column(column)
    for p in report.ponds:
        ponds.add_row(p.site, p.box, p.dataset,
                      "unreachable" if p.samples is None else str(p.samples),
                      "-" if p.lag is None else str(p.lag))
    out.print(ponds)
    by_site = ", ".join(f"{site}: {n}" for site, n in sorted(report.lake_by_site.items()))
    out.print(f"lake: {report.lake_samples} samples ({by_site or 'none yet'})")
    for m in report.models:
        served = ", ".join(f"{s}: v{v}" if v is not None else f"{s}: -"
                           for s, v in m.served.items())
        version = f"v{m.version}" if m.version is not None else "not trained"
        kept = f" ({len(m.versions)} in the registry)" if m.versions else ""
        out.print(f"model {m.name}: {version}{kept}, metric {m.metric}; served {served}")


@app.command()
@command
def publish(
    box: Annotated[str, typer.Option("--box", help="The producing box.")],
    count: Annotated[int, typer.Option("--count", help="Samples to send.")],
    dataset: Annotated[str | None, typer.Option("--dataset",
                                                help="Dataset (default: the box's first).")]
    = None,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    json_output: JsonOption = False,
) -> None:
    """Send N samples from a box's collector now; each is acknowledged by its pond.

    Sample ids are <box>:<seq>, continuing from the last run on that box.

    Example: dnabox dna publish -i inventory/lab.yaml --box end-a-1 --count 1000
    """
    from dnabox.provision import dna_ops

    report = dna_ops.publish(fleet_from(inventory), box, count, dataset)
    if json_output:
        print_json(report.as_json())
        return
    stdout().print(f"{report.box}: {report.published} {report.dataset} samples "
                   f"({report.box}:{report.first_seq}..{report.last_seq}) in "
                   f"{report.seconds:.2f} s, {report.rate:.0f}/s"
                   + (f"; {report.duplicates} the pond already held (ids sent before)"
                      if report.duplicates else ""))


ModelOption = Annotated[str, typer.Option("--model", help="The model (dna.models[].name).")]
SiteOption = Annotated[str, typer.Option("--site", help="The edge site serving the model.")]


@app.command("train")
@command
def train(model: ModelOption, inventory: InventoryOption = DEFAULT_INVENTORY,
          json_output: JsonOption = False) -> None:
    """Retrain a model now on everything the lake holds; print the new version and metric.

    Asks the model's running trainer at the core (it publishes to the registry; every
    serving edge follows). Exit 3 when the dna layer is not provisioned.

    Example: dnabox dna train -i inventory/lab.yaml --model speed
    """
    from dnabox.adapters.ssh import ConnectionPool
    from dnabox.provision import dna_service

    fleet = fleet_from(inventory)
    with ConnectionPool() as pool:
        report = dna_service.train(fleet, model, pool)
    if json_output:
        print_json(report.as_json())
        return
    metric = report.metric
    stdout().print(
        f"{report.model} v{report.version} trained on {report.box}: rmse "
        f"{metric.get('rmse')} km/h, r2 {metric.get('r2')} on {metric.get('held_out')} "
        f"held-out samples; {report.dataset_range.get('samples')} samples in the lake",
        markup=False)


@app.command("predict")
@command
def predict(model: ModelOption, site: SiteOption,
            inventory: InventoryOption = DEFAULT_INVENTORY,
            input_json: Annotated[str | None, typer.Option(
                "--input", help='Features as JSON: {"hour", "occupancy", "flow", "rain"} '
                                '(default: a rush-hour reading).')] = None,
            json_output: JsonOption = False) -> None:
    """Send one request to a site's inference server; print the answer and its model version.

    Example: dnabox dna predict -i inventory/lab.yaml --site edge-a --model speed
    --input '{"hour": 17.5, "occupancy": 0.4, "flow": 2600, "rain": 1}'
    """
    from dnabox.adapters.ssh import ConnectionPool
    from dnabox.provision import dna_service

    fleet = fleet_from(inventory)
    features = dna_service.parse_input(input_json)
    with ConnectionPool() as pool:
        report = dna_service.predict(fleet, site, model, features, pool)
    if json_output:
        print_json(report.as_json())
        return
    stdout().print(f"{report.model} v{report.version} at {report.site} ({report.box}): "
                   f"{report.prediction:.1f} km/h in {report.seconds * 1000:.0f} ms",
                   markup=False)
