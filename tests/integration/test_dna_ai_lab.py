"""The AI half of the D-N-A layer on the lab: real SSH, real containerd containers.

`dnabox up` runs the trainer at the core and an inference server per serving edge as
containerd containers (role dna_services). `dnabox dna train` gives a version with a metric
on held-out data, every serving edge answers predictions with the version that produced
them and takes each new version within a measured bound; an edge cut off from the core keeps
answering with its last model (its registry mirror); a dead container is repaired by the next
`dnabox up`, a config change restarts only its container, and a converged fleet runs nothing.
Waits poll the services (with a deadline), never a fixed sleep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Lab  # type: ignore[import-not-found]

pytestmark = pytest.mark.lab

MODEL = "speed"
PRODUCER = "end-a-1"
TRAINER = ("core-1", "dnabox-trainer-speed")
TOOL = "/usr/local/sbin/dnabox-jetstream"
SERVERS = {"edge-a": ("edge-a-1", "dnabox-inference-speed-edge-a"),
           "edge-b": ("edge-b-1", "dnabox-inference-speed-edge-b")}
CUT = "edge-a"
# Below the model's retrain.every_samples (500): only `dnabox dna train` makes versions here.
BATCH = 400
# A new version reaches every serving edge within this: an edge's inference server wakes on
# the meta key's push and re-checks every 5 s (measured: ~0.02 s; FIGURES, docs/DNA.md).
SERVED_BOUND_S = 10.0
FIGURES: dict[str, float] = {}


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def up(lab: Lab, inventory: Path | None = None) -> list[dict[str, Any]]:
    result = lab.cli("up", "-i", str(inventory or lab.inventory), "--json", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return events(result.stdout)


def tasks(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in found if e.get("kind") == "task"]


def cli_json(lab: Lab, *args: str, timeout: float = 120) -> dict[str, Any]:
    result = lab.cli("dna", *args, "-i", str(lab.inventory), "--json", timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def status(lab: Lab) -> dict[str, Any]:
    return cli_json(lab, "status")


def model_status(lab: Lab) -> dict[str, Any]:
    [model] = [m for m in status(lab)["models"] if m["name"] == MODEL]
    return model


def wait_until(what: str, ready: Callable[[], bool], timeout: float = 120,
               explain: Callable[[], str] | None = None) -> float:
    """Poll until ``ready``; the seconds it took. On a timeout, ``explain`` says why."""
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > timeout:
            story = f"\n{explain()}" if explain is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{story}")
        time.sleep(0.2)  # a poll interval, not a synchronisation: ready() decides
    return time.monotonic() - started


def publish(lab: Lab, count: int) -> None:
    """``count`` samples from the end device, all of them in the lake afterwards."""
    before = int(status(lab)["lake"]["samples"])
    report = cli_json(lab, "publish", "--box", PRODUCER, "--count", str(count), timeout=300)
    assert report["published"] == count
    wait_until("the lake to take the samples",
               lambda: int(status(lab)["lake"]["samples"]) == before + count)


def train(lab: Lab) -> dict[str, Any]:
    """`dnabox dna train`; its report, with ``asked_at`` (host clock) added."""
    asked_at, started = time.time(), time.monotonic()
    report = cli_json(lab, "train", "--model", MODEL, timeout=400)
    FIGURES["train_cli_s"] = max(FIGURES.get("train_cli_s", 0.0), time.monotonic() - started)
    return {**report, "asked_at": asked_at}


def predict(lab: Lab, site: str) -> dict[str, Any]:
    return cli_json(lab, "predict", "--site", site, "--model", MODEL)


def health(lab: Lab, site: str) -> dict[str, Any]:
    """The inference server's /healthz, asked on its own box (it listens on the overlay)."""
    box, _ = SERVERS[site]
    bind = json.loads(lab.run(box, f"cat /etc/dnabox/dna/services/inference-{MODEL}-{site}"
                                   ".json").stdout)["bind"]
    result = lab.run(box, "python3 -c 'import sys, urllib.request; sys.stdout.write("
                          f"urllib.request.urlopen(\"http://{bind}/healthz\", timeout=5)"
                          ".read().decode())'", check=False)
    answer: dict[str, Any] = json.loads(result.stdout) if result.returncode == 0 else {}
    return answer


def wait_served(lab: Lab, site: str, version: int, trained_at: float,
                timeout: float = SERVED_BOUND_S * 4) -> float:
    """Wait until ``site`` serves ``version``; seconds from training to the edge loading it
    (both clocks are the host's: lab boxes share its kernel)."""
    wait_until(f"{site} to serve v{version}",
               lambda: health(lab, site).get("version", 0) >= version, timeout=timeout,
               explain=lambda: registry_story(lab, site))
    return float(health(lab, site)["loaded_at"]) - trained_at


def registry_story(lab: Lab, site: str) -> str:
    """What a stuck registry copy looks like from the inside: the copy's sources, the
    inference server's log and both servers' logs."""
    box, _ = SERVERS[site]
    parts = []
    for where, command in (
            (box, f"{TOOL} info OBJ_dna_models"),
            (box, f"tail -n 20 /var/log/dnabox/dna/inference-{MODEL}-{site}.log"),
            (box, "tail -n 40 /var/log/dnabox/nats.log"),
            (TRAINER[0], f"tail -n 20 /var/log/dnabox/dna/trainer-{MODEL}.log"),
            (TRAINER[0], "tail -n 40 /var/log/dnabox/nats.log")):
        result = lab.run(where, f"{command} 2>&1 || true", timeout=60)
        parts.append(f"--- {where}: {command}\n{result.stdout[-4000:]}")
    return "\n".join(parts)


def task_pid(lab: Lab, box: str, container: str) -> int:
    listed = lab.run(box, "ctr task ls").stdout.splitlines()
    rows = [line.split() for line in listed[1:]]
    [row] = [r for r in rows if r[0] == container]
    assert row[2] == "RUNNING", row
    return int(row[1])


@pytest.fixture(scope="module")
def ai(lab: Lab) -> Iterator[Lab]:
    started = time.monotonic()
    up(lab)
    FIGURES["first_up_s"] = time.monotonic() - started
    # The trainer counts new samples from its last training: samples other modules
    # published (its own trigger may be training on them now) would add to this module's
    # batches and retrain beside `dnabox dna train`. One training first (the trainer trains
    # one at a time) leaves nothing untrained, so only this module's requests make versions.
    # A fresh lake has too little to train on and says so: nothing is left untrained either.
    first = lab.cli("dna", "train", "--model", MODEL, "-i", str(lab.inventory), "--json",
                    timeout=400)
    assert first.returncode == 0 or "not enough data" in first.stdout, first.stdout[-2000:]
    yield lab
    # What the tests measured, for the report (visible with -s).
    print("\nDNA_AI_FIGURES " + json.dumps({k: round(v, 3) for k, v in FIGURES.items()}))


def test_the_services_run_where_the_topology_puts_them(ai: Lab) -> None:
    for box, container in (TRAINER, *SERVERS.values()):
        task_pid(ai, box, container)
        assert ai.run(box, "/usr/local/sbin/dnabox-dna-services-apply --probe",
                      check=False).returncode == 0
    # The end device holds the collector's code and config; no container runs there.
    assert ai.run(PRODUCER, "ctr task ls -q").stdout.strip() == ""
    ai.run(PRODUCER, "test -f /etc/dnabox/dna/services/collector-traffic-end-a-1.json && "
                     "test -f /var/lib/dnabox/dna/image/opt/python/dnabox/dna/service/"
                     "collector.py")
    # Nothing the boxes received names a password, only where it is.
    for box in (TRAINER[0], PRODUCER):
        configs = ai.run(box, "cat /etc/dnabox/dna/services/*.json").stdout
        assert "password_file" in configs and '"password"' not in configs


def test_train_gives_a_version_with_a_metric_and_every_edge_serves_it(ai: Lab) -> None:
    before = model_status(ai)["version"] or 0
    publish(ai, BATCH)
    report = train(ai)
    assert report["version"] == before + 1  # v1 on a fresh lab
    metric = report["metric"]
    assert metric["held_out"] > 0 and metric["rmse"] > 0 and "r2" in metric and "mae" in metric
    assert report["dataset_range"]
    FIGURES["first_version"] = report["version"]
    for site in SERVERS:
        wait_served(ai, site, report["version"], report["trained_at"])
        started = time.monotonic()
        answer = predict(ai, site)
        FIGURES[f"predict_cli_s_{site}"] = time.monotonic() - started
        FIGURES[f"predict_request_s_{site}"] = answer["seconds"]
        assert answer["version"] == report["version"]
        assert 0 < answer["prediction"] < 200, answer  # km/h
    model = model_status(ai)
    assert model["version"] == report["version"]
    assert model["metric"]["rmse"] == pytest.approx(metric["rmse"])
    assert model["served"] == {site: report["version"] for site in SERVERS}


def test_more_samples_retrain_a_newer_version_every_edge_serves_within_the_bound(
        ai: Lab) -> None:
    before = model_status(ai)["version"]
    publish(ai, BATCH)
    report = train(ai)
    assert report["version"] > before
    lags = {site: wait_served(ai, site, report["version"], report["trained_at"])
            for site in SERVERS}
    for site, lag in lags.items():
        FIGURES[f"train_to_served_s_{site}"] = lag
        # From typing the command (SSH, the trainer's fit, the registry, the edge's copy).
        FIGURES[f"command_to_served_s_{site}"] = float(health(ai, site)["loaded_at"]) - \
            report["asked_at"]
        assert lag < SERVED_BOUND_S, f"{site} took {lag:.1f} s to serve v{report['version']}"
        assert predict(ai, site)["version"] == report["version"]
    model = model_status(ai)
    assert model["served"] == {site: report["version"] for site in SERVERS}
    assert report["version"] in model["versions"] and before in model["versions"]


def test_a_cut_off_edge_answers_with_its_last_model(ai: Lab) -> None:
    served = predict(ai, CUT)["version"]
    cut = ai.cli("lab", "partition", "-i", str(ai.inventory), "--site", CUT, "--json")
    assert cut.returncode == 0, cut.stderr
    try:
        wait_until("the hub to lose the edge", lambda: any(
            p["samples"] is None for p in status(ai)["ponds"] if p["site"] == CUT))
        report = train(ai)  # at the core, on the lake it holds
        assert report["version"] > served
        others = [site for site in SERVERS if site != CUT]
        for site in others:
            wait_served(ai, site, report["version"], report["trained_at"])
        answer = predict(ai, CUT)  # its registry mirror still holds the last version
        assert answer["version"] == served and answer["prediction"] > 0
        assert health(ai, CUT)["version"] == served
    finally:
        healed = ai.cli("lab", "heal", "-i", str(ai.inventory), "--site", CUT)
        assert healed.returncode == 0, healed.stderr
    FIGURES["heal_to_served_s"] = wait_until(
        "the healed edge to serve the newer version",
        lambda: health(ai, CUT).get("version", 0) >= report["version"], timeout=180)


def test_a_dead_container_is_repaired_by_up_and_nothing_else_runs(ai: Lab) -> None:
    box, container = SERVERS["edge-b"]
    ai.run(box, f"ctr task kill -s SIGKILL {container}")
    wait_until("the container to die", lambda: ai.run(
        box, "/usr/local/sbin/dnabox-dna-services-apply --probe", check=False).returncode != 0)
    repaired = tasks(up(ai))
    assert {e["box"] for e in repaired} == {box}, repaired
    assert any("started" in e["message"] for e in repaired
               if e["data"].get("status") == "changed"), repaired
    task_pid(ai, box, container)
    assert predict(ai, "edge-b")["version"] >= 1


def test_a_config_change_restarts_only_its_container(ai: Lab, tmp_path: Path) -> None:
    pids = {box: task_pid(ai, box, c) for box, c in (TRAINER, *SERVERS.values())}
    changed = tmp_path / "lab.yaml"
    text = ai.inventory.read_text()
    assert "retrain: {every_samples: 500}" in text
    changed.write_text(text.replace("retrain: {every_samples: 500}",
                                    "retrain: {every_samples: 600}"))
    try:
        touched = tasks(up(ai, changed))
        assert {e["box"] for e in touched} == {TRAINER[0]}, touched
        restarted = [e["message"] for e in touched if e["data"].get("status") == "changed"
                     and "restarted" in e["message"]]
        assert any("trainer-speed" in m for m in restarted), restarted
        assert task_pid(ai, *TRAINER) != pids[TRAINER[0]]
        for box, container in SERVERS.values():
            assert task_pid(ai, box, container) == pids[box]
    finally:
        up(ai)  # back to the checked-in fleet
    assert ai.run(TRAINER[0], "grep -c '\"retrain_every_samples\": 500' "
                              "/etc/dnabox/dna/services/trainer-speed.json").stdout.strip() == "1"


def test_rotated_credentials_restart_the_services_on_them(ai: Lab) -> None:
    """The services read their passwords when they start: rotating the credentials (removing
    them, then `dnabox up`) restarts each service container, which trains and serves on the
    new ones."""
    import shutil

    from dnabox.locations import Locations

    credentials = Locations.discover(ai.inventory.parent).fleet_state(
        ai.fleet.name) / "dna" / "credentials"
    assert credentials.is_dir()
    shutil.rmtree(credentials)
    changes = [(e["box"], e["message"]) for e in tasks(up(ai))
               if e["data"].get("status") == "changed"]
    for box, container in (TRAINER, *SERVERS.values()):
        assert any(b == box and container in m and "restarted" in m for b, m in changes), \
            (box, changes)
    report = train(ai)
    for site in SERVERS:
        wait_served(ai, site, report["version"], report["trained_at"])
        assert predict(ai, site)["version"] == report["version"]


def test_a_converged_fleet_runs_no_task(ai: Lab) -> None:
    started = time.monotonic()
    again = up(ai)
    FIGURES["converged_up_s"] = time.monotonic() - started
    assert tasks(again) == [], "a converged fleet ran tasks"
