"""Start, query and stop a fleet's connection agent (standard library only)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from dnabox.provision.agent.protocol import (
    LOG_NAME,
    Message,
    ask,
    connect,
    persist_seconds,
    socket_path,
)


def is_running(state_dir: str) -> bool:
    path = socket_path(state_dir)
    sock = connect(path, 1.0) if path else None
    if sock is None:
        return False
    sock.close()
    return True


def start_in_background(inventory: str, state_dir: str) -> int | None:
    """Start the agent for ``inventory`` unless one runs or ``DNABOX_AGENT_PERSIST=0``.

    Returns the new process id (None: not started). The agent is its own session with its
    output in ``agent.log``, so it outlives this command and holds none of its pipes open.
    """
    persist = persist_seconds()
    if persist <= 0 or socket_path(state_dir) is None or is_running(state_dir):
        return None
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    log = os.open(os.path.join(state_dir, LOG_NAME), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                  0o600)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "dnabox.provision.agent.server", "--inventory",
             os.path.abspath(inventory), "--state-dir", state_dir, "--persist", str(persist)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            close_fds=True)
    finally:
        os.close(log)
    return process.pid


def status(state_dir: str) -> Message | None:
    path = socket_path(state_dir)
    answer = ask(path, {"op": "status"}) if path else None
    return answer if answer and answer.get("t") == "status" else None


def stop(state_dir: str, wait: float = 10.0) -> int | None:
    """Ask the agent to exit and wait until it did; its process id (None: none was running)."""
    current = status(state_dir)
    path = socket_path(state_dir)
    if current is None or path is None:
        return None
    pid = int(current["pid"])
    ask(path, {"op": "stop"})
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and (is_running(state_dir) or process_alive(pid)):
        time.sleep(0.05)
    return pid


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
