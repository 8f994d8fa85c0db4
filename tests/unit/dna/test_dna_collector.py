"""The collector's acknowledgement handling against a fake JetStream whose acks we control:
a lost or failed acknowledgement is re-sent under the same id, a batch is counted and its
sequence kept only once every sample in it is acknowledged."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dna_nats import run

from dnabox.dna.service import collector
from dnabox.dna.service.config import ServiceConfig


class FakeJetStream:
    """Answers each publish at once, except the ids in ``fail_once`` the first time (an
    error) and ``lose_once`` the first time (never answered: the ack timeout)."""

    def __init__(self, fail_once: set[str], lose_once: set[str]) -> None:
        self.fail_once, self.lose_once = set(fail_once), set(lose_once)
        self.sent: list[str] = []

    async def publish_async(self, subject: str, payload: bytes,
                            headers: dict[str, str]) -> asyncio.Future[Any]:
        ident = headers["Nats-Msg-Id"]
        self.sent.append(ident)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if ident in self.fail_once:
            self.fail_once.discard(ident)
            future.set_exception(RuntimeError("no responders"))
        elif ident in self.lose_once:
            self.lose_once.discard(ident)  # never resolved
        else:
            future.set_result(object())
        return future


def config(tmp_path: Path) -> ServiceConfig:
    return ServiceConfig(role="collector", site="edge-a", box="end-a-1", dataset="traffic",
                         nats_urls=("nats://127.0.0.1:1",), domain="edge-a",
                         subject="dna.traffic.edge-a.end-a-1", state_dir=str(tmp_path))


def test_failed_and_lost_acks_are_resent_under_their_id(
        tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(collector, "ACK_TIMEOUT", 0.2)
    monkeypatch.setattr(asyncio, "sleep", _no_wait(asyncio.sleep))
    js = FakeJetStream(fail_once={"end-a-1:2"}, lose_once={"end-a-1:3"})
    report = collector.Report()
    conf = config(tmp_path)

    async def scenario() -> None:
        flight = await collector.send_batch(js, conf, [  # type: ignore[arg-type]
            (f"end-a-1:{n}", b"{}") for n in (1, 2, 3, 4)], last_seq=4)
        await collector.settle(js, conf, flight, report)  # type: ignore[arg-type]

    run(scenario())  # not asyncio.run: later Pulumi mock tests need the thread's loop
    assert js.sent[:4] == ["end-a-1:1", "end-a-1:2", "end-a-1:3", "end-a-1:4"]
    assert sorted(js.sent[4:]) == ["end-a-1:2", "end-a-1:3"]  # the same ids, once more
    assert (report.published, report.retries, report.last_seq) == (4, 2, 4)
    assert collector.stored_seq(conf) == 4


def test_an_unacknowledged_batch_is_not_counted_or_kept(tmp_path: Path) -> None:
    js = FakeJetStream(fail_once=set(), lose_once=set())
    conf = config(tmp_path)
    report = collector.Report()

    async def scenario() -> None:
        await collector.send_batch(js, conf, [("end-a-1:1", b"{}")], last_seq=1)  # type: ignore[arg-type]

    run(scenario())  # not asyncio.run: later Pulumi mock tests need the thread's loop
    assert (report.published, collector.stored_seq(conf)) == (0, 0)


def _no_wait(sleep: Any) -> Any:
    async def quick(seconds: float, *args: Any) -> Any:
        return await sleep(0, *args)
    return quick
