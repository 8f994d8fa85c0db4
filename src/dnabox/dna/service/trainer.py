"""The trainer: reads the lake, trains the speed model, publishes it to the registry.

It follows the lake stream from its first message with an ordered consumer and keeps every
sample by id, so a sample that reached the lake twice still counts once. Like KubeEdge
Sedna's IncrementalLearningJob it retrains when ``retrain_every_samples`` new samples arrived
or ``retrain_every_seconds`` passed with new samples, and on request
(``dnabox dna train`` sends ``dna.ctl.<model>.train``). It also keeps the catalogue's
``<dataset>.<site>`` entries in step with what the lake holds.

``--once`` trains on everything the lake holds now, publishes, prints the result and exits.
``--request`` asks the running trainer to do that and prints its answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from dnabox.dna.service import main as entry
from dnabox.dna.service import model as speed_model
from dnabox.dna.service.config import ServiceConfig
from dnabox.dna.service.nats_io import RegistryReader, connect, publish_model

log = logging.getLogger("dnabox.dna.trainer")
CATALOGUE_EVERY = 2.0


def control_subject(model: str) -> str:
    return f"dna.ctl.{model}.train"


@dataclass
class SiteStats:
    samples: int = 0
    bytes: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0


@dataclass
class Lake:
    """Every sample the lake delivered, once per id, and where the consumer stands."""

    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_seq: int = 0
    last_seq: int = 0
    duplicates: int = 0
    sites: dict[str, SiteStats] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, stream_seq: int, subject: str, data: bytes) -> None:
        """Keep one sample; counted under its pond's site (``dna.<dataset>.<pond>.<box>``)."""
        self.first_seq = self.first_seq or stream_seq
        self.last_seq = max(self.last_seq, stream_seq)
        try:
            sample = json.loads(data)
            ident = sample["id"]
        except (ValueError, KeyError, TypeError):
            log.warning("lake message %d is not a sample; skipped", stream_seq)
            return
        if ident in self.samples:
            self.duplicates += 1
            return
        self.samples[ident] = sample
        tokens = subject.split(".")
        pond = tokens[2] if len(tokens) == 4 else str(sample.get("site", ""))
        stats = self.sites.setdefault(pond, SiteStats())
        ts = float(sample.get("ts", 0.0))
        stats.samples += 1
        stats.bytes += len(data)
        stats.first_ts = min(stats.first_ts, ts) if stats.first_ts else ts
        stats.last_ts = max(stats.last_ts, ts)
        self.changed.set()

    def dataset_range(self, stream: str) -> dict[str, Any]:
        stamps = [t for s in self.sites.values() for t in (s.first_ts, s.last_ts)]
        return {"stream": stream, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "samples": len(self.samples),
                "first_ts": min(stamps) if stamps else 0.0,
                "last_ts": max(stamps) if stamps else 0.0,
                "by_site": {site: s.samples for site, s in sorted(self.sites.items())}}


class Trainer:
    def __init__(self, config: ServiceConfig, client: Client, js: JetStreamContext) -> None:
        self.config, self.client, self.js = config, client, js
        self.lake = Lake()
        self.trained_through = 0  # samples the last published version was trained on
        self.lock = asyncio.Lock()

    async def follow_lake(self) -> int:
        """Start consuming the lake; returns the stream's last sequence at start."""
        try:
            info = await self.js.stream_info(self.config.lake_stream)
        except NotFoundError:
            raise SystemExit(f"error: lake stream {self.config.lake_stream} not found in "
                             f"domain {self.config.domain}: is the dna layer provisioned?") \
                from None
        async def on_message(msg: Msg) -> None:
            self.lake.add(msg.metadata.sequence.stream, msg.subject, msg.data)
        await self.js.subscribe(f"dna.{self.config.dataset}.>", stream=self.config.lake_stream,
                                cb=on_message, ordered_consumer=True, manual_ack=True,
                                deliver_policy=api.DeliverPolicy.ALL)
        return int(info.state.last_seq)

    async def caught_up(self, through: int) -> None:
        while self.lake.last_seq < through:
            self.lake.changed.clear()
            await self.lake.changed.wait()

    async def train_and_publish(self) -> dict[str, Any]:
        async with self.lock:
            samples = list(self.lake.samples.values())
            fitted, metric = speed_model.train(samples)
            trained_at = time.time()
            dataset_range = self.lake.dataset_range(self.config.lake_stream)

            def body(version: int) -> tuple[bytes, dict[str, Any]]:
                meta = {"metric": metric.as_dict(), "dataset_range": dataset_range,
                        "trained_at": trained_at, "dataset": self.config.dataset}
                return fitted.to_json({"model": self.config.model, "version": version,
                                       **meta}), meta

            version = await publish_model(self.js, self.config.models_bucket,
                                          self.config.models_meta_bucket, self.config.model, body)
            self.trained_through = len(samples)
            result = {"model": self.config.model, "version": version,
                      "metric": metric.as_dict(), "dataset_range": dataset_range,
                      "trained_at": trained_at}
            log.info("published %s v%d: rmse %.3f on %d held-out samples", self.config.model,
                     version, metric.rmse, metric.held_out)
            return result

    async def resume_point(self) -> None:
        """Samples already covered by the registry's newest version do not trigger again."""
        reader = RegistryReader(self.js, self.config.models_bucket,
                                self.config.models_meta_bucket)
        try:
            entry_ = await reader.latest(self.config.model)
        except NotFoundError:
            entry_ = None
        if entry_ is not None:
            self.trained_through = int(entry_.meta.get("dataset_range", {}).get("samples", 0))

    async def update_catalogue(self, published: dict[str, SiteStats]) -> None:
        kv = await self.js.key_value(self.config.catalogue_bucket)
        for site, stats in sorted(self.lake.sites.items()):
            seen = published.get(site)
            if seen is not None and seen.samples == stats.samples:
                continue
            value = {"dataset": self.config.dataset, "site": site,
                     "samples": stats.samples, "bytes": stats.bytes, "first_ts": stats.first_ts,
                     "last_ts": stats.last_ts, "schema_version": self.config.schema_version,
                     "updated": time.time()}
            await kv.put(f"{self.config.dataset}.{site}", json.dumps(value).encode())
            published[site] = SiteStats(stats.samples, stats.bytes, stats.first_ts,
                                        stats.last_ts)

    def due(self, last_train: float) -> bool:
        new = len(self.lake.samples) - self.trained_through
        every_n, every_t = self.config.retrain_every_samples, self.config.retrain_every_seconds
        if new <= 0:
            return False
        if every_n and new >= every_n:
            return True
        return bool(every_t) and time.monotonic() - last_train >= every_t

    async def watch(self, stop: asyncio.Event) -> None:
        published: dict[str, SiteStats] = {}
        last_train = time.monotonic()
        last_catalogue = 0.0
        while not stop.is_set():
            self.lake.changed.clear()
            if time.monotonic() - last_catalogue >= CATALOGUE_EVERY:
                await self._safely(self.update_catalogue(published), "catalogue update")
                last_catalogue = time.monotonic()
            if self.due(last_train):
                await self._safely(self.train_and_publish(), "training")
                last_train = time.monotonic()
            waits = [asyncio.ensure_future(self.lake.changed.wait()),
                     asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()

    async def _safely(self, work: Any, what: str) -> Any:
        try:
            return await work
        except speed_model.NotEnoughData as exc:
            log.info("%s skipped: %s", what, exc)
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("%s failed: %s; will retry", what, type(exc).__name__)
        return None

    async def serve_requests(self) -> None:
        async def on_request(msg: Msg) -> None:
            try:
                answer: dict[str, Any] = await self.train_and_publish()
            except speed_model.NotEnoughData as exc:
                answer = {"error": f"not enough data in the lake: {exc}"}
            except (TimeoutError, nats.errors.Error) as exc:
                answer = {"error": f"publishing failed: {type(exc).__name__}"}
            await msg.respond(json.dumps(answer).encode())
        await self.client.subscribe(control_subject(self.config.model), cb=on_request)


async def _body(config: ServiceConfig, args: argparse.Namespace) -> int:
    client, js = await connect(config, f"dnabox-trainer-{config.model}")
    try:
        if args.request:
            return await _request(client, config, args.timeout)
        trainer = Trainer(config, client, js)
        through = await trainer.follow_lake()
        await trainer.caught_up(through)
        if args.once:
            try:
                result = await trainer.train_and_publish()
            except speed_model.NotEnoughData as exc:
                print(json.dumps({"error": f"not enough data in the lake: {exc}"}), flush=True)
                return 1
            await trainer.update_catalogue({})
            print(json.dumps(result), flush=True)
            return 0
        await trainer.resume_point()
        await trainer.serve_requests()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("following %s: %d samples, retrain every %d samples / %gs",
                 config.lake_stream, len(trainer.lake.samples), config.retrain_every_samples,
                 config.retrain_every_seconds)
        await trainer.watch(stop)
        return 0
    finally:
        await client.drain()


async def _request(client: Client, config: ServiceConfig, timeout: float) -> int:
    try:
        reply = await client.request(control_subject(config.model), b"", timeout=timeout)
    except nats.errors.NoRespondersError:
        print(json.dumps({"error": f"no trainer of {config.model} is running: is the dna "
                          "layer provisioned?"}), flush=True)
        return 1
    except nats.errors.TimeoutError:
        print(json.dumps({"error": f"the trainer of {config.model} did not answer in "
                          f"{timeout:g}s"}), flush=True)
        return 1
    print(reply.data.decode(), flush=True)
    return 0 if "error" not in json.loads(reply.data) else 1


def _arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true",
                      help="train on what the lake holds now, publish, print JSON, exit")
    mode.add_argument("--request", action="store_true",
                      help="ask the running trainer to train now and print its answer")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds --request waits for the answer")


def main(argv: list[str] | None = None) -> int:
    return entry.run("trainer", "Train the model on the lake and publish it to the registry.",
                     _arguments, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
