"""``dnabox dna train`` and ``dnabox dna predict``: one request to the running service.

Both go over SSH to the box the plan puts the service on and talk to it there, on the
D-N-A network the controller may not reach: ``train`` asks the running trainer over NATS
(the trainer's own program, ``--request``), ``predict`` POSTs to the inference server's
data-plane address with the box's python3. A service that does not answer is reported as
"not provisioned" with the command that provisions it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from dnabox.adapters.ssh import ConnectionPool
from dnabox.dna.service.samples import check_features
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.plan import dna_container, dna_services
from dnabox.plan.dna import DnaTopology, Service, build_topology

DEFAULT_FEATURES = {"hour": 8.0, "occupancy": 0.3, "flow": 2400.0, "rain": 0}
TRAIN_TIMEOUT = 300.0
PROVISION_HINT = "dnabox up -i {inventory} provisions the dna layer; dnabox dna status shows it"


class DnaNotProvisioned(DnaboxError):
    """The fleet declares the layer, but the service is not there (yet)."""

    exit_code = 3


@dataclass(frozen=True)
class TrainReport:
    model: str
    box: str
    version: int
    metric: dict[str, Any]
    dataset_range: dict[str, Any]
    trained_at: float

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "box": self.box, "version": self.version,
                "metric": self.metric, "dataset_range": self.dataset_range,
                "trained_at": self.trained_at}


@dataclass(frozen=True)
class PredictReport:
    model: str
    site: str
    box: str
    features: dict[str, float]
    prediction: float
    version: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "site": self.site, "box": self.box,
                "features": self.features, "prediction": self.prediction,
                "version": self.version, "seconds": self.seconds}


def topology_of(fleet: Fleet) -> DnaTopology:
    topology = build_topology(fleet)
    if topology is None:
        raise DnaboxError(f"fleet {fleet.name} declares no dna: section",
                          hint="declare datasets, the lake and models under dna: "
                               "(docs/inventory.md)")
    return topology


def _hint(fleet: Fleet) -> str:
    return PROVISION_HINT.format(inventory=fleet.source or "FILE")


def trainer_of(fleet: Fleet, topology: DnaTopology, model: str) -> Service:
    trainers = {s.model: s for s in topology.services if s.role == "trainer"}
    if model not in trainers:
        raise DnaboxError(f"fleet {fleet.name} has no model {model!r}",
                          hint=f"models: {', '.join(sorted(trainers)) or 'none'}")
    return trainers[model]


def server_of(fleet: Fleet, topology: DnaTopology, model: str, site: str) -> Service:
    trainer_of(fleet, topology, model)
    serving = {s.site: s for s in topology.services
               if s.role == "inference" and s.model == model}
    if site not in serving:
        raise DnaboxError(f"model {model} is not served at site {site!r}",
                          hint=f"it is served at: {', '.join(sorted(serving)) or 'no site'}")
    return serving[site]


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            loaded = json.loads(line)
        except ValueError:
            continue
        if isinstance(loaded, dict):
            return loaded
    return None


def train(fleet: Fleet, model: str, pool: ConnectionPool) -> TrainReport:
    """Ask the model's running trainer to train on the lake now; its answer."""
    topology = topology_of(fleet)
    service = trainer_of(fleet, topology, model)
    config = shlex.quote(dna_services.config_file(service))
    request = shlex.join(dna_container.host_argv(
        service, "--request", "--timeout", f"{TRAIN_TIMEOUT:g}"))
    script = f"[ -f {config} ] || {{ echo 'no-config'; exit 0; }}\n{request}\n"
    box = fleet.box(service.box)
    result = pool.get(box.name, fleet.ssh_for(box)).run(script, timeout=TRAIN_TIMEOUT + 60)
    if result.stdout.strip() == "no-config":
        raise DnaNotProvisioned(f"the trainer of {model} is not provisioned on {box.name}",
                                hint=_hint(fleet))
    answer = _last_json(result.stdout)
    if answer is None:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DnaboxError(f"the trainer of {model} on {box.name} failed: {tail}",
                          hint=_hint(fleet))
    if "error" in answer:
        error = str(answer["error"])
        kind = DnaNotProvisioned if "is the dna layer provisioned" in error else DnaboxError
        raise kind(f"{box.name}: {error}", hint=_hint(fleet))
    return TrainReport(model, box.name, int(answer["version"]), dict(answer["metric"]),
                       dict(answer["dataset_range"]), float(answer["trained_at"]))


# Runs on the edge box with its python3 (standard library only); the request body comes on
# stdin, the answer is one JSON line whatever happens.
_POST = r"""
import json, sys, time, urllib.error, urllib.request
url, body = sys.argv[1], sys.stdin.buffer.read()
started = time.monotonic()
try:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        status, answer = response.status, json.load(response)
except urllib.error.HTTPError as exc:
    status, answer = exc.code, json.load(exc)
except (OSError, ValueError) as exc:
    status, answer = 0, {"error": type(exc).__name__ + ": " + str(getattr(exc, "reason", exc))}
print(json.dumps({"status": status, "answer": answer,
                  "seconds": round(time.monotonic() - started, 4)}))
"""


# The same, for a GET (no body).
_GET = r"""
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
        print(json.dumps({"status": response.status, "answer": json.load(response)}))
except (OSError, ValueError) as exc:
    print(json.dumps({"status": 0, "answer": {"error": type(exc).__name__}}))
"""


def _ask_inference(fleet: Fleet, pool: ConnectionPool, service: Service,
                   path: str) -> dict[str, Any] | None:
    """GET ``path`` of an inference server, asked on its own box over SSH (it listens on
    the D-N-A plane); its JSON answer, or None when it does not answer with 200."""
    box = fleet.box(service.box)
    command = f"python3 -c {shlex.quote(_GET)} {shlex.quote(f'http://{service.bind}{path}')}"
    try:
        result = pool.get(box.name, fleet.ssh_for(box)).run(command, timeout=30)
    except DnaboxError:
        return None
    reply = _last_json(result.stdout)
    if reply is None or reply.get("status") != 200:
        return None
    answer: dict[str, Any] = reply["answer"]
    return answer


def serving_versions(fleet: Fleet, pool: ConnectionPool) -> dict[tuple[str, str], int | None]:
    """(model, site) -> the version that site's inference server answers with (its
    /healthz): what the edge really serves, which may be newer than its registry copy (it
    also reads the hub's) and is known while the site is cut off from the core. None: it
    serves no version yet, or does not answer."""
    topology = build_topology(fleet)
    if topology is None:
        return {}
    found: dict[tuple[str, str], int | None] = {}
    for service in (s for s in topology.services if s.role == "inference"):
        health = _ask_inference(fleet, pool, service, "/healthz") or {}
        version = health.get("version")
        found[(service.model, service.site)] = version if isinstance(version, int) and \
            version > 0 else None
    return found


def recent_predictions(fleet: Fleet, pool: ConnectionPool, limit: int = 10) -> list[dict[str, Any]]:
    """The last answers of every inference server of the fleet, newest first (each asked on
    its own box over SSH, so a site cut off from the core still shows its own). A server that
    does not answer is left out."""
    topology = build_topology(fleet)
    if topology is None:
        return []
    found: list[dict[str, Any]] = []
    for service in (s for s in topology.services if s.role == "inference"):
        recent = _ask_inference(fleet, pool, service, "/recent") or {}
        for answer in recent.get("recent", []):
            found.append({"site": service.site, "model": service.model, "box": service.box,
                          **answer})
    found.sort(key=lambda a: float(a.get("at", 0)), reverse=True)
    return found[:limit]


def parse_input(text: str | None) -> dict[str, float]:
    """``--input``: {"features": {...}} or the features alone; errors name the field."""
    if text is None:
        return dict(DEFAULT_FEATURES)
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise DnaboxError(f"--input: not JSON: {exc}",
                          hint='e.g. --input \'{"hour": 8, "occupancy": 0.3, "flow": 2400, '
                               '"rain": 0}\'') from None
    if isinstance(loaded, dict) and "features" in loaded:
        loaded = loaded["features"]
    try:
        return check_features(loaded)
    except ValueError as exc:
        raise DnaboxError(f"--input: {exc}",
                          hint="features: hour, occupancy (0-1), flow (veh/h), rain (0/1)") \
            from None


def predict(fleet: Fleet, site: str, model: str, features: dict[str, float],
            pool: ConnectionPool) -> PredictReport:
    """One request to the model's inference server at ``site``, from its own box."""
    topology = topology_of(fleet)
    service = server_of(fleet, topology, model, site)
    url = f"http://{service.bind}/predict"
    box = fleet.box(service.box)
    command = f"python3 -c {shlex.quote(_POST)} {shlex.quote(url)}"
    body = json.dumps({"features": features}).encode()
    result = pool.get(box.name, fleet.ssh_for(box)).run(command, timeout=60, stdin=body)
    reply = _last_json(result.stdout)
    if reply is None:
        raise DnaboxError(f"{box.name}: could not send the request: "
                          f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    status, answer = int(reply["status"]), reply["answer"]
    if status == 0:
        raise DnaNotProvisioned(
            f"no inference server of {model} answers at {service.bind} on {box.name} "
            f"({answer.get('error', '')})", hint=_hint(fleet))
    if status != 200:
        raise DnaboxError(f"the inference server at {site} answered {status}: "
                          f"{answer.get('error', answer)}",
                          hint="a 503 means no model version reached the site yet: "
                               f"dnabox dna train -i {fleet.source or 'FILE'} --model {model}")
    return PredictReport(model, site, box.name, features, float(answer["prediction"]),
                         int(answer["version"]), float(reply["seconds"]))
