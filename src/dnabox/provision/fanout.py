"""`dnabox exec`: one command on many boxes at once, output streamed, exit code per box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dnabox.adapters.jobs import Job, JobResult, RetryPolicy
from dnabox.adapters.ssh import ConnectionPool
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
    jobs = [Job(box.name, fleet.ssh_for(box), command, timeout=timeout) for box in boxes]

    def stderr_after_stdout(answer: JobResult) -> None:
        if answer.result is not None:
            for line in answer.result.stderr.splitlines():
                on_line(answer.box, line)

    return [ExecResult(a.box, None, 0.0, a.error) if a.result is None
            else ExecResult(a.box, a.result.rc, a.result.seconds)
            for a in pool.run_many(jobs, parallel=parallel, on_line=on_line,
                                   on_result=stderr_after_stdout)]
