"""Processes the lab started, identified by PID *and* start time.

A PID alone may be reused by an unrelated process after a crash or a reboot; the start
time (clock ticks after boot, /proc/PID/stat field 22) makes the identity exact, so the
lab never signals a process it did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

# Joins the cgroups named before `--`, then becomes the command after it: every process
# of a box is in the box's cgroups from its first instruction, so none can escape them.
_JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"'


class Proc(BaseModel):
    pid: int
    start: int


def start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has finished; only its exit status is left
        return None
    return int(fields[19])


def identify(pid: int) -> Proc | None:
    started = start_time(pid)
    return None if started is None else Proc(pid=pid, start=started)


def alive(proc: Proc | None) -> bool:
    return proc is not None and start_time(proc.pid) == proc.start


def kill(proc: Proc | None) -> None:
    if proc is None or not alive(proc):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    reap(proc.pid)


def reap(pid: int, timeout: float = 2.0) -> None:
    """Collect a killed child's exit status, so no zombie is left behind.

    Only matters when the lab runs inside a long-lived process (the test session);
    a process that is not our child is reaped by its own parent.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [int(p) for p in text.split()]


def spawn(argv: Sequence[str], log: Path, cgroup_procs: Sequence[Path]) -> Proc:
    """Start a daemon that outlives this process, inside the given cgroups."""
    with log.open("ab") as out:
        child = subprocess.Popen(
            ["sh", "-c", _JOIN_CGROUPS, "sh", *map(str, cgroup_procs), "--", *argv],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    proc = identify(child.pid)
    # Popen keeps the child in its list and reaps it later; we only need its identity.
    return proc if proc is not None else Proc(pid=child.pid, start=-1)
