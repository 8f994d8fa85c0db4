"""The inference server: answers HTTP requests with the newest model of its site's registry.

It reads the registry mirror in its own site's JetStream domain, so a site cut off from the
core keeps serving the last model it has. A push subscription on the model's meta key wakes
it when a version arrives; a check every few seconds covers a subscription that was lost
(a leaf restart) until it is re-created. The same check also asks the registry the mirror
copies (``registry_origin``, the hub) across the leafnode link: after a leaf reconnect
nats-server 2.9 may wait tens of seconds before its mirror sources again (measured on the
lab), and a newer version the hub already holds is served meanwhile. A cut-off site gets no
answer from the hub and serves what its mirror holds.

    POST /predict {"features": {"hour":..,"occupancy":..,"flow":..,"rain":..}}
      -> {"prediction": 54.2, "label": "speed", "unit": "km/h", "model": "speed",
          "version": 3, "site": "edge-a"}
    GET /healthz -> {"model": "speed", "version": 3, "site": "edge-a", "loaded_at": ...}
    GET /recent  -> {"model": "speed", "site": "edge-a", "recent": [{"at": ..., "version": 3,
          "prediction": 54.2, "features": {...}}, ...]}  (the last answers, newest first)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js import api
from nats.js.errors import NotFoundError

from dnabox.dna.service import main as entry
from dnabox.dna.service.config import ServiceConfig
from dnabox.dna.service.model import SpeedModel
from dnabox.dna.service.nats_io import ModelEntry, RegistryReader, connect, kv_stream
from dnabox.dna.service.samples import LABEL, check_features

log = logging.getLogger("dnabox.dna.inference")
RECHECK_SECONDS = 2.0
# How long a check waits for the hub's registry: a link that is down but not yet noticed
# times out; a link known to be down answers at once (no responders).
ORIGIN_TIMEOUT_SECONDS = 2.0
MAX_BODY = 64 * 1024
# The answers `GET /recent` returns (the view's "last predictions"): features and answers
# only, never anything about the caller.
RECENT = 20


@dataclass(frozen=True)
class Loaded:
    model: SpeedModel
    version: int
    loaded_at: float


class Serving:
    """The model being served; swapped whole, so a request never sees half a version."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._current: Loaded | None = None
        self._lock = threading.Lock()
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)

    @property
    def current(self) -> Loaded | None:
        with self._lock:
            return self._current

    def swap(self, loaded: Loaded) -> None:
        with self._lock:
            self._current = loaded

    def recent(self) -> dict[str, Any]:
        with self._lock:
            answers = list(reversed(self._recent))
        return {"model": self.config.model, "site": self.config.site, "recent": answers}

    def health(self) -> dict[str, Any]:
        now = self.current
        return {"model": self.config.model, "site": self.config.site,
                "version": now.version if now else 0,
                "loaded_at": now.loaded_at if now else None}

    def predict(self, request: object) -> tuple[HTTPStatus, dict[str, Any]]:
        features = request.get("features") if isinstance(request, dict) else None
        try:
            values = check_features(features)
        except ValueError as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        now = self.current
        if now is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, {
                "error": f"no version of {self.config.model} has reached {self.config.site} yet"}
        prediction = round(now.model.predict(values), 3)
        with self._lock:
            self._recent.append({"at": round(time.time(), 3), "version": now.version,
                                 "prediction": prediction, "features": values})
        return HTTPStatus.OK, {"prediction": prediction,
                               "label": LABEL, "unit": "km/h", "model": self.config.model,
                               "version": now.version, "site": self.config.site}


def handler_for(serving: Serving) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dnabox-inference"

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._answer(HTTPStatus.OK, serving.health())
            elif self.path == "/recent":
                self._answer(HTTPStatus.OK, serving.recent())
            else:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/predict":
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
                return
            try:
                request = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self._answer(HTTPStatus.BAD_REQUEST, {"error": "body: not JSON"})
                return
            self._answer(*serving.predict(request))

        def _answer(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would drown the service's own log

    return Handler


class Follower:
    """Loads each new version of the model from the site's registry mirror, or from the
    registry it mirrors while the mirror lags behind it."""

    def __init__(self, config: ServiceConfig, serving: Serving, reader: RegistryReader,
                 origin: RegistryReader | None = None) -> None:
        self.config, self.serving, self.reader, self.origin = config, serving, reader, origin
        self.wake = asyncio.Event()

    async def check(self) -> None:
        source: RegistryReader = self.reader
        try:
            entry_ = await self.reader.latest(self.config.model)
        except (TimeoutError, nats.errors.Error):
            if self.origin is None:
                raise
            entry_ = None  # an unreadable mirror: the origin may still answer
        if self.origin is not None:
            ahead = await self._newer_at(self.origin, entry_)
            if ahead is not None:
                entry_, source = ahead, self.origin
        current = self.serving.current
        if entry_ is None or (current is not None and entry_.version <= current.version):
            return
        try:
            blob = await source.read_object(entry_.meta["object"])
        except (TimeoutError, nats.errors.Error, ValueError, KeyError):
            if self.origin is None or source is self.origin:
                raise
            # The copy has the version's meta but not all of its object (yet): the hub has.
            blob, source = await self.origin.read_object(entry_.meta["object"]), self.origin
        model = SpeedModel.from_json(blob)
        self.serving.swap(Loaded(model, entry_.version, time.time()))
        where = "" if source is self.reader else (
            f" from the {self.config.registry_origin} registry (the site's mirror lags)")
        log.info("serving %s v%d%s", self.config.model, entry_.version, where)

    async def _newer_at(self, origin: RegistryReader,
                        mirrored: ModelEntry | None) -> ModelEntry | None:
        """The origin's newest entry when it is newer than the mirror's, else None (also
        when the origin does not answer: the site is cut off)."""
        try:
            newest = await origin.latest(self.config.model)
        except (TimeoutError, nats.errors.Error):
            return None
        if newest is None or (mirrored is not None and newest.version <= mirrored.version):
            return None
        return newest

    async def subscribe(self) -> None:
        async def on_meta(msg: Msg) -> None:
            self.wake.set()
        await self.reader.js.subscribe(
            self.reader.meta_subject(self.config.model),
            stream=kv_stream(self.config.models_meta_bucket), cb=on_meta,
            ordered_consumer=True, manual_ack=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)

    async def run(self, stop: asyncio.Event) -> None:
        subscribed = False
        while not stop.is_set():
            self.wake.clear()
            try:
                if not subscribed:
                    await self.subscribe()
                    subscribed = True
            except (TimeoutError, nats.errors.Error) as exc:
                # The mirror may not exist yet: the checks below still read what there is.
                log.info("registry push not subscribed yet: %s", type(exc).__name__)
            try:
                await self.check()
            except (TimeoutError, NotFoundError, nats.errors.Error, ValueError, KeyError) as exc:
                # The mirror may not exist yet, or the leaf restarts: keep serving, retry.
                log.info("registry not readable yet: %s", type(exc).__name__)
            waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waits, timeout=RECHECK_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()


def start_http(config: ServiceConfig, serving: Serving) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(config.bind_address(), handler_for(serving))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


async def _body(config: ServiceConfig, args: argparse.Namespace) -> int:
    serving = Serving(config)
    try:
        server = start_http(config, serving)
    except OSError as exc:
        print(f"error: cannot listen on {config.bind}: {exc.strerror}", flush=True)
        return 1
    host, port = server.server_address[:2]
    log.info("listening on %s:%s", host, port)
    client, js = await connect(config, f"dnabox-inference-{config.site}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        reader = RegistryReader(js, config.models_bucket, config.models_meta_bucket)
        origin = RegistryReader(
            client.jetstream(domain=config.registry_origin, timeout=ORIGIN_TIMEOUT_SECONDS),
            config.models_bucket, config.models_meta_bucket) if config.registry_origin else None
        await Follower(config, serving, reader, origin).run(stop)
    finally:
        server.shutdown()
        await client.drain()
    return 0


def main(argv: list[str] | None = None) -> int:
    return entry.run("inference", "Serve the newest model of the site's registry over HTTP.",
                     lambda parser: None, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
