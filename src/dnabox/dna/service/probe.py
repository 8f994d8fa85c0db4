"""Measurements of the D-N-A data path, for bench/dna (runs where the services run).

    python3 -m dnabox.dna.service.probe --config FILE count STREAM
        {"stream", "messages", "first_seq", "last_seq"}
    python3 -m dnabox.dna.service.probe --config FILE create STREAM
        a file stream keeping the config's samples subject (the benchmark's baseline)
    python3 -m dnabox.dna.service.probe --config FILE latency STREAM [--from-seq N]
        end-to-stream latency of every sample from N on: the stream's own storage time
        minus the sample's publish time ``ts`` (one clock on the lab machine), and the
        ingest rate between the first publish and the last store:
        {"samples", "p50_ms", "p99_ms", "max_ms", "seconds", "rate"}

It uses the config's server, domain and login (the trainer's config reads the lake).
"""

from __future__ import annotations

import argparse
import json

from nats.js import api

from dnabox.dna.service import main as entry
from dnabox.dna.service.config import ServiceConfig
from dnabox.dna.service.nats_io import connect


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def _body(config: ServiceConfig, args: argparse.Namespace) -> int:
    client, js = await connect(config, "dnabox-probe")
    try:
        if args.what == "create":
            await js.add_stream(name=args.stream, subjects=[config.subject],
                                storage=api.StorageType.FILE, duplicate_window=120.0)
            print(json.dumps({"stream": args.stream, "subjects": [config.subject]}))
            return 0
        info = await js.stream_info(args.stream)
        state = info.state
        if args.what == "count":
            print(json.dumps({"stream": args.stream, "messages": state.messages,
                              "first_seq": state.first_seq, "last_seq": state.last_seq}))
            return 0
        start = max(args.from_seq, state.first_seq)
        latencies: list[float] = []
        first_ts, last_stored = float("inf"), 0.0
        if state.last_seq >= start:
            sub = await js.subscribe(
                f"dna.{config.dataset}.>", stream=args.stream, ordered_consumer=True,
                manual_ack=True, config=api.ConsumerConfig(
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start))
            seq = start - 1
            while seq < state.last_seq:
                msg = await sub.next_msg(timeout=10)
                seq = msg.metadata.sequence.stream
                stored = msg.metadata.timestamp.timestamp()
                sent = float(json.loads(msg.data).get("ts", stored))
                latencies.append((stored - sent) * 1000)
                first_ts, last_stored = min(first_ts, sent), max(last_stored, stored)
            await sub.unsubscribe()
        seconds = last_stored - first_ts if latencies else 0.0
        print(json.dumps({
            "stream": args.stream, "samples": len(latencies),
            "p50_ms": round(percentile(latencies, 0.5), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "max_ms": round(max(latencies, default=0.0), 2), "seconds": round(seconds, 3),
            "rate": round(len(latencies) / seconds, 1) if seconds > 0 else 0.0}))
        return 0
    finally:
        await client.drain()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("count", "latency", "create"))
    parser.add_argument("stream")
    parser.add_argument("--from-seq", type=int, default=1)


def main(argv: list[str] | None = None) -> int:
    # Any role's config will do: the probe only needs the server, the domain and the login.
    return entry.run("probe", "Measure a D-N-A stream: count, end-to-stream latency.",
                     _arguments, _body, argv, any_role=True)


if __name__ == "__main__":
    raise SystemExit(main())
