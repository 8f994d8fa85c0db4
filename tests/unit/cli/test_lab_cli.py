"""`dnabox lab` commands that need no running lab: errors and the status of an absent lab."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from dnabox.cli import lab
from dnabox.lab.paths import LabPaths

LAB = Path(__file__).resolve().parents[3] / "inventory" / "lab.yaml"


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(lab.app, name="lab")
    return app


def unused_fleet(tmp_path: Path) -> Path:
    """The sample lab under a fleet name no lab on this machine can have."""
    data = yaml.safe_load(LAB.read_text())
    data["name"] = f"unit-{uuid.uuid4().hex[:8]}"
    data["defaults"]["ssh"] = {"user": "root"}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_status_of_a_lab_that_is_not_up(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["lab", "status", "-i", str(unused_fleet(tmp_path)),
                                        "--json"])
    assert result.exit_code == 0, result.output
    boxes = json.loads(result.stdout)["boxes"]
    assert [b["name"] for b in boxes] == ["core-1", "edge-a-1", "edge-b-1", "end-a-1"]
    assert boxes[0] == {"name": "core-1", "site": "core", "address": "10.201.1.11",
                        "state": "absent"}
    assert {b["state"] for b in boxes} == {"absent"}


def test_ssh_to_an_unknown_box_names_the_boxes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["lab", "ssh", "nope", "-i", str(unused_fleet(tmp_path)),
                                        "--", "true"])
    assert result.exit_code == 2
    assert "no box nope" in result.output and "core-1, edge-a-1" in result.output


def test_ssh_to_a_lab_that_is_not_up_says_how_to_start_it(tmp_path: Path) -> None:
    path = unused_fleet(tmp_path)
    result = CliRunner().invoke(cli(), ["lab", "ssh", "core-1", "-i", str(path), "--", "true"])
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "is not up" in output and f"dnabox lab up -i {path}" in output


def test_every_lab_command_has_an_example() -> None:
    for name in ("up", "down", "status", "ssh", "cache"):
        result = CliRunner().invoke(cli(), ["lab", name, "--help"])
        assert result.exit_code == 0
        assert "Example: " in result.output


def test_ssh_passes_the_command_after_the_separator(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = unused_fleet(tmp_path)
    fleet_name = yaml.safe_load(path.read_text())["name"]
    paths = LabPaths(state_root=tmp_path / "state")
    paths.known_hosts(fleet_name).parent.mkdir(parents=True)
    paths.known_hosts(fleet_name).write_text("")
    monkeypatch.setattr("dnabox.lab.LabPaths", lambda: paths)  # read when the command runs
    ran: list[list[str]] = []

    def fake_run(argv: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 7)

    monkeypatch.setattr(lab.subprocess, "run", fake_run)
    result = CliRunner().invoke(cli(), ["lab", "ssh", "edge-a-1", "-i", str(path),
                                        "--", "ls", "-l", "/"])
    assert result.exit_code == 7  # the remote command's exit code
    assert ran[0][-4:] == ["root@10.201.2.11", "ls", "-l", "/"]
    assert f"UserKnownHostsFile={paths.known_hosts(fleet_name)}" in ran[0]
