"""The live view without boxes: snapshot rules, the run bus over a real socket, the server's
API and its token guard (aiohttp's test server on loopback), and the ping parser."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dnabox.inventory import load_fleet
from dnabox.inventory.model import Fleet
from dnabox.locations import Locations
from dnabox.plan.desired import plan_fleet
from dnabox.provision.event_relay import EventRelay, view_socket
from dnabox.provision.events import Event
from dnabox.provision.inspect import BoxReading
from dnabox.provision.remote import BoxFacts, BoxState, RoleDecision
from dnabox.view.bus import EventBus, RunRecord
from dnabox.view.dna import DnaWatch, counters, rates_between
from dnabox.view.links import parse_pings, ping_script
from dnabox.view.server import FleetView, ViewSettings, build_app, is_loopback
from dnabox.view.snapshot import LiveState, box_json, box_state, fleet_json, site_links

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(ROOT / "inventory" / "lab.yaml")


def reading(box: str, *reasons: str, reachable: bool = True) -> BoxReading:
    facts = BoxFacts("h", "6.1", "x86_64", 2, 1024, "debian")
    state = BoxState(facts, {"base": "abc"}) if reachable else None
    decisions = tuple(RoleDecision(f"role{i}", r) for i, r in enumerate(reasons))
    return BoxReading(box, "site", "edge", state, "" if reachable else "refused", decisions)


def test_box_state_shows_the_worst_true_thing() -> None:
    assert box_state(reading("b", "converged"), failed=False, locked=False) == "converged"
    assert box_state(reading("b", "converged", "new"), failed=False, locked=False) == "pending"
    assert box_state(reading("b", "new", "drifted"), failed=False, locked=False) == "drifted"
    assert box_state(reading("b", reachable=False), failed=False, locked=False) == "unreachable"
    assert box_state(reading("b", "converged"), failed=True, locked=False) == "failed"
    assert box_state(reading("b", "converged"), failed=False, locked=True) == "locked"
    assert box_state(None, failed=False, locked=False) == "unknown"


def test_the_box_page_names_the_release_and_the_containerd_it_runs(fleet: Fleet) -> None:
    facts = BoxFacts("edge-a-1", "6.12", "aarch64", 4, 8192, "debian", "trixie",
                     "containerd github.com/containerd/containerd 1.7.24")
    seen = BoxReading("edge-a-1", "edge-a", "edge", BoxState(facts, {}), "", ())
    page = box_json(fleet, "edge-a-1", seen, {}, [])
    assert page["facts"]["release"] == "trixie" and page["facts"]["arch"] == "aarch64"
    assert page["facts"]["containerd"].endswith("1.7.24")
    bare = BoxReading("edge-a-1", "edge-a", "edge", BoxState(BoxFacts(
        "h", "6.1", "x86_64", 2, 1024, "debian"), {}), "", ())
    assert box_json(fleet, "edge-a-1", bare, {}, [])["facts"]["containerd"] == "none"


def test_fleet_json_has_every_box_site_cluster_and_overlay_link(fleet: Fleet) -> None:
    live = LiveState(readings={b.name: reading(b.name, "converged") for b in fleet.boxes})
    live.readings["edge-b-1"] = reading("edge-b-1", "drifted")
    data = fleet_json(fleet, live)
    assert data["schema"] == "dnabox/v1"
    states = {b["name"]: b["state"] for b in data["boxes"]}
    assert set(states) == {b.name for b in fleet.boxes}
    assert states["edge-b-1"] == "drifted" and states["core-1"] == "converged"
    sites = {s["name"]: s for s in data["sites"]}
    assert sites["edge-b"]["state"] == "drifted" and sites["core"]["state"] == "converged"
    pairs = {(link["a"], link["b"]) for link in data["links"]}
    assert pairs == set(site_links(fleet)) and pairs, "the lab's overlay joins its sites"
    assert all(a < b for a, b in pairs)


def test_fleet_json_carries_no_key_material_or_key_paths(fleet: Fleet) -> None:
    text = json.dumps(fleet_json(fleet, LiveState()))
    ssh = fleet.ssh_for(fleet.boxes[0])
    for secret in (ssh.key, ssh.known_hosts):
        if secret:
            assert str(secret) not in text
    assert "PRIVATE KEY" not in text


def test_run_record_folds_progress_and_failures() -> None:
    record = RunRecord("r1", 0.0)
    record.fold({"kind": "run", "status": "started",
                 "data": {"run": "r1", "units": [{"id": "bootstrap:a", "site": "a"},
                                                 {"id": "bootstrap:b", "site": "b"}]}})
    record.fold({"kind": "unit", "status": "started", "unit": "bootstrap:a", "site": "a"})
    assert record.as_json()["sites"]["a"] == {"total": 1, "done": 0, "failed": 0,
                                              "running": "bootstrap:a"}
    record.fold({"kind": "task", "status": "failed", "box": "a-1", "message": "apt failed"})
    record.fold({"kind": "unit", "status": "failed", "unit": "bootstrap:a", "site": "a"})
    record.fold({"kind": "unit", "status": "changed", "unit": "bootstrap:b", "site": "b"})
    record.fold({"kind": "run", "status": "failed"})
    out = record.as_json()
    assert out["status"] == "failed"
    assert out["sites"]["a"]["failed"] == 1 and out["sites"]["b"]["done"] == 1
    assert record.failed_boxes() == {"a-1"}


def test_a_run_feeds_the_view_through_the_relay(tmp_path: Path) -> None:
    """A real Unix socket: the relay (as `dnabox up` uses it) and the bus (as the view)."""

    async def scenario() -> RunRecord:
        bus = EventBus()
        server = await bus.serve(view_socket(tmp_path))
        assert view_socket(tmp_path).stat().st_mode & 0o777 == 0o600
        stream = bus.subscribe()
        seen: list[Event] = []
        relay = await asyncio.to_thread(EventRelay, seen.append, tmp_path)
        assert relay.connected
        relay(Event("run", "started", data={"run": "abc", "units": [{"id": "u", "site": "s"}]}))
        relay(Event("unit", "changed", unit="u", site="s"))
        relay(Event("run", "ok"))
        relay.close()
        topics = []
        while "run" not in topics:  # the bus publishes "run" when the record ends
            topic, _ = await asyncio.wait_for(anext(stream), timeout=10)
            topics.append(topic)
        await stream.aclose()
        server.close()
        assert len(seen) == 3, "the run's own renderer still gets every event"
        return bus.runs[-1]

    record = asyncio.run(scenario())
    assert record.run == "abc" and record.status == "ok" and record.units == {"u": "changed"}


def test_a_relay_without_a_view_is_a_plain_sink(tmp_path: Path) -> None:
    seen: list[Event] = []
    relay = EventRelay(seen.append, tmp_path)
    relay(Event("run", "ok"))
    assert not relay.connected and len(seen) == 1


def test_a_dropped_run_is_interrupted() -> None:
    bus = EventBus()
    record = bus.take({"kind": "run", "status": "started", "data": {"run": "x"}}, None)
    bus.disconnected(record)
    assert record is not None and record.status == "interrupted"


def _view(fleet: Fleet, token: str | None) -> FleetView:
    settings = ViewSettings(fleet=fleet, plans=plan_fleet(fleet, Locations.discover()),
                            state_dir=Path("/nonexistent"), token=token)
    view = FleetView(settings)
    view.live.readings = {b.name: reading(b.name, "converged") for b in fleet.boxes}
    return view


def _serve(view: FleetView, check: object) -> None:
    async def scenario() -> None:
        async with TestClient(TestServer(build_app(view), host="127.0.0.1")) as client:
            await check(client)  # type: ignore[operator]

    asyncio.run(scenario())


def test_api_fleet_and_pages_on_loopback(fleet: Fleet) -> None:
    async def check(client: TestClient) -> None:
        response = await client.get("/api/fleet")
        assert response.status == 200
        assert {b["name"] for b in (await response.json())["boxes"]} == {
            b.name for b in fleet.boxes}
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        page = await (await client.get("/")).text()
        assert "/static/app.js" in page
        assert not re.search(r"(src|href)=\"https?://", page), "no external asset"
        script = await (await client.get("/static/app.js")).text()
        assert "EventSource" in script and "http://" not in script
        assert (await client.get("/static/..%2Fserver.py")).status == 404
        assert (await client.get("/api/box/nope")).status == 404
        runs = await (await client.get("/api/runs")).json()
        assert runs == {"schema": "dnabox/v1", "runs": []}

    _serve(_view(fleet, None), check)


def test_a_non_loopback_view_refuses_requests_without_the_token(fleet: Fleet) -> None:
    token = "t0ken-abc"

    async def check(client: TestClient) -> None:
        assert (await client.get("/api/fleet")).status == 401
        assert (await client.get("/")).status == 401
        assert (await client.get("/api/fleet", headers={
            "Authorization": "Bearer wrong"})).status == 401
        ok = await client.get("/api/fleet", headers={"Authorization": f"Bearer {token}"})
        assert ok.status == 200
        assert token not in await ok.text(), "the token is never served back"
        first = await client.get(f"/?token={token}")
        assert first.status == 200 and first.cookies["dnabox_view"].value == token
        assert (await client.get("/api/fleet")).status == 200, "the cookie carries it on"

    _serve(_view(fleet, token), check)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")


def test_ping_summaries_parse_into_latency_and_loss() -> None:
    output = (
        "@10.1.0.2 --- 10.1.0.2 ping statistics --- 3 packets transmitted, 3 received, "
        "0% packet loss, time 402ms rtt min/avg/max/mdev = 0.051/0.083/0.120/0.028 ms \n"
        "@10.1.0.3 --- 10.1.0.3 ping statistics --- 3 packets transmitted, 0 received, "
        "100% packet loss, time 2040ms \n"
    )
    assert parse_pings(output) == {"10.1.0.2": (0.083, 0.0), "10.1.0.3": (None, 1.0)}
    assert ping_script(["10.1.0.2", "10.1.0.3"]).count("ping -n -q -c 3") == 2


def test_dna_rates_come_from_two_readings_and_a_cut_pond_counts_at_its_edge() -> None:
    before = {"ponds": [{"site": "edge-a", "dataset": "traffic", "samples": 100}],
              "lake": {"by_site": {"edge-a": 90}}}
    after = {"ponds": [{"site": "edge-a", "dataset": "traffic", "samples": None,
                        "cut": True, "samples_at_edge": 160}],
             "lake": {"by_site": {"edge-a": 90}}}
    first, second = counters(before), counters(after)
    assert first == {"pond:edge-a:traffic": 100, "lake:edge-a": 90}
    assert rates_between(first, second, 2.0) == {"pond:edge-a:traffic": 30.0,
                                                 "lake:edge-a": 0.0}
    assert rates_between(first, second, 0) == {}


def test_the_dna_watch_knows_whether_the_fleet_has_the_layer(fleet: Fleet) -> None:
    assert DnaWatch(fleet).enabled, "the lab fleet declares a D-N-A layer"
    bare = fleet.model_copy(update={"dna": None})
    reading = DnaWatch(bare).read()
    assert reading["enabled"] is False and "declares no D-N-A layer" in reading["reason"]
