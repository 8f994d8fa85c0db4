"""The connection agent on the lab: same answers as the full CLI, kept connections, refusals.

Every test runs dnabox in child processes with its own state dir and the agent enabled
(the session disables it elsewhere); the fixture stops the agent it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dnabox.provision.agent.client import process_alive
from dnabox.provision.agent.protocol import SOCKET_NAME

ROOT = Path(__file__).resolve().parents[2]
FAST = (sys.executable, "-m", "dnabox")  # the entry point that tries the agent first
DNABOX = (sys.executable, "-c", "from dnabox.cli.app import main; main()")  # never the agent
SCRIPT = str(Path(sys.executable).parent / "dnabox")


@dataclass
class Agented:
    lab: Any  # conftest's Lab
    state: Path  # the lab fleet's state dir, where the agent's socket lives
    env: dict[str, str]

    def run(self, argv: tuple[str, ...] | list[str], *args: str,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120,
                              check=False, cwd=ROOT, env={**self.env, **env})

    def fast(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(FAST, "exec", "-i", str(self.lab.inventory), *args)

    def full(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(DNABOX, "exec", "-i", str(self.lab.inventory), *args)

    def status(self) -> dict[str, Any]:
        """The agent's status document, without the envelope every --json output carries."""
        result = self.run(FAST, "agent", "status", "-i", str(self.lab.inventory), "--json")
        document = dict(json.loads(result.stdout))
        assert document.pop("schema") == "dnabox/v1"
        assert document.pop("command") == "agent.status"
        return document

    def wait_for(self, handshakes: int) -> dict[str, Any]:
        """The agent's status once it holds ``handshakes`` (it warms up in the background)."""
        deadline = time.monotonic() + 30
        while True:
            status = self.status()
            if status["running"] and status["handshakes"] >= handshakes:
                return status
            assert time.monotonic() < deadline, f"agent never got ready: {status}"
            time.sleep(0.1)


@pytest.fixture
def agented(lab: Any) -> Iterator[Agented]:
    # A short private base: a Unix socket path must fit in 107 bytes.
    with tempfile.TemporaryDirectory(prefix="dnx-") as base:
        env = {**os.environ, "DNABOX_STATE_DIR": base, "DNABOX_AGENT_PERSIST": "120"}
        handle = Agented(lab, Path(base) / lab.fleet.name, env)
        try:
            yield handle
        finally:
            _stop(handle)


def _stop(handle: Agented) -> None:
    """Stop the agent these tests started; SIGTERM its pid only if `agent stop` failed."""
    status = handle.status()
    handle.run(FAST, "agent", "stop", "-i", str(handle.lab.inventory))
    if status["running"] and process_alive(status["pid"]):
        os.kill(status["pid"], signal.SIGTERM)
        pytest.fail(f"agent {status['pid']} survived `dnabox agent stop`")


def _without_seconds(stdout: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in box.items() if k != "seconds"}
            for box in json.loads(stdout)["boxes"]]


def test_fast_path_answers_exactly_like_the_full_cli(agented: Agented) -> None:
    first = agented.full("--", "true")  # the full path runs, then starts the agent
    assert first.returncode == 0, first.stderr
    before = agented.wait_for(handshakes=len(agented.lab.fleet.boxes))
    command = ["--", 'echo "out $(hostname)"; echo err >&2; test "$(hostname)" != core-1']
    for args in (["--json", *command], command, ["--tier", "edge", "--", "cat /etc/hostname"]):
        fast, full = agented.fast(*args), agented.full(*args)
        assert fast.returncode == full.returncode
        assert fast.stderr == full.stderr
        if "--json" in args:
            assert _without_seconds(fast.stdout) == _without_seconds(full.stdout)
        else:  # boxes answer in any order; each line is whole
            assert sorted(fast.stdout.splitlines()) == sorted(full.stdout.splitlines())
    assert fast.returncode == 0 and len(fast.stdout.splitlines()) == 2
    again = _without_seconds(agented.fast("--json", *command).stdout)
    json_rc = {b["name"]: b["rc"] for b in again}
    assert json_rc == {"core-1": 1, "edge-a-1": 0, "edge-b-1": 0, "end-a-1": 0}
    assert agented.status()["requests"] == before["requests"] + 4  # the fast path used it


def test_second_exec_reuses_the_kept_connections(agented: Agented) -> None:
    agented.full("--", "true")
    before = agented.wait_for(handshakes=len(agented.lab.fleet.boxes))
    for argv in (FAST, (SCRIPT,)):  # `python -m dnabox` and the `dnabox` script alike
        result = agented.run(argv, "exec", "-i", str(agented.lab.inventory), "--", "uptime")
        assert result.returncode == 0, result.stderr
    after = agented.status()
    assert after["requests"] == before["requests"] + 2
    assert after["handshakes"] == before["handshakes"]  # no new SSH handshake
    assert after["connections"] == len(agented.lab.fleet.boxes)


def test_status_reads_through_the_kept_shells_exactly_like_its_own_connections(
        agented: Agented) -> None:
    inventory = str(agented.lab.inventory)
    own = agented.run(DNABOX, "status", "-i", inventory, "--json",
                      DNABOX_AGENT_PERSIST="0")  # no agent: a connection of its own each
    # 1: some box is not converged (this module's lab may not have run `up` yet).
    assert own.returncode in (0, 1), own.stderr
    assert len(json.loads(own.stdout)["boxes"]) == len(agented.lab.fleet.boxes)
    agented.full("--", "true")
    before = agented.wait_for(handshakes=len(agented.lab.fleet.boxes))
    boxes = len(agented.lab.fleet.boxes)
    answers = [agented.run(DNABOX, "status", "-i", inventory, "--json") for _ in range(2)]
    after = agented.status()
    for answer in answers:
        assert answer.returncode == own.returncode, answer.stderr
        assert json.loads(answer.stdout)["boxes"] == json.loads(own.stdout)["boxes"]
    # Both reads ran in the boxes' kept shells, over the connections already held.
    assert after["kept_shell_commands"] - before["kept_shell_commands"] == 2 * boxes
    assert after["handshakes"] == before["handshakes"]


def test_changed_host_key_is_refused_even_with_kept_connections(agented: Agented,
                                                                tmp_path: Path) -> None:
    agented.full("--", "true")
    agented.wait_for(handshakes=len(agented.lab.fleet.boxes))
    core = agented.lab.fleet.ssh_for(agented.lab.fleet.box("core-1")).host
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(tmp_path / "impostor")], check=True)
    impostor = " ".join((tmp_path / "impostor.pub").read_text().split()[:2])
    known_hosts = Path(agented.lab.fleet.defaults.ssh.known_hosts or "")
    (tmp_path / "known_hosts").write_text("".join(
        f"{line.split()[0]} {impostor}\n" if line.split()[0] in {core, f"[{core}]:22"}
        else f"{line}\n" for line in known_hosts.read_text().splitlines()))
    data = yaml.safe_load(agented.lab.inventory.read_text())
    data["defaults"]["ssh"]["known_hosts"] = str(tmp_path / "known_hosts")
    swapped = tmp_path / "lab.yaml"
    swapped.write_text(yaml.safe_dump(data))
    requests = agented.status()["requests"]
    fast = agented.run(FAST, "exec", "-i", str(swapped), "--json", "--", "true")
    assert agented.status()["requests"] == requests + 1  # answered by the agent
    boxes = {b["name"]: b for b in json.loads(fast.stdout)["boxes"]}
    assert fast.returncode == 1
    assert boxes["core-1"]["rc"] is None and "CHANGED host key" in boxes["core-1"]["error"]
    assert boxes["edge-a-1"]["rc"] == 0
    full = agented.run(DNABOX, "exec", "-i", str(swapped), "--json", "--", "true")
    assert _without_seconds(full.stdout) == _without_seconds(fast.stdout)


def test_stop_and_idle_timeout_end_the_agent(agented: Agented) -> None:
    agented.full("--", "true")
    pid = agented.wait_for(handshakes=1)["pid"]
    stopped = agented.run(FAST, "agent", "stop", "-i", str(agented.lab.inventory))
    assert stopped.stdout.strip() == f"stopped agent {pid}"
    assert not process_alive(pid) and not (agented.state / SOCKET_NAME).exists()
    assert agented.status() == {"running": False}
    agented.run(DNABOX, "exec", "-i", str(agented.lab.inventory), "--", "true",
                DNABOX_AGENT_PERSIST="3")
    pid = agented.wait_for(handshakes=0)["pid"]
    deadline = time.monotonic() + 15
    while process_alive(pid):
        assert time.monotonic() < deadline, "the idle agent did not exit"
        time.sleep(0.2)
    assert agented.status() == {"running": False}


PEER_PROBE = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect(sys.argv[1])
except OSError as exc:
    print(type(exc).__name__); sys.exit()
sock.sendall(b'{"v": 1, "op": "status"}\\n')
print(sock.makefile().readline().strip())
"""


def test_another_uid_is_refused(agented: Agented) -> None:
    agented.full("--", "true")
    agented.wait_for(handshakes=1)
    socket_path = agented.state / SOCKET_NAME
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
              "/usr/bin/python3", "-c", PEER_PROBE, str(socket_path)]
    # File permissions refuse first: the state dir is 0700, the socket 0600.
    assert agented.run(nobody).stdout.strip() == "PermissionError"
    assert agented.fast("--", "true").returncode == 0  # its owner still gets in
    # Opened up on purpose, the agent's own uid check (SO_PEERCRED) still refuses.
    opened = [agented.state.parent, agented.state, socket_path]
    modes = [p.stat().st_mode & 0o777 for p in opened]
    try:
        for path in opened:
            path.chmod(0o777)
        assert json.loads(agented.run(nobody).stdout) == {"t": "refused"}
    finally:
        for path, mode in zip(opened, modes, strict=True):
            path.chmod(mode)
    assert agented.status()["refused"] == 1
