"""Coalesce concurrent Ansible requests into as few ansible-playbook processes as cores.

Every ansible-playbook controller costs a core while it runs (its strategy loop polls its
workers), so one controller per site shard on a 2-core machine ran a fresh 20-box fleet
1.65x slower than one plain ansible-playbook (measured, docs/PERFORMANCE.md). Site shards
still ask for their own boxes; requests for the same roles that are waiting at the same
time share one run, and at most ``slots`` runs go at once. A failing host never stops the
others inside one run, so isolation per site is kept: each shard gets its own hosts' stats.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dnabox.adapters.ansible import HostStats

RunBatch = Callable[[tuple[str, ...], list[str], str], dict[str, HostStats]]


@dataclass(eq=False)
class _Request:
    roles: tuple[str, ...]
    boxes: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    stats: dict[str, HostStats] = field(default_factory=dict)
    error: BaseException | None = None


class AnsibleBatcher:
    def __init__(self, run_batch: RunBatch, slots: int, window: float = 0.25) -> None:
        self._run_batch = run_batch
        self._slots = threading.BoundedSemaphore(max(1, slots))
        self._window = window
        self._pending: list[_Request] = []
        self._lock = threading.Lock()
        self._labels = itertools.count(1)

    def run(self, roles: Sequence[str], boxes: Sequence[str]) -> dict[str, HostStats]:
        """Run ``roles`` on ``boxes`` (possibly together with other waiting requests)."""
        request = _Request(tuple(roles), list(boxes))
        with self._lock:
            self._pending.append(request)
        # Shards that become ready together (a fresh fleet's preflights) join one run.
        time.sleep(self._window)
        while not request.done.is_set():
            if not self._slots.acquire(timeout=0.05):
                continue
            try:
                with self._lock:
                    batch = [r for r in self._pending if r.roles == request.roles] if (
                        request in self._pending) else []
                    for taken in batch:
                        self._pending.remove(taken)
                if batch:
                    self._execute(batch)
            finally:
                self._slots.release()
            request.done.wait(0.05)
        if request.error is not None:
            raise request.error
        return request.stats

    def _execute(self, batch: list[_Request]) -> None:
        boxes = [box for r in batch for box in r.boxes]
        try:
            stats = self._run_batch(batch[0].roles, boxes, f"batch-{next(self._labels)}")
        except BaseException as exc:  # handed to every waiting shard, re-raised there
            for r in batch:
                r.error = exc
                r.done.set()
            return
        for r in batch:
            r.stats = {box: stats[box] for box in r.boxes if box in stats}
            r.done.set()
