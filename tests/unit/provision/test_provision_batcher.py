"""Concurrent shards share Ansible runs, never more runs at once than slots."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dnabox.adapters.ansible import HostStats
from dnabox.provision.batcher import AnsibleBatcher

OK = HostStats(ok=3, changed=1, failed=0, unreachable=0, skipped=0)


class FakeAnsible:
    def __init__(self, delay: float = 0.1) -> None:
        self.runs: list[tuple[tuple[str, ...], list[str]]] = []
        self.active = 0
        self.peak = 0
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, roles: tuple[str, ...], boxes: list[str], label: str) -> dict[str,
                                                                                    HostStats]:
        with self.lock:
            self.runs.append((roles, sorted(boxes)))
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
        if "boom" in boxes:
            raise RuntimeError("ansible-runner crashed")
        return {box: OK for box in boxes}


def test_shards_ready_together_share_one_run() -> None:
    fake = FakeAnsible()
    batcher = AnsibleBatcher(fake, slots=2, window=0.1)
    shards = [["a-1", "a-2"], ["b-1"], ["c-1", "c-2"]]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda boxes: batcher.run(("base", "ovs"), boxes), shards))
    assert fake.runs == [(("base", "ovs"), ["a-1", "a-2", "b-1", "c-1", "c-2"])]
    assert [sorted(r) for r in results] == [sorted(s) for s in shards], "each shard: its boxes"


def test_different_roles_run_apart_within_the_slots() -> None:
    fake = FakeAnsible(delay=0.2)
    batcher = AnsibleBatcher(fake, slots=2, window=0.05)
    requests = [(("base",), ["a"]), (("ovs",), ["b"]), (("cni",), ["c"]), (("base",), ["d"])]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda r: batcher.run(*r), requests))
    assert fake.peak <= 2
    assert sorted(fake.runs) == sorted([(("base",), ["a", "d"]), (("cni",), ["c"]),
                                        (("ovs",), ["b"])])


def test_a_crashed_run_fails_every_shard_in_it() -> None:
    batcher = AnsibleBatcher(FakeAnsible(), slots=1, window=0.05)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(batcher.run, ("base",), boxes) for boxes in (["boom"], ["x"])]
        for future in futures:
            with pytest.raises(RuntimeError, match="crashed"):
                future.result()
