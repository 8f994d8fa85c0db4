"""How `dnabox exec` prints: one module for the full CLI and the agent fast path alike.

Standard library only (the fast path must not load rich), and plain writes rather than a
rich console, so both paths print byte-for-byte the same lines and never wrap an error.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dnabox.cli.envelope import write


class Outcome(Protocol):
    @property
    def box(self) -> str: ...
    @property
    def rc(self) -> int | None: ...
    @property
    def seconds(self) -> float: ...
    @property
    def error(self) -> str: ...


@dataclass(frozen=True)
class BoxOutcome:
    """One box's result as the agent reports it (the fast path has no ExecResult)."""

    box: str
    rc: int | None
    seconds: float
    error: str = ""


def command_line(cmd: Sequence[str]) -> str:
    """What the boxes' shells run: words quoted when there are several, as typed when one."""
    import shlex  # only here: the fast path needs it once, the import costs a few ms

    return shlex.join(cmd) if len(cmd) > 1 else cmd[0]


class ExecPrinter:
    """Streams ``box | line`` to stdout (or collects lines for --json), then the summary."""

    def __init__(self, names: Sequence[str], json_output: bool) -> None:
        self.width = max(len(name) for name in names)
        self.json_output = json_output
        self.collected: dict[str, list[str]] = {name: [] for name in names}
        self._lock = threading.Lock()

    def line(self, box: str, line: str) -> None:
        with self._lock:
            if self.json_output:
                self.collected[box].append(line)
            else:
                sys.stdout.write(f"{box:<{self.width}} | {line}\n")
                sys.stdout.flush()

    def finish(self, results: Sequence[Outcome]) -> int:
        """Print the JSON document or the summary; the exit code (1: a box failed)."""
        if self.json_output:
            write("exec", {"boxes": [{"name": r.box, "rc": r.rc, "seconds": round(r.seconds, 3),
                                      "error": r.error or None, "output": self.collected[r.box]}
                                     for r in results]})
        else:
            for r in results:
                if r.rc != 0:
                    failure = f"exit {r.rc}" if r.rc is not None else r.error
                    sys.stderr.write(f"{r.box}: {failure}\n")
            ok = sum(1 for r in results if r.rc == 0)
            sys.stderr.write(f"{ok}/{len(results)} boxes succeeded\n")
        sys.stdout.flush()
        sys.stderr.flush()
        return 1 if any(r.rc != 0 for r in results) else 0
