"""The agent's wire format, socket location and the fast client's option parsing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnabox.cli.fast_exec import parse
from dnabox.provision.agent.protocol import (
    DEFAULT_PERSIST,
    ProtocolError,
    fleet_name_of,
    persist_seconds,
    receive,
    socket_for_inventory,
    socket_path,
    state_dir_for,
)
from dnabox.provision.agent.requests import ExecJob, Fallback, exec_request, parse_exec

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("text", "name"), [
    ("# comment\nname: lab\nsites: []\n", "lab"),
    ("---\nname: 'edge-1'  # quoted, commented\n", "edge-1"),
    ('name: "bench"\n', "bench"),
    ("description: x\n  name: nested\n", None),   # not top level
    ("name: ../../etc\n", None),                   # never a path
    ("name: Upper\n", None),
    ("boxes: []\n", None),
])
def test_fleet_name_is_read_without_yaml(text: str, name: str | None) -> None:
    assert fleet_name_of(text) == name


def test_sample_inventories_name_their_fleet_for_the_fast_path() -> None:
    import yaml

    for path in (ROOT / "inventory").glob("*.yaml"):
        assert fleet_name_of(path.read_text()) == yaml.safe_load(path.read_text())["name"]


@pytest.mark.parametrize(("raw", "seconds"), [
    (None, DEFAULT_PERSIST), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("soon", DEFAULT_PERSIST)])
def test_persist_seconds(raw: str | None, seconds: float) -> None:
    assert persist_seconds({} if raw is None else {"DNABOX_AGENT_PERSIST": raw}) == seconds


def test_socket_lives_in_the_fleet_state_dir(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNABOX_STATE_DIR", str(tmp_path))
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text("name: lab\n")
    assert state_dir_for("lab") == str(tmp_path / "lab")
    assert socket_for_inventory(str(inventory)) == str(tmp_path / "lab" / "agent.sock")
    assert socket_for_inventory(str(tmp_path / "missing.yaml")) is None
    assert socket_path("/" + "d" * 120) is None  # too long for AF_UNIX: no agent, no error


def test_receive_rejects_what_is_not_one_json_object_per_line() -> None:
    assert receive(io.BytesIO(b'{"t": "end"}\n')) == {"t": "end"}
    assert receive(io.BytesIO(b"")) is None
    for bad in (b"[1]\n", b"nope\n", b'{"t": "cut"'):
        with pytest.raises(ProtocolError):
            receive(io.BytesIO(bad))
    with pytest.raises(ProtocolError):
        receive(io.BytesIO(b"{" + b" " * (1 << 20) + b"}\n"))


def test_parse_mirrors_the_full_cli_options() -> None:
    parsed = parse(["-i", "f.yaml", "uptime", "--box", "a", "--box=b", "--json", "--tier", "edge",
                    "--parallel=3", "--", "ls", "-l"])
    assert parsed == (ExecJob(os.path.abspath("f.yaml"), "uptime ls -l", ["a", "b"], [],
                              ["edge"], 3), True)
    job, json_output = parse(["--", "echo hi; exit 3"]) or (None, None)
    assert job and job.command == "echo hi; exit 3" and not json_output
    assert job.inventory == os.path.abspath("inventory/lab.yaml")


@pytest.mark.parametrize("args", [
    ["--help", "--", "true"], ["-h"], ["-iF", "--", "true"], ["-x", "--", "true"],
    ["--parallel", "many", "--", "true"], ["-i"], ["-i", "--box", "x", "--", "true"], [],
    ["-i", "f.yaml"], ["--box=-a", "--", "true"], ["-b", "a", "--", "true"],
    ["--cluster", "core", "--", "true"], ["--limit", "all", "--", "true"],
])
def test_parse_leaves_anything_unusual_to_the_full_cli(args: list[str]) -> None:
    assert parse(args) is None


def test_exec_request_round_trips_and_is_checked() -> None:
    job = ExecJob("/x/fleet.yaml", "uptime", ["a"], [], ["edge"], 8)
    assert parse_exec(exec_request(job, "/work"), "/work") == job
    with pytest.raises(Fallback, match="working directory"):
        parse_exec(exec_request(job, "/elsewhere"), "/work")
    for key, value in (("inventory", "relative.yaml"), ("command", ""), ("parallel", "8"),
                       ("boxes", "a"), ("tiers", [1])):
        with pytest.raises(Fallback, match="malformed"):
            parse_exec({**exec_request(job, "/work"), key: value}, "/work")


def test_fast_path_imports_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    probe = ("import sys; from dnabox.cli.fast_exec import run; "
             "assert run(['-i', sys.argv[1], '--', 'true']) is None; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'typer', 'click', 'rich', 'pydantic', 'yaml', 'paramiko', 'asyncssh', 'jinja2'}))")
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text("name: lab\n")
    result = subprocess.run([sys.executable, "-c", probe, str(inventory)], capture_output=True,
                            text=True, check=True, env={**os.environ, "DNABOX_AGENT_PERSIST": "9",
                                                        "DNABOX_STATE_DIR": str(tmp_path)})
    assert result.stdout.strip() == "[]"
