"""The view's web server (aiohttp): pages, the JSON API under /api/, and the live stream.

Read-only: no route changes the fleet. On a loopback bind anyone on this machine may read
it, like `dnabox status`; on any other bind every request needs the token printed once at
start (header ``Authorization: Bearer T``, or ``?token=T`` once, which sets a cookie).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from dnabox.adapters.graphviz import render, topology_dot
from dnabox.adapters.ssh import ConnectionPool
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.plan.desired import BoxPlan
from dnabox.plan.topology import topology_view
from dnabox.provision.event_relay import view_socket
from dnabox.provision.inspect import BoxReading, read_fleet
from dnabox.provision.lock import FleetLock
from dnabox.view import links
from dnabox.view.bus import EventBus, RunRecord
from dnabox.view.dna import DnaWatch
from dnabox.view.snapshot import LiveState, box_json, fleet_json

COOKIE = "dnabox_view"
ASSETS = ("index.html", "app.js", "style.css")
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
# Nothing outside this server: the view works on an air-gapped site.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'; frame-ancestors 'none'")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class ViewSettings:
    fleet: Fleet
    plans: dict[str, BoxPlan]
    state_dir: Path
    token: str | None = None  # None: loopback bind, no token asked
    refresh_seconds: float = 10.0
    links_seconds: float = 15.0
    dna_seconds: float = 5.0
    # Never connect to a box: only the layout and what runs report (a screen away from
    # the fleet's network, or a preview of a fleet that is not built yet).
    offline: bool = False


@dataclass
class FleetView:
    """The server's state: the last readings of the boxes and the run bus."""

    settings: ViewSettings
    bus: EventBus = field(default_factory=EventBus)
    live: LiveState = field(default_factory=LiveState)
    _refreshing: asyncio.Lock = field(default_factory=asyncio.Lock)
    dna: DnaWatch | None = None

    def __post_init__(self) -> None:
        self.dna = DnaWatch(self.settings.fleet)

    @property
    def fleet(self) -> Fleet:
        return self.settings.fleet

    async def refresh(self) -> dict[str, Any]:
        """Read every box once (threads: SSH is blocking) and tell the open pages."""
        if self.settings.offline:
            return self.snapshot()
        async with self._refreshing:
            readings = await asyncio.to_thread(read_fleet, self.fleet, self.settings.plans)
            self.live.readings = {r.box: r for r in readings}
            self.live.failed = self.bus.last_failed_boxes() - {
                r.box for r in readings if r.state is not None and not any(
                    d.needs_run for d in r.decisions)}
            self.live.locked = FleetLock.held_elsewhere(self.settings.state_dir)
            self.live.read_at = time.time()
            snapshot = self.snapshot()
            self.bus.publish("fleet", snapshot)
            return snapshot

    async def measure_links(self) -> None:
        def measure() -> None:
            with ConnectionPool() as pool:
                self.live.links = links.measure(self.fleet, pool)
        await asyncio.to_thread(measure)
        self.bus.publish("fleet", self.snapshot())

    async def read_dna(self) -> dict[str, Any]:
        """The D-N-A layer now (threads: SSH), told to the open pages as a `dna` event."""
        assert self.dna is not None
        if self.settings.offline:
            return {"schema": "dnabox/v1", "enabled": False, "reason": "offline"}
        reading = await asyncio.to_thread(self.dna.read)
        self.bus.publish("dna", reading)
        return reading

    def snapshot(self) -> dict[str, Any]:
        return {**fleet_json(self.fleet, self.live), "offline": self.settings.offline}

    async def read_box(self, name: str) -> dict[str, Any]:
        readings = [] if self.settings.offline else await asyncio.to_thread(
            read_fleet, self.fleet, self.settings.plans, with_diffs=True, boxes=[name])
        reading: BoxReading | None = readings[0] if readings else None
        plan = self.settings.plans.get(name)  # none offline: nothing is compared
        desired = plan.fingerprints if plan else {}
        events = [e for run in self.bus.runs for e in run.events]
        return box_json(self.fleet, name, reading, desired, events)


def _authorised(request: web.Request, token: str) -> bool:
    offered = [request.cookies.get(COOKIE, ""), request.query.get("token", "")]
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        offered.append(header[len("Bearer "):])
    return any(o and hmac.compare_digest(o.encode(), token.encode()) for o in offered)


def _middlewares(token: str | None) -> list[Callable[..., Any]]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and not _authorised(request, token):
            return web.json_response({"error": "a token is required on this bind"},
                                     status=401)
        response = await handler(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        if token is not None and request.query.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    return [guard]


def _asset(name: str) -> bytes:
    return resources.files("dnabox.view").joinpath("assets", name).read_bytes()


def build_app(view: FleetView) -> web.Application:
    app = web.Application(middlewares=_middlewares(view.settings.token))
    routes = web.RouteTableDef()

    @routes.get("/")
    async def index(_: web.Request) -> web.Response:
        return web.Response(body=_asset("index.html"), content_type="text/html")

    @routes.get("/static/{name}")
    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name),
                            content_type=CONTENT_TYPES[Path(name).suffix])

    @routes.get("/api/fleet")
    async def fleet(_: web.Request) -> web.Response:
        return web.json_response(view.snapshot())

    @routes.post("/api/refresh")
    async def refresh(_: web.Request) -> web.Response:
        """Re-read the boxes (reads only: the fleet is never changed from the view)."""
        return web.json_response(await view.refresh())

    @routes.get("/api/box/{name}")
    async def box(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in {b.name for b in view.fleet.boxes}:
            return web.json_response({"error": f"no box named {name}"}, status=404)
        return web.json_response(await view.read_box(name))

    @routes.get("/api/runs")
    async def runs(_: web.Request) -> web.Response:
        return web.json_response({"schema": "dnabox/v1",
                                  "runs": [r.as_json() for r in reversed(view.bus.runs)]})

    @routes.get("/api/dna")
    async def dna(_: web.Request) -> web.Response:
        assert view.dna is not None
        return web.json_response(view.dna.last or await view.read_dna())

    @routes.get("/api/topology.svg")
    async def topology(request: web.Request) -> web.Response:
        """The drawing; ``?expand=SITE`` (repeatable) opens collapsed sites."""
        expand = request.query.getall("expand", [])
        known = {s.name for s in view.fleet.sites}
        if any(site not in known for site in expand):
            return web.json_response({"error": "no such site"}, status=404)
        svg = await asyncio.to_thread(_topology_svg, view.fleet, expand)
        return web.Response(text=svg, content_type="image/svg+xml")

    @routes.get("/api/events")
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        await _send(response, "fleet", view.snapshot())
        stream = view.bus.subscribe()
        try:
            while True:
                try:
                    topic, payload = await asyncio.wait_for(anext(stream), timeout=15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                await _send(response, topic, payload)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            await stream.aclose()
        return response

    app.add_routes(routes)
    return app


async def _send(response: web.StreamResponse, topic: str, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, default=str)
    await response.write(f"event: {topic}\ndata: {data}\n\n".encode())


def _topology_svg(fleet: Fleet, expand: list[str]) -> str:
    with tempfile.TemporaryDirectory() as work:
        output = Path(work) / "topology.svg"
        render(topology_dot(topology_view(fleet, expand=expand)), output)
        return output.read_text(encoding="utf-8")


async def _every(seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
    while True:
        # A reading that fails (a box down, a layer half-built) is retried next period:
        # the view must outlive whatever the fleet is going through.
        with contextlib.suppress(Exception):
            await job()
        await asyncio.sleep(seconds)  # a period between reads of the boxes, not a sync


async def serve(view: FleetView, bind: str, port: int,
                ready: Callable[[str], None]) -> None:
    """Serve until cancelled: the run socket, the refresh loops and the HTTP server."""
    settings = view.settings
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket_path = view_socket(settings.state_dir)
    if socket_path.exists() and _answers(socket_path):
        raise DnaboxError(f"another `dnabox view` serves fleet {view.fleet.name}",
                          hint=f"its run socket is {socket_path}")
    runs_server = await view.bus.serve(socket_path)
    loop = asyncio.get_running_loop()

    pending: set[asyncio.Task[Any]] = set()

    def after_run(_: RunRecord) -> None:
        task = loop.create_task(view.refresh())  # the run changed the boxes: read them now
        pending.add(task)
        task.add_done_callback(pending.discard)

    view.bus.on_run_end.append(after_run)
    runner = web.AppRunner(build_app(view), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, bind, port)
    await site.start()
    bound = runner.addresses[0]
    ready(f"http://{bind if ':' not in bind else f'[{bind}]'}:{bound[1]}/")
    tasks = [] if settings.offline else [
        asyncio.create_task(_every(settings.refresh_seconds, view.refresh)),
        asyncio.create_task(_every(settings.links_seconds, view.measure_links))]
    if view.dna is not None and view.dna.enabled and not settings.offline:
        tasks.append(asyncio.create_task(_every(settings.dna_seconds, view.read_dna)))
    try:
        await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()
        runs_server.close()
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        await runner.cleanup()


def _answers(path: Path) -> bool:
    import socket

    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()
