"""The reference X+AI service against real nats-server processes on loopback.

A hub (JetStream domain hub) and an edge leaf (domain edge-a) joined by a leafnode link, the
streams laid out as the dna layer provisions them. The services run as the containers run
them: ``python -m dnabox.dna.service.<role> --config FILE``.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from dna_nats import (
    CATALOGUE,
    DATASET,
    LAKE,
    MODELS,
    MODELS_META,
    POND,
    Fleet,
    free_port,
    nats_fleet,  # noqa: F401  (the fixture)
    provision,
    provision_from_plan,
    run,
    wait_for,
    wait_for_async,
)
from nats.js import api

from dnabox.dna.service import collector
from dnabox.dna.service.config import ServiceConfig, load
from dnabox.plan import dna_container

ROOT = Path(__file__).resolve().parents[3]
SITE = "edge-a"


def config(fleet: Fleet, role: str, tmp: Path, **values: Any) -> Path:
    server = fleet.hub if role == "trainer" else fleet.edges[SITE]
    base: dict[str, Any] = {
        # The sensor's site is an end site uplinked to edge-a: its samples go to edge-a's pond.
        "role": role, "site": {"collector": "end-a", "trainer": "core"}.get(role, SITE),
        "box": {"collector": "end-a-1", "trainer": "core-1", "inference": "edge-a-1"}[role],
        "dataset": DATASET, "nats_urls": (server.url,),
        # As dna_services.render_config: clients of a leaf use its own JetStream.
        "domain": "hub" if role == "trainer" else "", "model": "speed",
        "subject": f"dna.{DATASET}.{SITE}.end-a-1", "pond_stream": POND, "lake_stream": LAKE,
        "catalogue_bucket": CATALOGUE, "models_bucket": MODELS, "models_meta_bucket": MODELS_META,
        "state_dir": str(tmp / "state"),
        # As render_config: an inference server also reads the hub's registry while its
        # site's copy lags (nats-server 2.9's copy was seen to miss a message for good).
        "registry_origin": "hub" if role == "inference" else "",
    }
    path = tmp / f"{role}.json"
    path.write_text(ServiceConfig(**{**base, **values}).to_json())
    return path


# The services run as on a box: Debian's python3 and python3-numpy, and only the files the
# lab ships into the container image (dnabox.plan.dna_container) on the path.
BOX_PYTHON = "/usr/bin/python3"


@functools.cache
def image_path() -> str:
    root = Path(tempfile.mkdtemp(prefix="dnabox-dna-image-"))
    atexit.register(shutil.rmtree, root, True)
    for path, data in dna_container.image_files().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return str(root / dna_container.PYTHON_DIR)


def service(role: str, config_path: Path, *args: str) -> list[str]:
    return [BOX_PYTHON, "-m", f"dnabox.dna.service.{role}", "--config", str(config_path),
            *args]


def environment() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": image_path(),
            "PYTHONDONTWRITEBYTECODE": "1"}


def start_service(fleet: Fleet, role: str, config_path: Path) -> subprocess.Popen[bytes]:
    """A long-running service; its log goes next to its config (shown when a test fails)."""
    log = config_path.with_suffix(f".{len(fleet.processes)}.log").open("wb")
    process = subprocess.Popen(service(role, config_path), env=environment(), stdout=log,
                               stderr=log)
    fleet.processes.append(process)
    return process


def run_service(role: str, config_path: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(service(role, config_path, *args), capture_output=True, text=True,
                          env=environment(), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    loaded: dict[str, Any] = json.loads(lines[-1])
    return loaded


def http(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def healthz_version(url: str) -> int:
    try:
        return int(http(url + "/healthz")[1]["version"])
    except OSError:
        return -1


async def stream_count(server_url: str, domain: str, stream: str) -> int:
    client = await nats.connect(server_url)
    try:
        info = await client.jetstream(domain=domain).stream_info(stream)
        return int(info.state.messages)
    finally:
        await client.close()


async def all_ids(server_url: str, domain: str, stream: str) -> list[str]:
    client = await nats.connect(server_url)
    ids: list[str] = []
    try:
        js = client.jetstream(domain=domain)
        total = (await js.stream_info(stream)).state.messages
        sub = await js.subscribe(f"dna.{DATASET}.>", stream=stream, ordered_consumer=True)
        while len(ids) < total:
            msg = await sub.next_msg(timeout=5)
            ids.append(json.loads(msg.data)["id"])
        await sub.unsubscribe()
        return ids
    finally:
        await client.close()


async def kv_value(server_url: str, bucket: str, key: str) -> dict[str, Any]:
    client = await nats.connect(server_url)
    try:
        entry = await (await client.jetstream(domain="hub").key_value(bucket)).get(key)
        loaded: dict[str, Any] = json.loads(entry.value or b"{}")
        return loaded
    finally:
        await client.close()


@pytest.fixture(params=["interface", "plan"])
def lake(nats_fleet: Fleet, request: pytest.FixtureRequest) -> Iterator[Fleet]:  # noqa: F811
    """Streams as DNA-INTERFACE.md describes them, and as dnabox.plan.dna declares them for
    the lab fleet (its site edge-a): the services must work on both."""
    nats_fleet.start_edge(SITE)
    if request.param == "interface":
        run(provision(nats_fleet))
    else:
        run(provision_from_plan(nats_fleet, ROOT / "inventory" / "lab.yaml", SITE))
    yield nats_fleet


def publish(fleet: Fleet, tmp: Path, count: int) -> collector.Report:
    loaded = load(config(fleet, "collector", tmp))
    return run(collector.publish(loaded, count, 0.0))


def wait_lake(fleet: Fleet, count: int) -> None:
    async def check() -> bool:
        return await stream_count(fleet.hub.url, "hub", LAKE) >= count
    run(wait_for_async(check, f"{count} samples in the lake"))


def test_samples_reach_pond_and_lake_exactly_once(lake: Fleet, tmp_path: Path) -> None:
    first = publish(lake, tmp_path, 300)
    assert (first.published, first.first_seq, first.last_seq) == (300, 1, 300)
    # A restarted collector continues the sequence: no id is reused.
    second = publish(lake, tmp_path, 50)
    assert (second.first_seq, second.last_seq) == (301, 350)
    (tmp_path / "state").joinpath(f"collector-{DATASET}-end-a-1.seq").unlink()
    third = publish(lake, tmp_path, 10)  # state lost: the pond still knows the last id
    assert third.first_seq == 351
    wait_lake(lake, 360)
    expected = [f"end-a-1:{n}" for n in range(1, 361)]
    assert run(all_ids(lake.edges[SITE].url, SITE, POND)) == expected
    assert run(all_ids(lake.hub.url, "hub", LAKE)) == expected
    # The benchmark's probe sees the same, with a latency for each sample.
    trainer_config = config(lake, "trainer", tmp_path)
    assert run_service("probe", trainer_config, "count", LAKE)["messages"] == 360
    latency = run_service("probe", trainer_config, "latency", LAKE, "--from-seq", "301")
    assert latency["samples"] == 60
    assert 0 <= latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert latency["rate"] > 0


def test_a_retried_publish_is_stored_once(lake: Fleet, tmp_path: Path) -> None:
    publish(lake, tmp_path, 20)

    async def retry_some() -> None:
        client = await nats.connect(lake.edges[SITE].url)
        js = client.jetstream(domain=SITE)
        for seq in (3, 7, 20):  # acknowledgements lost: the collector sends them again
            payload = json.dumps({"id": f"end-a-1:{seq}"}).encode()
            ack = await js.publish(f"dna.{DATASET}.{SITE}.end-a-1", payload,
                                   headers={"Nats-Msg-Id": f"end-a-1:{seq}"})
            assert ack.duplicate
        await client.close()

    run(retry_some())
    assert run(stream_count(lake.edges[SITE].url, SITE, POND)) == 20


def test_train_serve_retrain_follow(lake: Fleet, tmp_path: Path) -> None:
    publish(lake, tmp_path, 300)
    wait_lake(lake, 300)
    trained = run_service("trainer", config(lake, "trainer", tmp_path), "--once")
    assert trained["version"] == 1
    assert trained["dataset_range"]["samples"] == 300
    assert trained["dataset_range"]["by_site"] == {SITE: 300}
    assert 0 < trained["metric"]["held_out"] < 300
    assert trained["metric"]["rmse"] < 15

    port = free_port()
    start_service(lake, "inference",
                  config(lake, "inference", tmp_path, bind=f"127.0.0.1:{port}"))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: healthz_version(url) == 1, "the edge serving v1")
    features = {"hour": 8.0, "occupancy": 0.35, "flow": 2500.0, "rain": 0}
    status, answer = http(url + "/predict", {"features": features})
    assert status == 200
    assert (answer["model"], answer["version"], answer["site"]) == ("speed", 1, SITE)
    # Greenshields with a free flow of 85-105 km/h: 40-56 km/h at 35 % occupancy.
    assert 30 < answer["prediction"] < 65
    status, answer = http(url + "/predict", {"features": {**features, "rain": "yes"}})
    assert (status, answer["error"]) == (400, "features.rain: expected a number")

    # The watching trainer retrains after 500 new samples, and the edge follows.
    start_service(lake, "trainer", config(lake, "trainer", tmp_path, retrain_every_samples=500))
    publish(lake, tmp_path, 600)
    wait_for(lambda: healthz_version(url) == 2, "the edge serving v2", timeout=60)
    meta = run(kv_value(lake.hub.url, MODELS_META, "speed"))
    assert meta["version"] == 2 and meta["object"] == "speed/v2"
    assert meta["dataset_range"]["samples"] == 900
    assert meta["metric"]["held_out"] > trained["metric"]["held_out"]
    assert meta["metric"]["rmse"] < 15

    # `dnabox dna train` asks the running trainer; the edge serves what it answered.
    asked = run_service("trainer", config(lake, "trainer", tmp_path), "--request")
    assert asked["version"] == 3
    wait_for(lambda: healthz_version(url) == 3, "the edge serving v3")
    # From training finished at the hub to the edge serving it (the bound: 5 s).
    lag = http(url + "/healthz")[1]["loaded_at"] - asked["trained_at"]
    print(f"train-to-serve on loopback: {lag:.3f}s")
    assert 0 <= lag < 5
    catalogue = run(kv_value(lake.hub.url, CATALOGUE, f"{DATASET}.{SITE}"))
    assert catalogue["samples"] == 900 and catalogue["schema_version"] == 1
    assert (catalogue["dataset"], catalogue["site"]) == (DATASET, SITE)


def test_train_request_without_a_trainer_says_so(lake: Fleet, tmp_path: Path) -> None:
    done = subprocess.run(service("trainer", config(lake, "trainer", tmp_path), "--request"),
                          capture_output=True, text=True, env=environment(), timeout=60,
                          check=False)
    assert done.returncode == 1
    assert "no trainer of speed is running: is the dna layer provisioned?" in done.stdout


def test_inference_without_a_model_answers_503(lake: Fleet, tmp_path: Path) -> None:
    port = free_port()
    start_service(lake, "inference",
                  config(lake, "inference", tmp_path, bind=f"127.0.0.1:{port}"))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: healthz_version(url) == 0, "the inference server")
    status, answer = http(url + "/predict",
                          {"features": {"hour": 1, "occupancy": 0.1, "flow": 900, "rain": 0}})
    assert status == 503
    assert answer["error"] == f"no version of speed has reached {SITE} yet"


def test_a_cut_off_edge_keeps_its_samples_and_serves_its_last_model(lake: Fleet,
                                                                      tmp_path: Path) -> None:
    publish(lake, tmp_path, 300)
    wait_lake(lake, 300)
    assert run_service("trainer", config(lake, "trainer", tmp_path), "--once")["version"] == 1
    port = free_port()
    start_service(lake, "inference",
                  config(lake, "inference", tmp_path, bind=f"127.0.0.1:{port}"))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: healthz_version(url) == 1, "the edge serving v1")

    lake.cut_hub()
    cut_off = publish(lake, tmp_path, 200)  # the pond acknowledges every one
    assert cut_off.published == 200
    assert run(stream_count(lake.edges[SITE].url, SITE, POND)) == 500
    features = {"hour": 17.0, "occupancy": 0.2, "flow": 1800.0, "rain": 1}
    status, answer = http(url + "/predict", {"features": features})
    assert (status, answer["version"]) == (200, 1)

    lake.restore_hub()
    wait_lake(lake, 500)
    expected = [f"end-a-1:{n}" for n in range(1, 501)]
    assert run(all_ids(lake.hub.url, "hub", LAKE)) == expected


async def stall_mirror(server_url: str, domain: str) -> None:
    """The edge's registry mirror stops taking versions: what nats-server 2.9's mirror looks
    like from the edge while its source waits to retry after a leaf reconnect (measured on
    the lab: tens of seconds). Its streams stay, empty, sourcing a stream that never comes."""
    client = await nats.connect(server_url)
    try:
        js = client.jetstream(domain=domain)
        for stream in (f"KV_{MODELS_META}", f"OBJ_{MODELS}"):
            await js.delete_stream(stream)
            await js.add_stream(name=stream, allow_rollup_hdrs=True, sources=[api.StreamSource(
                name=f"STALLED_{stream}", external=api.ExternalStream(api="$JS.hub.API"))])
    finally:
        await client.close()


def test_an_edge_whose_mirror_lags_serves_the_hubs_newer_version(lake: Fleet,
                                                                  tmp_path: Path) -> None:
    publish(lake, tmp_path, 300)
    wait_lake(lake, 300)
    run(stall_mirror(lake.edges[SITE].url, SITE))
    assert run_service("trainer", config(lake, "trainer", tmp_path), "--once")["version"] == 1
    follows_hub, mirror_only = free_port(), free_port()
    start_service(lake, "inference", config(lake, "inference", tmp_path,
                                            bind=f"127.0.0.1:{mirror_only}",
                                            registry_origin=""))
    wait_for(lambda: healthz_version(f"http://127.0.0.1:{mirror_only}") == 0,
             "the mirror-only inference server")
    (tmp_path / "origin").mkdir()
    start_service(lake, "inference", config(lake, "inference", tmp_path / "origin",
                                            bind=f"127.0.0.1:{follows_hub}"))
    url = f"http://127.0.0.1:{follows_hub}"
    wait_for(lambda: healthz_version(url) == 1, "the edge serving v1 from the hub")
    # Answering before the other started, checking as often: the mirror alone has nothing.
    assert healthz_version(f"http://127.0.0.1:{mirror_only}") == 0

    lake.cut_hub()  # cut off: no answer from the hub, the edge keeps what it serves
    features = {"hour": 9.0, "occupancy": 0.3, "flow": 2000.0, "rain": 0}
    status, answer = http(url + "/predict", {"features": features})
    assert (status, answer["version"]) == (200, 1)
