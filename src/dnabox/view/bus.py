"""Runs as they happen: `dnabox up` writes its events to the view's socket; the bus keeps
the current and the last runs and fans every event out to the open pages.

The socket lives in the fleet's 0700 state dir and is itself 0600: only the operator's
own runs can feed the view.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINAL = {"ok", "changed", "skipped", "failed", "blocked"}
KEPT_RUNS = 10
KEPT_EVENTS = 2000


@dataclass
class RunRecord:
    """One `dnabox up`, folded from its events: per-site progress and the failures."""

    run: str
    started_at: float
    units: dict[str, str] = field(default_factory=dict)  # unit -> last status
    site_of: dict[str, str] = field(default_factory=dict)
    running: dict[str, str] = field(default_factory=dict)  # site -> unit running there
    failures: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"  # running | ok | failed | interrupted
    finished_at: float | None = None
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEPT_EVENTS))

    def fold(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        kind, status = event.get("kind"), event.get("status")
        if kind == "run" and status == "started":
            for unit in event.get("data", {}).get("units", []):
                self.units.setdefault(str(unit.get("id")), "planned")
                self.site_of.setdefault(str(unit.get("id")), str(unit.get("site") or ""))
        elif kind == "run":
            self.status = "ok" if status == "ok" else "failed"
            self.finished_at = event.get("at", time.time())
        elif kind == "unit":
            unit, site = str(event.get("unit", "")), str(event.get("site", ""))
            self.units[unit] = str(status)
            self.site_of.setdefault(unit, site)
            if status == "started":
                self.running[site] = unit
            elif self.running.get(site) == unit:
                del self.running[site]
            if status in {"failed", "blocked"}:
                self.failures.append({"unit": unit, "message": event.get("message", "")})
        elif status == "failed" and event.get("box"):
            self.failures.append({"box": event["box"], "message": event.get("message", "")})

    def failed_boxes(self) -> set[str]:
        return {str(f["box"]) for f in self.failures if "box" in f}

    def as_json(self, *, with_events: bool = False) -> dict[str, Any]:
        sites: dict[str, dict[str, Any]] = {}
        for unit, status in self.units.items():
            site = self.site_of.get(unit) or "(fleet)"
            entry = sites.setdefault(site, {"total": 0, "done": 0, "failed": 0,
                                            "running": None})
            entry["total"] += 1
            entry["done"] += status in FINAL
            entry["failed"] += status in {"failed", "blocked"}
        for site, unit in self.running.items():
            sites.setdefault(site or "(fleet)", {"total": 0, "done": 0, "failed": 0,
                                                 "running": None})["running"] = unit
        out: dict[str, Any] = {
            "run": self.run, "status": self.status, "started_at": self.started_at,
            "finished_at": self.finished_at, "sites": sites, "failures": self.failures[-50:],
        }
        if with_events:
            out["events"] = list(self.events)
        return out


class EventBus:
    """Fold run events into records and hand every event to each subscriber's queue."""

    def __init__(self) -> None:
        self.runs: deque[RunRecord] = deque(maxlen=KEPT_RUNS)
        self._subscribers: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self.on_run_end: list[Callable[[RunRecord], None]] = []

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.qsize() < 1000:  # a page that stopped reading loses events, not memory
                queue.put_nowait((topic, payload))

    async def subscribe(self) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    def take(self, event: dict[str, Any], record: RunRecord | None) -> RunRecord | None:
        """Fold one event of a run connection; returns the connection's run record."""
        if event.get("kind") == "run" and event.get("status") == "started":
            record = RunRecord(run=str(event.get("data", {}).get("run", "?")),
                               started_at=float(event.get("at", time.time())))
            self.runs.append(record)
        if record is None:
            return None
        record.fold(event)
        self.publish("event", {"run": record.run, **event})
        if record.status != "running":
            self._ended(record)
        return record

    def disconnected(self, record: RunRecord | None) -> None:
        if record is not None and record.status == "running":
            record.status = "interrupted"
            record.finished_at = time.time()
            self._ended(record)

    def _ended(self, record: RunRecord) -> None:
        self.publish("run", record.as_json())
        for callback in self.on_run_end:
            callback(record)

    def last_failed_boxes(self) -> set[str]:
        finished = [r for r in self.runs if r.status != "running"]
        return finished[-1].failed_boxes() if finished else set()

    async def serve(self, path: Path) -> asyncio.AbstractServer:
        """Listen on ``path`` (0600) for runs; each connection is one run's event lines."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(self._connection, path=str(path),
                                                     limit=1 << 20)
        finally:
            os.umask(old_umask)
        return server

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        record: RunRecord | None = None
        try:
            while line := await reader.readline():
                if not line.endswith(b"\n"):
                    break  # a torn last line: the run dropped the view mid-write
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(event, dict):
                    record = self.take(event, record)
        except (ConnectionError, ValueError):
            pass
        finally:
            self.disconnected(record)
            writer.close()
