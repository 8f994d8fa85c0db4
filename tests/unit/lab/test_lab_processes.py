"""The lab signals only the processes it started: PID and start time must both match."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from dnabox.lab import processes
from dnabox.lab.processes import Proc


def test_spawned_daemon_is_identified_and_killed(tmp_path: Path) -> None:
    proc = processes.spawn(["sleep", "60"], tmp_path / "log", [])
    assert processes.alive(proc)
    processes.kill(proc)
    assert not processes.alive(proc)
    assert processes.start_time(proc.pid) is None  # reaped: no zombie left


def test_a_reused_pid_is_never_signalled() -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        started = processes.start_time(stranger.pid)
        assert started is not None
        impostor = Proc(pid=stranger.pid, start=started + 1)  # same PID, other process
        assert not processes.alive(impostor)
        processes.kill(impostor)
        time.sleep(0.05)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_spawn_joins_the_given_cgroups_first(tmp_path: Path) -> None:
    # A plain file stands in for cgroup.procs: the wrapper writes its own PID there
    # before it becomes the command.
    procs = tmp_path / "cgroup.procs"
    proc = processes.spawn(["sleep", "60"], tmp_path / "log", [procs])
    try:
        comm = Path(f"/proc/{proc.pid}/comm")
        deadline = time.monotonic() + 5
        # Wait for the wrapper to write its PID and then exec the command (on a loaded
        # machine the file can exist before either has happened).
        while time.monotonic() < deadline and not (
            procs.exists() and procs.read_text().strip() and comm.read_text().strip() == "sleep"
        ):
            time.sleep(0.01)
        assert procs.read_text().strip() == str(proc.pid)
        assert comm.read_text().strip() == "sleep"
    finally:
        processes.kill(proc)
