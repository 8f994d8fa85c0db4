"""`dnabox dna train|predict`: what runs on which box, and every way it can go wrong.

The SSH pool is replaced by one that runs the box's command in a local shell, so the
scripts the commands send are really executed; the services they talk to are stand-ins
(a trainer that answers like ``--request``, the real inference HTTP handler).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dnabox.adapters.jobs import CommandResult
from dnabox.cli.app import app
from dnabox.dna.service import inference
from dnabox.dna.service.config import parse
from dnabox.dna.service.model import SpeedModel
from dnabox.errors import DnaboxError
from dnabox.inventory import load_fleet
from dnabox.plan import dna_services
from dnabox.provision import dna_service
from dnabox.provision.dna_service import DnaNotProvisioned

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "inventory" / "lab.yaml"


class Box:
    def __init__(self, pool: LocalPool, name: str) -> None:
        self.pool, self.name = pool, name

    def run(self, command: str, *, timeout: float = 600.0, stdin: bytes = b"") -> CommandResult:
        self.pool.commands.append((self.name, command))
        command = self.pool.rewrite(command)
        done = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True,
                              timeout=timeout, check=False)
        return CommandResult(done.returncode, done.stdout.decode(), done.stderr.decode(), 0.0)


class LocalPool:
    """Stands in for ConnectionPool: each box's command runs here, after ``rewrite``."""

    def __init__(self, replace: dict[str, str] | None = None) -> None:
        self.commands: list[tuple[str, str]] = []
        self.replace = replace or {}

    def rewrite(self, command: str) -> str:
        for old, new in self.replace.items():
            command = command.replace(old, new)
        return command

    def get(self, box: str, ssh: object) -> Box:
        return Box(self, box)


def trainer_answering(tmp_path: Path, answer: dict[str, Any] | None) -> dict[str, str]:
    """Rewrites making the box's trainer config exist and its --request print ``answer``."""
    fleet = load_fleet(LAB)
    topology = dna_service.topology_of(fleet)
    service = dna_service.trainer_of(fleet, topology, "speed")
    config = dna_services.config_file(service)
    replace = {config: str(tmp_path / "trainer.json")}
    if answer is not None:
        (tmp_path / "trainer.json").write_text("{}")
        fake = tmp_path / "answer.sh"
        fake.write_text(f"#!/bin/sh\necho '{json.dumps(answer)}'\n")
        fake.chmod(0o755)
        replace["env PYTHONPATH="] = f"{fake} PYTHONPATH="
    return replace


def test_train_asks_the_running_trainer_and_reports_its_answer(tmp_path: Path) -> None:
    answer = {"model": "speed", "version": 4, "metric": {"rmse": 3.9, "r2": 0.95,
              "held_out": 120}, "dataset_range": {"samples": 600}, "trained_at": 1.0}
    pool = LocalPool(trainer_answering(tmp_path, answer))
    report = dna_service.train(load_fleet(LAB), "speed", pool)  # type: ignore[arg-type]
    assert (report.version, report.metric["rmse"], report.box) == (4, 3.9, "core-1")
    ((box, command),) = pool.commands
    assert box == "core-1"
    assert "dnabox.dna.service.trainer --config /etc/dnabox/dna/services/trainer-speed.json " \
        "--request" in command


def test_train_where_nothing_is_provisioned_says_so(tmp_path: Path) -> None:
    pool = LocalPool(trainer_answering(tmp_path, None))
    with pytest.raises(DnaNotProvisioned, match="trainer of speed is not provisioned on core-1"):
        dna_service.train(load_fleet(LAB), "speed", pool)  # type: ignore[arg-type]


def test_train_without_a_running_trainer_says_so(tmp_path: Path) -> None:
    error = {"error": "no trainer of speed is running: is the dna layer provisioned?"}
    pool = LocalPool(trainer_answering(tmp_path, error))
    with pytest.raises(DnaNotProvisioned) as caught:
        dna_service.train(load_fleet(LAB), "speed", pool)  # type: ignore[arg-type]
    assert caught.value.exit_code == 3 and "dnabox up -i" in caught.value.hint


def test_unknown_model_and_site_name_what_exists() -> None:
    fleet = load_fleet(LAB)
    with pytest.raises(DnaboxError, match="no model 'weather'") as caught:
        dna_service.train(fleet, "weather", LocalPool())  # type: ignore[arg-type]
    assert caught.value.hint == "models: speed"
    with pytest.raises(DnaboxError, match="not served at site 'end-a'") as caught:
        dna_service.predict(fleet, "end-a", "speed", {}, LocalPool())  # type: ignore[arg-type]
    assert "edge-a" in caught.value.hint


def test_a_fleet_without_dna_is_refused() -> None:
    bare = load_fleet(LAB).model_copy(update={"dna": None})
    with pytest.raises(DnaboxError, match="declares no dna: section"):
        dna_service.train(bare, "speed", LocalPool())  # type: ignore[arg-type]


@pytest.fixture
def server() -> Any:
    """The real inference HTTP handler on loopback, serving a model of version 7."""
    config = parse({"role": "inference", "site": "edge-a", "box": "edge-a-1",
                    "dataset": "traffic", "nats_urls": ["nats://127.0.0.1:1"], "domain": "",
                    "model": "speed", "bind": "127.0.0.1:0"}, "test")
    serving = inference.Serving(config)
    serving.swap(inference.Loaded(SpeedModel((80.0, -90.0, 0, 0, 0, 0, 0, 0)), 7, time.time()))
    http = inference.start_http(config, serving)
    yield http
    http.shutdown()


def plan_bind(site: str) -> str:
    fleet = load_fleet(LAB)
    return dna_service.server_of(fleet, dna_service.topology_of(fleet), "speed", site).bind


def test_predict_posts_from_the_edge_box_and_reports_the_version(server: Any) -> None:
    pool = LocalPool({plan_bind("edge-a"): f"127.0.0.1:{server.server_address[1]}"})
    features = {"hour": 8.0, "occupancy": 0.5, "flow": 2000.0, "rain": 0.0}
    report = dna_service.predict(load_fleet(LAB), "edge-a", "speed", features,
                                 pool)  # type: ignore[arg-type]
    assert (report.version, report.prediction, report.box) == (7, 35.0, "edge-a-1")
    assert pool.commands[0][0] == "edge-a-1"


def test_predict_where_no_server_listens_says_not_provisioned(tmp_path: Path) -> None:
    pool = LocalPool({plan_bind("edge-b"): "127.0.0.1:9"})  # discard port: nothing listens
    with pytest.raises(DnaNotProvisioned, match="no inference server of speed answers"):
        dna_service.predict(load_fleet(LAB), "edge-b", "speed", dna_service.DEFAULT_FEATURES,
                            pool)  # type: ignore[arg-type]


def test_recent_predictions_are_read_at_each_edge_newest_first(server: Any) -> None:
    """edge-a's server answered twice (predict above, from its box); edge-b's does not
    listen: its answers are left out, the page still gets edge-a's."""
    pool = LocalPool({plan_bind("edge-a"): f"127.0.0.1:{server.server_address[1]}",
                      plan_bind("edge-b"): "127.0.0.1:9"})
    fleet = load_fleet(LAB)
    for flow in (1000.0, 3000.0):
        dna_service.predict(fleet, "edge-a", "speed", {**dna_service.DEFAULT_FEATURES,
                                                       "flow": flow}, pool)  # type: ignore[arg-type]
    recent = dna_service.recent_predictions(fleet, pool)  # type: ignore[arg-type]
    assert [(a["site"], a["box"], a["version"], a["features"]["flow"]) for a in recent] == [
        ("edge-a", "edge-a-1", 7, 3000.0), ("edge-a", "edge-a-1", 7, 1000.0)]
    asked = {box for box, command in pool.commands if "/recent" in command}
    assert asked == {"edge-a-1", "edge-b-1"}, "each server is asked on its own box"
    assert dna_service.recent_predictions(fleet, pool, limit=1) == recent[:1]


@pytest.mark.parametrize(("text", "message"), [
    ("{", "--input: not JSON"),
    ('{"features": {"hour": 1, "occupancy": 0.2, "flow": 5}}', "--input: features.rain"),
    ('[1, 2]', "--input: features: expected an object"),
])
def test_bad_input_names_the_field(text: str, message: str) -> None:
    with pytest.raises(DnaboxError, match=message):
        dna_service.parse_input(text)
    assert dna_service.parse_input('{"hour": 1, "occupancy": 0.2, "flow": 5, "rain": 1}') \
        == {"hour": 1.0, "occupancy": 0.2, "flow": 5.0, "rain": 1.0}


def test_cli_errors_are_one_line_and_exit_codes_are_kept() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["dna", "predict", "-i", str(LAB), "--model", "speed",
                                 "--site", "edge-a", "--input", '{"hour": "x"}'])
    assert result.exit_code == 2
    assert "error: --input: features.hour: expected a number" in result.output
    assert "Traceback" not in result.output
