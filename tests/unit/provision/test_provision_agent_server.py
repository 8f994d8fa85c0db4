"""The connection agent in this process, on a fleet whose boxes refuse connections (loopback)."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_provision_cli import dead_fleet
from typer.testing import CliRunner

from dnabox.cli import fast_exec
from dnabox.cli.app import app
from dnabox.provision.agent import client as agent_client
from dnabox.provision.agent.fleet import FleetConnections
from dnabox.provision.agent.protocol import PROTOCOL_VERSION, ask, socket_path, state_dir_for
from dnabox.provision.agent.server import Agent, listen


@dataclass
class Running:
    agent: Agent
    inventory: Path
    state_dir: str
    thread: threading.Thread

    def ask(self, request: dict[str, object]) -> dict[str, object] | None:
        return ask(str(socket_path(self.state_dir)), request)


def start(inventory: Path, *, uid: int | None = None, persist: float = 60) -> Running:
    state = state_dir_for("dead")
    os.makedirs(state, mode=0o700, exist_ok=True)
    path = socket_path(state)
    assert path is not None
    agent = Agent(FleetConnections("dead"), persist, os.getcwd(),
                  os.getuid() if uid is None else uid)
    server = listen(path)
    inode = os.stat(path).st_ino
    thread = threading.Thread(target=agent.serve, args=(server, path, inode), daemon=True)
    thread.start()
    return Running(agent, inventory, state, thread)


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    # A short private dir: pytest's tmp_path can exceed the 107 bytes of a socket path.
    with tempfile.TemporaryDirectory(prefix="dnx-") as short:
        monkeypatch.setenv("DNABOX_STATE_DIR", f"{short}/state")
        monkeypatch.setenv("DNABOX_AGENT_PERSIST", "60")
        handle = start(dead_fleet(Path(short)))
        yield handle
        handle.agent.stop()
        handle.thread.join(5)


def test_agent_answers_like_the_full_cli(running: Running, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["-i", str(running.inventory), "--json", "--", "true"]
    assert fast_exec.run(args) == 1
    fast = json.loads(capsys.readouterr().out)
    monkeypatch.setenv("DNABOX_AGENT_PERSIST", "0")
    full = CliRunner().invoke(app, ["exec", *args])
    assert full.exit_code == 1
    assert json.loads(full.stdout) == fast
    assert [b["name"] for b in fast["boxes"]] == ["a", "b"]
    assert all(b["rc"] is None and "unreachable" in b["error"] for b in fast["boxes"])
    status = running.ask({"op": "status"}) or {}
    assert (status["requests"], status["refused"], status["fleet"]) == (1, 0, "dead")


def test_plain_output_and_summary_match(running: Running, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["-i", str(running.inventory), "--tier", "edge", "--", "uptime"]
    assert fast_exec.run(args) == 1
    fast = capsys.readouterr()
    monkeypatch.setenv("DNABOX_AGENT_PERSIST", "0")
    full = CliRunner().invoke(app, ["exec", *args])
    # The agent runs in this process here, so its log lines land in the same stderr.
    fast_err = "".join(line for line in fast.err.splitlines(keepends=True) if " agent[" not in line)
    assert (full.stdout, full.stderr) == (fast.out, fast_err)
    assert fast_err.startswith("b: ") and fast_err.endswith("0/1 boxes succeeded\n")


@pytest.mark.parametrize("args", [["--box", "nope", "--", "true"],
                                  ["--site", "mars", "--", "x"]])
def test_bad_selection_falls_back(running: Running, args: list[str]) -> None:
    assert fast_exec.run(["-i", str(running.inventory), *args]) is None


def test_invalid_or_foreign_inventory_falls_back(running: Running) -> None:
    data = yaml.safe_load(running.inventory.read_text())
    running.inventory.write_text(yaml.safe_dump({**data, "boxes": "nope"}))
    assert fast_exec.run(["-i", str(running.inventory), "--", "true"]) is None
    other = running.inventory.with_name("other.yaml")
    other.write_text(yaml.safe_dump({**data, "name": "other"}))
    request = {"v": PROTOCOL_VERSION, "op": "exec", "inventory": str(other), "cwd": os.getcwd(),
               "command": "true"}
    answer = running.ask(request)
    assert answer and answer["t"] == "fallback" and "serves fleet dead" in str(answer["reason"])


def test_no_agent_or_agent_disabled_means_full_cli(running: Running,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNABOX_AGENT_PERSIST", "0")
    assert fast_exec.run(["-i", str(running.inventory), "--", "true"]) is None
    monkeypatch.setenv("DNABOX_AGENT_PERSIST", "60")
    running.agent.stop()
    running.thread.join(5)
    assert fast_exec.run(["-i", str(running.inventory), "--", "true"]) is None


def test_other_protocol_version_falls_back_and_retires_the_agent(running: Running) -> None:
    answer = running.ask({"v": PROTOCOL_VERSION + 1, "op": "exec"})
    assert answer and answer["t"] == "fallback"
    running.thread.join(5)
    assert not running.thread.is_alive()


def test_stop_and_status(running: Running) -> None:
    status = agent_client.status(running.state_dir)
    assert status and status["pid"] == os.getpid() and status["connections"] == 0
    assert running.ask({"op": "stop"}) == {"t": "stopping"}
    running.thread.join(5)
    assert not running.thread.is_alive() and agent_client.status(running.state_dir) is None


def test_client_of_another_uid_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory(prefix="dnx-") as short:
        monkeypatch.setenv("DNABOX_STATE_DIR", f"{short}/state")
        monkeypatch.setenv("DNABOX_AGENT_PERSIST", "60")
        # The agent believes it runs as another uid, so this process is "another user".
        handle = start(dead_fleet(Path(short)), uid=os.getuid() + 1)
        try:
            assert handle.ask({"op": "status"}) == {"t": "refused"}
            assert fast_exec.run(["-i", str(handle.inventory), "--", "true"]) is None
            assert handle.agent.refused == 2 and handle.agent.requests == 0
        finally:
            handle.agent.stop()
            handle.thread.join(5)


def test_socket_is_private(running: Running) -> None:
    path = socket_path(running.state_dir)
    assert path and os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(running.state_dir).st_mode & 0o777 == 0o700


def test_idle_agent_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory(prefix="dnx-") as short:
        monkeypatch.setenv("DNABOX_STATE_DIR", f"{short}/state")
        handle = start(dead_fleet(Path(short)), persist=0.2)
        handle.thread.join(5)
        assert not handle.thread.is_alive()
