"""The box's dnabox-jetstream program against real nats-servers on loopback: the lab's hub
and edge-a leaf, configured with the files the dna role renders (addresses moved to
loopback). Streams apply idempotently, samples published at the edge reach the hub's lake
through JetStream domains exactly once, and the status the hub reads agrees."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnabox.inventory import load_fleet
from dnabox.locations import Locations
from dnabox.plan.desired import plan_fleet
from dnabox.plan.dna import build_topology, secret_files
from dnabox.provision.dna_ops import summarise

ROOT = Path(__file__).resolve().parents[3]
BOXES = {"core-1": "127.0.0.11", "edge-a-1": "127.0.0.21", "end-a-1": ""}
SERVERS = ("core-1", "edge-a-1")

needs_nats = pytest.mark.skipif(shutil.which("nats-server") is None,
                                reason="nats-server is not installed (setup.sh installs it)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def boxes(tmp_path: Path) -> Iterator[dict[str, Path]]:
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    topology = build_topology(fleet)
    assert topology is not None
    plans = plan_fleet(fleet, Locations.discover(ROOT))
    passwords = {name: f"pw-{name}" for name in topology.credentials}
    # Loopback addresses and free ports stand in for the overlay and the NATS ports.
    moves = {"10.250.0.11": "127.0.0.11", "10.250.0.21": "127.0.0.21",
             "10.250.0.31": "127.0.0.31", ":4222": f":{_free_port()}",
             ":7422": f":{_free_port()}", "127.0.0.1:8222": "127.0.0.1:%d"}
    dirs: dict[str, Path] = {}
    for box in BOXES:
        home = tmp_path / box
        home.mkdir()
        files = {f.dest: f.content for f in plans[box].files if f.role == "dna"}
        files.update(secret_files(topology, box, passwords))
        monitor = f"127.0.0.1:{_free_port()}"
        for dest, rendered in files.items():
            text = rendered
            for old, new in moves.items():
                text = text.replace(old, new)
            text = text.replace("/var/lib/dnabox/nats", str(home / "store"))
            (home / Path(dest).name).write_text(text.replace("127.0.0.1:%d", monitor))
        dirs[box] = home
    servers = [subprocess.Popen(["nats-server", "-c", str(dirs[b] / "nats-server.conf")],
                                cwd=dirs[b], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for b in SERVERS]
    try:
        yield dirs
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


def tool(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(home / "dnabox-jetstream"), *args],
                          env={**os.environ, "DNABOX_DNA_DIR": str(home)},
                          capture_output=True, text=True, timeout=60, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_nats
def test_streams_apply_then_samples_flow_edge_to_lake_exactly_once(
        boxes: dict[str, Path]) -> None:
    hub, leaf, end = boxes["core-1"], boxes["edge-a-1"], boxes["end-a-1"]
    first = ok(tool(hub, "apply", str(hub / "streams.json")))
    assert "CHANGED: stream LAKE_TRAFFIC created" in first
    assert "CHANGED: stream KV_dna_catalogue created" in first
    assert "CHANGED: stream POND_TRAFFIC created" in ok(tool(leaf, "apply",
                                                             str(leaf / "streams.json")))
    assert ok(tool(hub, "apply", str(hub / "streams.json"))).startswith("converged")
    report = json.loads(ok(tool(end, "publish", str(end / "client.json"), "traffic", "3000")))
    assert (report["published"], report["acked_through"], report["duplicates"]) == (3000, 3000, 0)
    deadline = time.monotonic() + 30
    while True:
        status = summarise(json.loads(ok(tool(hub, "status", str(hub / "streams.json")))))
        if status.lake_samples == 3000 or time.monotonic() > deadline:
            break
    assert status.lake_by_site == {"edge-a": 3000}
    assert [(p.site, p.samples, p.lag) for p in status.ponds] == [("edge-a", 3000, 0)]
    assert status.catalogue["traffic.edge-a"]["samples"] == 3000
    wanted = {f"end-a-1:{seq}" for seq in range(1, 3001)}
    for stream, domain in (("LAKE_TRAFFIC", ""), ("POND_TRAFFIC", "edge-a")):
        held = json.loads(ok(tool(hub, "ids", stream, domain)))
        assert len(held) == 3000 and set(held) == wanted, stream
    # A retried publish (same ids) is stored once: the id is the Nats-Msg-Id.
    again = json.loads(ok(tool(end, "publish", str(end / "client.json"), "traffic", "10", "1")))
    assert (again["published"], again["duplicates"]) == (10, 10)  # acknowledged, said so
    info = json.loads(ok(tool(leaf, "info", "POND_TRAFFIC")))
    assert info["state"]["messages"] == 3000


@needs_nats
def test_an_end_device_may_not_publish_into_another_site_pond(boxes: dict[str, Path]) -> None:
    hub, leaf, end = boxes["core-1"], boxes["edge-a-1"], boxes["end-a-1"]
    ok(tool(hub, "apply", str(hub / "streams.json")))
    ok(tool(leaf, "apply", str(leaf / "streams.json")))
    client = json.loads((end / "client.json").read_text())
    client["publishes"]["traffic"] = "dna.traffic.edge-b.end-a-1"
    (end / "client.json").write_text(json.dumps(client))
    refused = tool(end, "publish", str(end / "client.json"), "traffic", "1")
    assert refused.returncode == 1
    assert "Permissions Violation" in refused.stdout + refused.stderr
