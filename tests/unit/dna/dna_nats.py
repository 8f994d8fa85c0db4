"""Real nats-server processes on loopback for the D-N-A service tests: a hub and edge leaves.

Each server gets its own ports and store dir under the test's tmp_path and is stopped by its
PID. The streams are laid out the way DNA-INTERFACE.md says the dna layer provisions them:
a pond per edge domain, the lake at the hub sourcing every pond, the catalogue and the model
registry at the hub, and a mirror of the registry in every edge domain.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
from nats.js import api

T = TypeVar("T")
DATASET = "traffic"
POND = "POND_TRAFFIC"
LAKE = "LAKE_TRAFFIC"
CATALOGUE = "dna_catalogue"
MODELS = "dna_models"
MODELS_META = "dna_models_meta"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    domain: str
    port: int
    monitor: int
    process: subprocess.Popen[bytes]
    leaf_port: int = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def monitor_json(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}{path}", timeout=2) as r:
            loaded: dict[str, Any] = json.load(r)
            return loaded


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


async def wait_for_async(check: Callable[[], Awaitable[bool]], what: str,
                         timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Fleet:
    root: Path
    hub: Server
    edges: dict[str, Server] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_edge(self, site: str) -> Server:
        server = _start(self.root, site, site, leaf_remote=self.hub.leaf_port)
        self.edges[site] = server
        wanted = len(self.edges)
        wait_for(lambda: _leaf_links(self.hub) >= wanted, f"{site}'s leaf link to the hub")
        return server

    def stop(self) -> None:
        for server in [*self.edges.values(), self.hub]:
            _stop(server.process)

    def cut_hub(self) -> None:
        """The core is gone for the edges: its server stops (its store stays)."""
        _stop(self.hub.process)

    def restore_hub(self) -> None:
        """The same server, config and store again; the edge leaves reconnect by themselves."""
        config = self.root / self.hub.name / "nats.conf"
        log = (self.root / self.hub.name / "nats.log").open("ab")
        self.hub.process = subprocess.Popen(["nats-server", "-c", str(config)], stdout=log,
                                            stderr=log)
        wait_for(lambda: self.hub.process.poll() is None and _healthy(self.hub), "the hub")
        wanted = len(self.edges)
        wait_for(lambda: _leaf_links(self.hub) >= wanted, "the leaves back at the hub")


def _healthy(server: Server) -> bool:
    try:
        return server.monitor_json("/healthz?js-enabled-only=true").get("status") == "ok"
    except OSError:
        return False


def _leaf_links(hub: Server) -> int:
    try:
        return int(hub.monitor_json("/leafz").get("leafnodes", 0))
    except OSError:
        return 0


def _start(root: Path, name: str, domain: str, leaf_remote: int = 0) -> Server:
    port, monitor = free_port(), free_port()
    leaf_port = 0 if leaf_remote else free_port()
    store = root / name / "store"
    store.mkdir(parents=True)
    lines = [f"server_name: {name}", f"listen: 127.0.0.1:{port}", f"http: 127.0.0.1:{monitor}",
             f'jetstream {{ store_dir: "{store}", domain: "{domain}" }}']
    if leaf_remote:
        remote = f"nats-leaf://127.0.0.1:{leaf_remote}"
        lines.append(f'leafnodes {{ remotes: [ {{ url: "{remote}" }} ] }}')
    else:
        lines.append(f"leafnodes {{ listen: 127.0.0.1:{leaf_port} }}")
    config = root / name / "nats.conf"
    config.write_text("\n".join(lines) + "\n")
    log = (root / name / "nats.log").open("wb")
    process = subprocess.Popen(["nats-server", "-c", str(config)], stdout=log, stderr=log)
    server = Server(name, domain, port, monitor, process, leaf_port)
    wait_for(lambda: process.poll() is None and _healthy(server), f"nats-server {name}")
    return server


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def nats_fleet(tmp_path: Path) -> Iterator[Fleet]:
    if shutil.which("nats-server") is None:
        pytest.fail("nats-server is not installed (setup.sh installs the Debian package)")
    fleet = Fleet(tmp_path, _start(tmp_path, "hub", "hub"))
    try:
        yield fleet
    finally:
        for process in fleet.processes:
            _stop(process)
        fleet.stop()


def run(coro: Awaitable[T]) -> T:
    """Run ``coro`` on a loop of its own. Not asyncio.run: that leaves the thread without
    an event loop, and Pulumi's mocks in later tests of the same process need one."""
    async def wrapper() -> T:
        return await coro
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(wrapper())
    finally:
        loop.close()


async def provision(fleet: Fleet) -> None:
    """The streams and buckets, as the dna layer's provisioning lays them out."""
    hub = await nats.connect(fleet.hub.url)
    js = hub.jetstream(domain="hub")
    sources = [api.StreamSource(name=POND, external=api.ExternalStream(api=f"$JS.{site}.API"))
               for site in fleet.edges]
    await js.add_stream(name=LAKE, sources=sources, storage=api.StorageType.FILE)
    await js.create_key_value(bucket=CATALOGUE)
    await js.create_key_value(bucket=MODELS_META, history=5)
    await js.create_object_store(bucket=MODELS)
    for site, server in fleet.edges.items():
        edge = await nats.connect(server.url)
        ejs = edge.jetstream(domain=site)
        await ejs.add_stream(name=POND, subjects=[f"dna.{DATASET}.{site}.>"],
                             storage=api.StorageType.FILE, duplicate_window=120.0)
        for stream in (f"KV_{MODELS_META}", f"OBJ_{MODELS}"):
            # The object store writes its meta with a rollup header: a mirror that does not
            # allow rollups stops at the first object's meta and never copies it.
            await ejs.add_stream(name=stream, allow_rollup_hdrs=True, mirror=api.StreamSource(
                name=stream, external=api.ExternalStream(api="$JS.hub.API")))
        await edge.close()
    await hub.close()


async def provision_from_plan(fleet: Fleet, inventory: Path, site: str) -> None:
    """The streams exactly as dnabox.plan.dna declares them for ``inventory`` (the hub's and
    ``site``'s leaf's), created through the JetStream API like the dna role does."""
    from dnabox.inventory import load_fleet
    from dnabox.plan.dna import build_topology

    topology = build_topology(load_fleet(inventory))
    assert topology is not None
    (leaf,) = [s for s in topology.leaves if s.site == site]
    for server, url in ((topology.hub[0], fleet.hub.url), (leaf, fleet.edges[site].url)):
        client = await nats.connect(url)
        for stream in server.streams:
            reply = await client.request(
                f"$JS.{stream.domain}.API.STREAM.CREATE.{stream.name}",
                json.dumps(stream.api_config()).encode(), timeout=5)
            answer = json.loads(reply.data)
            assert "error" not in answer, (stream.name, answer)
        await client.close()
