"""`dnabox dna status` and `dnabox dna publish`: read the D-N-A layer, feed it samples.

Both run the box's own ``dnabox-jetstream`` over SSH (the boxes reach NATS on the data
plane; the controller only reaches their management address): status at the hub's first
member, which reads every pond through its JetStream domain, and publish on the producer.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from dnabox.adapters.ssh import ConnectionPool
from dnabox.errors import DnaboxError, RemoteError
from dnabox.inventory.model import Fleet
from dnabox.plan.dna import DnaTopology, build_topology
from dnabox.provision.dna_service import serving_versions

TOOL = "/usr/local/sbin/dnabox-jetstream"
STREAMS = "/etc/dnabox/dna/streams.json"
CLIENT = "/etc/dnabox/dna/client.json"


class DnaNotProvisioned(DnaboxError):
    """The fleet declares no D-N-A layer, or the boxes do not have it yet."""

    exit_code = 3


@dataclass(frozen=True)
class PondStatus:
    site: str
    box: str
    dataset: str
    samples: int | None  # None: the pond is unreachable from the hub (site cut off)
    bytes: int | None
    lag: int | None  # samples in the pond not in the lake yet


@dataclass(frozen=True)
class ModelStatus:
    name: str
    version: int | None
    metric: Any
    served: dict[str, int | None]
    # Every version the hub's registry holds, oldest first.
    versions: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DnaStatus:
    ponds: list[PondStatus]
    lake_samples: int
    lake_by_site: dict[str, int]
    lake_by_dataset: dict[str, int]
    catalogue: dict[str, Any]
    models: list[ModelStatus]
    raw: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "ponds": [vars(p) for p in self.ponds],
            "lake": {"samples": self.lake_samples, "by_site": self.lake_by_site,
                     "by_dataset": self.lake_by_dataset},
            "catalogue": self.catalogue,
            "models": [vars(m) for m in self.models],
        }


def _topology(fleet: Fleet) -> DnaTopology:
    topology = build_topology(fleet)
    if topology is None or not topology.hub:
        raise DnaNotProvisioned(f"fleet {fleet.name} declares no D-N-A layer",
                                hint="add a dna: section (see docs/inventory.md) and "
                                     "run `dnabox up`")
    return topology


def _run_tool(pool: ConnectionPool, fleet: Fleet, box: str, args: str,
              timeout: float = 120) -> str:
    connection = pool.get(box, fleet.ssh_for(fleet.box(box)))
    result = connection.run(f"[ -x {TOOL} ] || exit 78; {TOOL} {args}", timeout=timeout)
    if result.rc == 78:
        raise DnaNotProvisioned(f"{box} has no D-N-A layer yet",
                                hint="run `dnabox up -i FILE` (the dna role installs it)")
    if result.rc != 0:
        raise RemoteError(f"{box}: {result.stderr.strip() or 'dnabox-jetstream failed'}")
    return result.stdout


def read_status(fleet: Fleet) -> DnaStatus:
    topology = _topology(fleet)
    with ConnectionPool() as pool:
        raw = json.loads(_run_tool(pool, fleet, topology.hub[0].box, f"status {STREAMS}"))
        serving = serving_versions(fleet, pool)
    return summarise(raw, serving)


def summarise(raw: dict[str, Any],
              serving: dict[tuple[str, str], int | None] | None = None) -> DnaStatus:
    """Turn the hub's raw stream states into the status report (pure: unit-tested).

    ``serving``: (model, site) -> the version its inference server answers with; it is what
    ``served`` reports for those sites (the registry copy's version, read through the hub,
    for a site with no inference server of the model)."""
    by_site: dict[str, int] = {}
    by_dataset: dict[str, int] = {}
    from_pond: dict[tuple[str, str], int] = {}
    for lake in raw.get("lakes", []):
        by_dataset[lake["dataset"]] = int(lake.get("messages", 0))
        for subject, count in (lake.get("subjects") or {}).items():
            parts = subject.split(".")
            if len(parts) == 4:
                by_site[parts[2]] = by_site.get(parts[2], 0) + count
                key = (lake["dataset"], parts[2])
                from_pond[key] = from_pond.get(key, 0) + count
    ponds = []
    for pond in raw.get("ponds", []):
        reachable = "error" not in pond
        samples = int(pond.get("messages", 0)) if reachable else None
        in_lake = from_pond.get((pond["dataset"], pond["site"]), 0)
        ponds.append(PondStatus(pond["site"], pond["box"], pond["dataset"], samples,
                                int(pond.get("bytes", 0)) if reachable else None,
                                max(0, samples - in_lake) if samples is not None else None))
    models = []
    for model in raw.get("models", []):
        meta = model.get("meta") or {}
        served = dict(model.get("served") or {})
        for (name, site), version in (serving or {}).items():
            if name == model["name"]:
                served[site] = version
        models.append(ModelStatus(model["name"], meta.get("version"), meta.get("metric"),
                                  served,
                                  [int(v) for v in model.get("versions") or []]))
    return DnaStatus(ponds, sum(by_dataset.values()), by_site, by_dataset,
                     dict(raw.get("catalogue") or {}), models, raw)


@dataclass(frozen=True)
class PublishReport:
    box: str
    dataset: str
    published: int
    first_seq: int
    last_seq: int
    seconds: float
    rate: float
    # Acknowledged samples whose id the pond already held within its duplicate window (a
    # re-sent range): acknowledged, not stored again.
    duplicates: int = 0

    def as_json(self) -> dict[str, Any]:
        return vars(self)


def publish(fleet: Fleet, box: str, count: int, dataset: str | None = None,
            start: int | None = None) -> PublishReport:
    """``count`` samples from ``box``'s collector, each acknowledged by its pond.

    Sample ids continue from the last one this box published (kept on the box), unless
    ``start`` is given.
    """
    topology = _topology(fleet)
    if box not in {b.name for b in fleet.boxes}:
        raise DnaboxError(f"no box {box} in fleet {fleet.name}")
    produced = sorted({p.dataset for p in topology.publishers if p.box == box})
    if not produced:
        raise DnaboxError(f"{box} produces no dataset",
                          hint="producers: " + ", ".join(sorted({p.box for p in
                                                                 topology.publishers})))
    chosen = dataset or produced[0]
    if chosen not in produced:
        raise DnaboxError(f"{box} does not produce dataset {chosen}",
                          hint=f"it produces: {', '.join(produced)}")
    if count < 1:
        raise DnaboxError("--count must be at least 1")
    seq_file = f"/var/lib/dnabox/dna/publish-{chosen}.seq"
    after_last = f"$(( $(cat {seq_file} 2>/dev/null || echo 0) + 1 ))"
    first = str(start) if start is not None else after_last
    args = f"publish {CLIENT} {shlex.quote(chosen)} {count} {first}"
    with ConnectionPool() as pool:
        connection = pool.get(box, fleet.ssh_for(fleet.box(box)))
        script = (f"[ -x {TOOL} ] || exit 78; mkdir -p /var/lib/dnabox/dna; "
                  f"out=$({TOOL} {args}) || exit $?; echo \"$out\"; "
                  f"echo \"$out\" | python3 -c 'import json,sys; "
                  f"print(json.load(sys.stdin)[\"last_seq\"])' > {seq_file}")
        result = connection.run(script, timeout=max(120.0, count / 100))
    if result.rc == 78:
        raise DnaNotProvisioned(f"{box} has no D-N-A layer yet", hint="run `dnabox up -i FILE`")
    if result.rc != 0:
        raise RemoteError(f"{box}: {result.stderr.strip() or 'publish failed'}")
    report = json.loads(result.stdout.strip().splitlines()[0])
    return PublishReport(box, chosen, int(report["published"]), int(report["first_seq"]),
                         int(report["last_seq"]), float(report["seconds"]),
                         float(report["rate"]), int(report.get("duplicates", 0)))
