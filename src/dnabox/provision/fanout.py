"""`dnabox exec`: one command on many boxes at once, output streamed, exit code per box."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dnabox.adapters.ssh import ConnectionPool, RetryPolicy
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Box, Fleet

# One quick retry only: an interactive fan-out should report a dead box, not wait on it.
FANOUT_RETRY = RetryPolicy(attempts=2, first_delay=0.3)


@dataclass(frozen=True)
class ExecResult:
    box: str
    rc: int | None  # None: the box could not be reached
    seconds: float
    error: str = ""


def fan_out(fleet: Fleet, boxes: list[Box], command: str,
            on_line: Callable[[str, str], None], *, parallel: int = 64,
            timeout: float = 600.0) -> list[ExecResult]:
    """Run ``command`` on every box; ``on_line(box, line)`` gets stdout as it arrives."""
    with ConnectionPool(retry=FANOUT_RETRY) as pool:
        return fan_out_over(pool, fleet, boxes, command, on_line, parallel=parallel,
                            timeout=timeout)


def fan_out_over(pool: ConnectionPool, fleet: Fleet, boxes: list[Box], command: str,
                 on_line: Callable[[str, str], None], *, parallel: int = 64,
                 timeout: float = 600.0) -> list[ExecResult]:
    """:func:`fan_out` over connections the caller keeps (the connection agent's pool)."""
    def one(box: Box) -> ExecResult:
        try:
            result = pool.get(box.name, fleet.ssh_for(box)).run(
                command, timeout=timeout, on_output=lambda line: on_line(box.name, line))
        except DnaboxError as exc:
            return ExecResult(box.name, None, 0.0, exc.message)
        for line in result.stderr.splitlines():
            on_line(box.name, line)
        return ExecResult(box.name, result.rc, result.seconds)

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(boxes)))) as executor:
        return list(executor.map(one, boxes))
