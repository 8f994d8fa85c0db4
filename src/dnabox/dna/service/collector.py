"""The collector: a road-side sensor on an end device publishing samples to its edge's pond.

Each sample carries the id ``<box>:<seq>`` as its Nats-Msg-Id, so a publish retried after a
lost acknowledgement is stored once (the pond's duplicate window). The sequence continues
across restarts from the larger of the last acknowledged sequence kept in the state dir and
the last sample of this box the pond still holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError

from dnabox.dna.service import main as entry
from dnabox.dna.service.config import ServiceConfig
from dnabox.dna.service.nats_io import connect
from dnabox.dna.service.samples import Sensor, sample_id, seq_of

log = logging.getLogger("dnabox.dna.collector")
BATCH = 256
ACK_TIMEOUT = 5.0


@dataclass
class Report:
    published: int = 0
    first_seq: int = 0
    last_seq: int = 0
    retries: int = 0
    seconds: float = 0.0
    ack_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        acks = sorted(self.ack_ms)
        def pct(p: float) -> float:
            return round(acks[min(len(acks) - 1, int(p * len(acks)))], 2) if acks else 0.0
        return {"published": self.published, "first_seq": self.first_seq,
                "last_seq": self.last_seq, "retries": self.retries,
                "seconds": round(self.seconds, 3),
                "rate": round(self.published / self.seconds, 1) if self.seconds else 0.0,
                "ack_ms_p50": pct(0.5), "ack_ms_p99": pct(0.99)}


def state_file(config: ServiceConfig) -> Path:
    return Path(config.state_dir) / f"collector-{config.dataset}-{config.box}.seq"


def stored_seq(config: ServiceConfig) -> int:
    try:
        return int(state_file(config).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def store_seq(config: ServiceConfig, seq: int) -> None:
    path = state_file(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(f"{seq}\n")
        partial.replace(path)
    except OSError as exc:
        log.warning("cannot keep the sequence in %s: %s", path, exc.strerror)


async def pond_seq(js: JetStreamContext, config: ServiceConfig) -> int:
    """The sequence of this box's last sample in the pond (0 when it holds none)."""
    try:
        msg = await js.get_last_msg(config.pond_stream, config.subject)
    except NotFoundError:
        return 0
    return seq_of(json.loads(msg.data or b"{}").get("id", ":0"))


@dataclass
class InFlight:
    """A batch sent whose acknowledgements are still coming: (id, payload, ack) per sample."""
    sent: list[tuple[str, bytes, asyncio.Future[PubAck]]]
    started: float
    last_seq: int


async def send_batch(js: JetStreamContext, config: ServiceConfig,
                     batch: list[tuple[str, bytes]], last_seq: int) -> InFlight:
    """Send every (id, payload) without waiting for its acknowledgement."""
    started = time.monotonic()
    sent = [(ident, payload, await js.publish_async(config.subject, payload,
                                                   headers={"Nats-Msg-Id": ident}))
            for ident, payload in batch]
    return InFlight(sent, started, last_seq)


async def settle(js: JetStreamContext, config: ServiceConfig, flight: InFlight,
                 report: Report) -> None:
    """Wait for every sample of ``flight`` to be acknowledged, re-sending (same id) what is
    not; then count the batch and keep its last sequence."""
    sent, started = flight.sent, flight.started
    while sent:
        await asyncio.wait([ack for _, _, ack in sent], timeout=ACK_TIMEOUT)
        failed = []
        for ident, payload, ack in sent:
            if ack.done() and not ack.cancelled() and ack.exception() is None:
                report.ack_ms.append((time.monotonic() - started) * 1000)
                continue
            # A timeout, no responders, a stream error: re-sent with its id.
            log.debug("no ack for %s", ident)
            if not ack.done():
                ack.cancel()
            failed.append((ident, payload))
        sent = []
        if failed:
            report.retries += len(failed)
            await asyncio.sleep(0.5)
            retry = await send_batch(js, config, failed, flight.last_seq)
            sent, started = retry.sent, retry.started
    report.published += len(flight.sent)
    report.last_seq = flight.last_seq
    store_seq(config, flight.last_seq)


async def publish(config: ServiceConfig, count: int, rate: float) -> Report:
    """Publish ``count`` samples (0: until stopped), at ``rate`` per second (0: at once).

    One batch is in flight while the next is built and sent: waiting for each batch's
    acknowledgements before the next halved the rate a 2-core box reaches.
    """
    client, js = await connect(config, f"dnabox-collector-{config.box}")
    report = Report()
    try:
        sensor = Sensor(config.site, config.box, config.dataset)
        seq = max(stored_seq(config), await pond_seq(js, config))
        report.first_seq = seq + 1
        queued = 0
        in_flight: InFlight | None = None
        started = time.monotonic()
        while count == 0 or queued < count:
            size = BATCH if count == 0 else min(BATCH, count - queued)
            if rate > 0:
                # Pace by the schedule, not by sleeps per sample: a slow ack does not
                # lower the average rate, it only delays the next batch.
                due = started + queued / rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                size = min(size, max(1, int(rate / 10)))
            batch = []
            for _ in range(size):
                seq += 1
                body = sensor.sample(seq, time.time())
                batch.append((sample_id(config.box, seq), json.dumps(body).encode()))
            sent = await send_batch(js, config, batch, seq)
            queued += len(batch)
            if in_flight is not None:
                await settle(js, config, in_flight, report)
            in_flight = sent
        if in_flight is not None:
            await settle(js, config, in_flight, report)
        report.seconds = time.monotonic() - started
    finally:
        await client.drain()
    return report


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=0,
                        help="samples to publish, then exit (0: run until stopped)")
    parser.add_argument("--rate", type=float, default=None,
                        help="samples per second (default: the config's rate; 0: no limit)")


async def _body(config: ServiceConfig, args: argparse.Namespace) -> int:
    rate = config.rate if args.rate is None else args.rate
    report = await publish(config, max(args.count, 0), max(rate, 0.0))
    print(json.dumps(report.as_dict()), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return entry.run("collector", "Publish road-side sensor samples to the site's pond.",
                     _arguments, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
