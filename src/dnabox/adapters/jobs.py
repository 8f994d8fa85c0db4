"""What a batch of per-box commands is and what it returns, without asyncssh.

The connection agent's client side (`dnabox status`, `up`'s preflight) builds and reads
these; importing :mod:`dnabox.adapters.ssh` (asyncssh: ~0.4 s) waits until a box needs a
connection of the caller's own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dnabox.inventory.model import ResolvedSsh

if TYPE_CHECKING:
    from dnabox.adapters.ssh import BoxConnection, ConnectionPool


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, so a burst of refused connections (a thousand boxes
    answering at once) does not come back as a second burst at the same instant."""

    attempts: int = 4
    first_delay: float = 0.5
    factor: float = 2.0
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]

    def delays(self, rng: random.Random | None = None) -> list[float]:
        pick = (rng or random).uniform
        return [self.first_delay * self.factor**i * pick(1 - self.jitter, 1 + self.jitter)
                for i in range(self.attempts - 1)]


@dataclass(frozen=True)
class Job:
    """One command for one box in a :meth:`ConnectionPool.run_many` batch."""

    box: str
    ssh: ResolvedSsh
    command: str
    stdin: bytes = b""
    timeout: float = 600.0
    # Run in the box's kept shell (dnabox.adapters.kept_shell) rather than a session of its
    # own: only for dnabox's own POSIX sh commands that read no input and are safe to run
    # twice (reads, the lease). Ignored when there is input.
    kept_shell: bool = False


@dataclass(frozen=True)
class JobResult:
    box: str
    result: CommandResult | None
    error: str = ""  # why there is no result (the box could not be reached, ...)
    error_kind: str = ""  # "remote" or "hostkey": what the sync API would have raised


class LazyPool:
    """A :class:`dnabox.adapters.ssh.ConnectionPool` made (and asyncssh imported) on first
    use: a caller whose boxes the connection agent answers for never needs one."""

    def __init__(self, on_retry: Callable[[str, int, str], None] | None = None) -> None:
        self._on_retry = on_retry
        self._pool: ConnectionPool | None = None

    def pool(self) -> ConnectionPool:
        if self._pool is None:
            from dnabox.adapters.ssh import ConnectionPool

            self._pool = ConnectionPool(on_retry=self._on_retry)
        return self._pool

    @property
    def retries(self) -> int:
        return self._pool.retries if self._pool is not None else 0

    def get(self, box: str, ssh: ResolvedSsh) -> BoxConnection:
        return self.pool().get(box, ssh)

    def run_many(self, jobs: list[Job], *, parallel: int = 256) -> list[JobResult]:
        return self.pool().run_many(jobs, parallel=parallel) if jobs else []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> LazyPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
