"""What an edge leaf may send into the hub and receive from it, enforced by the hub.

Real nats-servers on 127.0.0.1: the lab's hub (core-1, domain hub), the edge-a leaf (a pond
and a registry copy) and the edge-b leaf (a registry copy only), configured with the
nats-server.conf the dna role renders for them (addresses and ports moved to loopback).

The hub's leaf users carry permissions from the leaf's point of view: publish is what the
leaf may send into the hub, subscribe what it may receive. The hub sends them to the leaf
when the link comes up and filters on its side (interest and deliveries), so a leaf whose
own config was rewritten without its deny lists is held to them all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from dna_nats import free_port, run, wait_for, wait_for_async
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from dnabox.inventory import load_fleet
from dnabox.locations import Locations
from dnabox.plan.desired import template_environment
from dnabox.plan.dna import (
    ADMIN_USER,
    SECRETS_FILE,
    DnaTopology,
    build_topology,
    inbox_prefix,
    secret_files,
    user_of,
)
from dnabox.plan.dna_vars import dna_host_vars

ROOT = Path(__file__).resolve().parents[3]
HUB, EDGE_A, EDGE_B = "core-1", "edge-a-1", "edge-b-1"
BOXES = (HUB, EDGE_A, EDGE_B)

# Sourcing takes well under a second here.
SOURCING = 10.0

pytestmark = pytest.mark.skipif(shutil.which("nats-server") is None,
                                reason="nats-server is not installed (setup.sh installs it)")


@dataclass
class Server:
    box: str
    domain: str
    port: int
    monitor: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


@dataclass
class Lab:
    topology: DnaTopology
    servers: dict[str, Server]
    passwords: dict[str, str]

    async def admin(self, box: str) -> Client:
        """The box's admin client: unrestricted on its own server."""
        return await nats.connect(self.servers[box].url, user=ADMIN_USER,
                                  password=self.passwords[self.topology.credential_of(
                                      ADMIN_USER, box)],
                                  max_reconnect_attempts=0)


def _monitor(port: int, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
        loaded: dict[str, object] = json.load(answer)
        return loaded


def _healthy(server: Server) -> bool:
    try:
        return server.process.poll() is None and _monitor(
            server.monitor, "/healthz?js-enabled-only=true").get("status") == "ok"
    except OSError:
        return False  # not listening yet


def _interest(server: Server) -> set[str]:
    leafs = _monitor(server.monitor, "/leafz?subs=1").get("leafs") or []  # null: none yet
    assert isinstance(leafs, list)
    return {subject for leaf in leafs for subject in leaf.get("subscriptions_list") or ()}


def _linked(servers: dict[str, Server]) -> bool:
    api = "{}.API.CONSUMER.>"
    try:
            return ({api.format(f"$JS.{s.domain}") for s in servers.values() if s.box != HUB}
                <= _interest(servers[HUB])
                and all(api.format("$JS.hub") in _interest(s)
                        for s in servers.values() if s.box != HUB))
    except OSError:
        return False


def _configs(root: Path, rewrite: Callable[[str, str], str]) -> tuple[DnaTopology,
                                                                      dict[str, Path],
                                                                      dict[str, tuple[int, ...]],
                                                                      dict[str, str]]:
    """Each box's nats-server.conf and secrets.conf as the dna role renders them, listening
    on 127.0.0.1 with free ports."""
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    topology = build_topology(fleet)
    assert topology is not None
    template = template_environment(Locations.discover(ROOT).templates).get_template(
        "dna/nats-server.conf.j2")
    passwords = {name: f"pw-{name}" for name in topology.credentials}
    ports = {box: (free_port(), free_port(), free_port()) for box in BOXES}
    hub = topology.hub[0]
    homes: dict[str, Path] = {}
    for name in BOXES:
        server = topology.server_on(name)
        box = next(b for b in fleet.boxes if b.name == name)
        assert server is not None
        client, leafnode, monitor = ports[name]
        text = template.render({**dna_host_vars(fleet, box), "dnabox_box": name})
        for old, new in ((f'"{server.address}:4222"', f'"127.0.0.1:{client}"'),
                         (f'"{server.address}:7422"', f'"127.0.0.1:{leafnode}"'),
                         ('"127.0.0.1:8222"', f'"127.0.0.1:{monitor}"'),
                         ("/var/lib/dnabox/nats", str(root / name / "store"))):
            assert old in text or old.endswith(':7422"'), old
            text = text.replace(old, new)
        secrets = secret_files(topology, name, passwords)[SECRETS_FILE]
        secrets = secrets.replace(f"@{hub.address}:7422", f"@127.0.0.1:{ports[HUB][1]}")
        homes[name] = root / name
        homes[name].mkdir()
        (homes[name] / "nats-server.conf").write_text(rewrite(name, text))
        (homes[name] / "secrets.conf").write_text(secrets)
    return topology, homes, ports, passwords


@contextmanager
def lab(root: Path, rewrite: Callable[[str, str], str] = lambda _box, text: text
        ) -> Iterator[Lab]:
    topology, homes, ports, passwords = _configs(root, rewrite)
    servers: dict[str, Server] = {}
    try:
        for box in BOXES:
            server = topology.server_on(box)
            assert server is not None
            with (homes[box] / "nats.log").open("wb") as log:
                process = subprocess.Popen(
                    ["nats-server", "-c", str(homes[box] / "nats-server.conf")],
                    cwd=homes[box], stdout=log, stderr=subprocess.STDOUT)
            servers[box] = Server(box, server.domain, ports[box][0], ports[box][2], process)
        for server in servers.values():
            wait_for(functools.partial(_healthy, server), f"nats-server {server.box}")
        # Linked, and each side holds the other's JetStream API interest: a source created
        # before it would wait for JetStream's retry (seconds).
        wait_for(functools.partial(_linked, servers), "both edge leaves linked to the hub")
        yield Lab(topology, servers, passwords)
    finally:
        for server in servers.values():
            server.process.terminate()
        for server in servers.values():
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


async def _seed_registry(hub: Client) -> None:
    """A model in the hub's registry before the edges' copies start sourcing it. Not one put
    after: a copy sometimes misses a message the hub's registry stores shortly after the
    copy's consumer was created (nats-server 2.9.10; without any leaf permissions as well,
    about 1 run in 40): that is not what this test is about."""
    registry = hub.jetstream(domain="hub")
    await (await registry.object_store("dna_models")).put("speed/0", b"weights-0")
    await (await registry.key_value("dna_models_meta")).put("seed", b'{"version":0}')


async def _provision(lab: Lab) -> None:
    """The plan's streams through the JetStream API, the dna role's way: ponds first, then
    the hub's (the lake sources the ponds), then the registry copies (they source the hub's),
    so no source waits for JetStream's retry."""
    def phase(kind: str, box: str) -> int:
        return 0 if kind == "pond" else 1 if box == HUB else 2
    streams = sorted(((s, box) for box in BOXES
                      for s in getattr(lab.topology.server_on(box), "streams", ())),
                     key=lambda item: phase(item[0].kind, item[1]))
    clients = {box: await lab.admin(box) for box in BOXES}
    try:
        seeded = False
        for stream, box in streams:
            if phase(stream.kind, box) == 2 and not seeded:
                await _seed_registry(clients[HUB])
                seeded = True
            reply = await clients[box].request(
                f"$JS.{stream.domain}.API.STREAM.CREATE.{stream.name}",
                json.dumps(stream.api_config()).encode(), timeout=5)
            assert "error" not in json.loads(reply.data), (stream.name, reply.data)
    finally:
        for client in clients.values():
            await client.close()


async def _messages(client: Client, domain: str, stream: str) -> int:
    reply = await client.request(f"$JS.{domain}.API.STREAM.INFO.{stream}", b"", timeout=5)
    info = json.loads(reply.data)
    assert "error" not in info, info
    count: int = info["state"]["messages"]
    return count


def test_the_lake_sources_the_pond_and_each_edge_copies_the_registry(tmp_path: Path) -> None:
    """Both sourcing directions the product uses work within the hub's leaf permissions."""
    with lab(tmp_path) as fleet:
        async def scenario() -> None:
            await _provision(fleet)
            edge, hub = await fleet.admin(EDGE_A), await fleet.admin(HUB)
            copies = {box: await fleet.admin(box) for box in (EDGE_A, EDGE_B)}
            try:
                pond = edge.jetstream(domain="edge-a")
                for seq in range(1, 4):
                    await pond.publish("dna.traffic.edge-a.end-a-1", b"{}",
                                       headers={"Nats-Msg-Id": f"end-a-1:{seq}"})

                async def lake_has_them() -> bool:
                    return await _messages(hub, "hub", "LAKE_TRAFFIC") == 3
                await wait_for_async(lake_has_them, "the lake to source edge-a's 3 samples",
                                     SOURCING)

                # The registry copies source what the hub's registry holds (_seed_registry).
                for box, client in copies.items():
                    site = box.removesuffix("-1")

                    async def copied(client: Client = client, site: str = site) -> bool:
                        return (await _messages(client, site, "OBJ_dna_models") == 2
                                and await _messages(client, site, "KV_dna_models_meta") == 1)
                    await wait_for_async(copied, f"{site}'s registry copy to get model speed/0",
                                         SOURCING)
            finally:
                for client in (edge, hub, *copies.values()):
                    await client.close()
        run(scenario())


REGISTRY = ("$KV.dna_models_meta.speed", "$O.dna_models.M.c3BlZWQ=")
FORBIDDEN = (
    "dna.traffic.edge-b.end-b-1",       # another site's pond
    "dna.traffic.core.x",               # a pond that is no edge's
    "$KV.dna_catalogue.traffic.edge-a",  # the catalogue
    *REGISTRY,
    "dna-lake.edge-b.S.x",              # the lake's deliveries of another site
    "$JS.S.x",                          # JetStream's default deliveries
)
# Admin requests to the hub's JetStream an edge never needs.
FORBIDDEN_API = (
    "$JS.hub.API.STREAM.DELETE.LAKE_TRAFFIC",
    "$JS.hub.API.STREAM.PURGE.KV_dna_catalogue",
    "$JS.hub.API.STREAM.INFO.LAKE_TRAFFIC",
    "$JS.hub.API.CONSUMER.CREATE.LAKE_TRAFFIC",
    "$JS.hub.API.STREAM.MSG.DELETE.OBJ_dna_models",
)


def _without_deny_lists(box: str, text: str) -> str:
    """edge-a's leafnode remote as a compromised box would rewrite it: no deny lists."""
    if box != EDGE_A:
        return text
    lines = [line for line in text.splitlines() if "deny_imports" not in line]
    remote = '    {urls: $DNA_HUB_URLS}'
    at = next(i for i, line in enumerate(lines) if line.strip() == "remotes: [")
    return "\n".join([*lines[:at + 1], remote, *lines[at + 1:]]) + "\n"


def test_a_rewritten_edge_leaf_gets_nothing_else_into_or_out_of_the_hub(
        tmp_path: Path) -> None:
    with lab(tmp_path, _without_deny_lists) as fleet:
        config = (tmp_path / EDGE_A / "nats-server.conf").read_text()
        assert "deny_" not in config and "urls: $DNA_HUB_URLS" in config

        async def scenario() -> None:
            await _provision(fleet)
            edge, hub = await fleet.admin(EDGE_A), await fleet.admin(HUB)
            try:
                await _nothing_else_crosses(edge, hub)
            finally:
                await edge.close()
                await hub.close()
        run(scenario())


class Heard(list[Msg]):
    """The messages a client got; ``arrived`` is set at each one."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()


async def _listen(client: Client, subjects: tuple[str, ...], marker: str) -> Heard:
    """Every message ``client`` gets on ``>`` and on ``subjects`` (literal interest too, not
    only a wildcard's). The marker's subscription comes last: once a marker crosses the
    link, the hub has passed on the interest of all the others."""
    got = Heard()

    async def keep(msg: Msg) -> None:
        got.append(msg)
        got.arrived.set()
    for subject in (">", *subjects, marker):
        await client.subscribe(subject, cb=keep)
    await client.flush()
    return got


async def _marker(sender: Client, receiver: Heard, subject: str, data: bytes) -> None:
    """Publish ``data`` on ``subject`` until ``receiver`` has it (bounded). A publish made
    before the link carries the receiver's interest is dropped: it is sent again when no
    message arrives within half a second."""
    deadline = time.monotonic() + 10
    while not any(m.subject == subject and m.data == data for m in receiver):
        assert time.monotonic() < deadline, f"{subject} never crossed the link"
        receiver.arrived.clear()
        await sender.publish(subject, data)
        await sender.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.arrived.wait(), 0.5)


async def _nothing_else_crosses(edge: Client, hub: Client) -> None:
    at_hub = await _listen(hub, FORBIDDEN, "_INBOX.marker")
    at_edge = await _listen(edge, FORBIDDEN, "$JSC.R.marker")
    await _marker(edge, at_hub, "_INBOX.marker", b"ready")
    await _marker(hub, at_edge, "$JSC.R.marker", b"ready")
    before = {s: await _messages(hub, "hub", s)
              for s in ("KV_dna_catalogue", "OBJ_dna_models", "KV_dna_models_meta",
                        "LAKE_TRAFFIC")}

    # Into the hub: the edge's admin publishes where its leaf may not, then a marker where it
    # may. The link keeps order: anything before the marker that crossed is in by then.
    for subject in FORBIDDEN:
        await edge.publish(subject, b"from-edge-a")
    answers = await asyncio.gather(*(edge.request(subject, b"{}", timeout=1)
                                     for subject in FORBIDDEN_API), return_exceptions=True)
    assert all(isinstance(a, (NoRespondersError, NatsTimeout)) for a in answers), answers
    await _marker(edge, at_hub, "_INBOX.marker", b"from-edge-a")
    assert sorted({m.subject for m in at_hub if m.data == b"from-edge-a"}) == ["_INBOX.marker"]
    assert {s: await _messages(hub, "hub", s) for s in before} == before
    assert before["LAKE_TRAFFIC"] == 0

    # Out of the hub: the leaf receives none of it either (but the registry's subjects: they
    # reach the edge by design, through its copy's sourcing).
    for subject in FORBIDDEN:
        if subject not in REGISTRY:
            await hub.publish(subject, b"from-hub")
    await _marker(hub, at_edge, "$JSC.R.marker", b"from-hub")
    assert sorted({m.subject for m in at_edge if m.data == b"from-hub"}) == ["$JSC.R.marker"]


def test_an_edge_reads_the_hubs_registry_on_its_own_inbox_only(tmp_path: Path) -> None:
    """What an inference server does while its site's copy lags: a message get of the hub's
    registry, answered across the link on the site's inbox prefix and on no other."""
    with lab(tmp_path) as fleet:
        async def ask(user: str, prefix: str) -> bytes:
            client = await nats.connect(fleet.servers[EDGE_A].url, user=user,
                                        password=fleet.passwords[
                                            fleet.topology.credential_of(user, EDGE_A)],
                                        inbox_prefix=prefix,
                                        max_reconnect_attempts=0)
            try:
                hub = client.jetstream(domain="hub", timeout=2)
                msg = await hub.get_last_msg("KV_dna_models_meta", "$KV.dna_models_meta.seed")
                return msg.data or b""
            finally:
                await client.close()

        async def scenario() -> None:
            await _provision(fleet)
            site_user = user_of("edge-a")
            assert await ask(site_user, inbox_prefix("edge-a")) == b'{"version":0}'
            # The edge's admin is unrestricted at its leaf: the hub is what refuses these.
            for prefix in (inbox_prefix("edge-b"), "_INBOX"):
                with pytest.raises(NatsTimeout):
                    await ask(ADMIN_USER, prefix)
        run(scenario())


def test_an_edge_box_holds_no_login_to_the_hubs_admin(tmp_path: Path) -> None:
    """Each JetStream domain's servers have their own admin password: what an edge box
    holds does not log in at the hub."""
    with lab(tmp_path) as fleet:
        edge_admin = fleet.passwords[fleet.topology.credential_of(ADMIN_USER, EDGE_A)]
        for box in BOXES:
            held = "".join(secret_files(fleet.topology, box, fleet.passwords).values())
            hub_admin = fleet.passwords[fleet.topology.credential_of(ADMIN_USER, HUB)]
            assert (hub_admin in held) == (box == HUB), box

        async def scenario() -> None:
            with pytest.raises(nats.errors.Error):
                await nats.connect(fleet.servers[HUB].url, user=ADMIN_USER,
                                   password=edge_admin, max_reconnect_attempts=0,
                                   allow_reconnect=False, connect_timeout=2)
            hub = await fleet.admin(HUB)  # its own admin password still does
            await hub.close()
        run(scenario())
