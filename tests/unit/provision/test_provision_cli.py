"""`dnabox up/status/exec` failure paths that need no lab: refused connections on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dnabox.cli.app import app
from dnabox.inventory import load_fleet
from dnabox.locations import Locations
from dnabox.provision.lock import FleetLock

# Port 9 on loopback: nothing listens, so every connection is refused at once and no
# packet ever leaves this machine.
DEAD_PORT = 9


def dead_fleet(tmp_path: Path) -> Path:
    fleet = {
        "name": "dead",
        "defaults": {"ssh": {"port": DEAD_PORT, "known_hosts": str(tmp_path / "known_hosts")}},
        "planes": [{"name": "P+M", "purpose": "management", "cidr": "127.0.0.0/8"}],
        "sites": [{"name": "one", "tier": "core"}, {"name": "two", "tier": "edge"}],
        "boxes": [{"name": "a", "site": "one", "address": "127.0.0.2"},
                  {"name": "b", "site": "two", "address": "127.0.0.3"}],
    }
    path = tmp_path / "dead.yaml"
    path.write_text(yaml.safe_dump(fleet))
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DNABOX_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


@pytest.mark.fault
def test_up_reports_unreachable_boxes_and_blocks_their_sites(env: Path) -> None:
    result = CliRunner().invoke(app, ["up", "-i", str(dead_fleet(env)), "--json"])
    assert result.exit_code == 1, result.output
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_unit = {e["unit"]: e for e in events if e.get("kind") == "unit"
               and e["status"] != "started"}
    assert by_unit["preflight:a"]["status"] == "failed"
    assert "unreachable" in by_unit["preflight:a"]["message"]
    assert by_unit["bootstrap:one"]["status"] == "blocked"
    assert events[-1]["kind"] == "run" and events[-1]["status"] == "failed"
    assert any(e["status"] == "retry" for e in events), "transient failures are retried"


def test_second_concurrent_up_is_refused(env: Path) -> None:
    inventory = dead_fleet(env)
    with FleetLock(Locations.discover().ensure_fleet_state(load_fleet(inventory).name)):
        result = CliRunner().invoke(app, ["up", "-i", str(inventory)])
    assert result.exit_code == 5
    assert "another dnabox run" in result.output


def test_status_and_exec_report_unreachable(env: Path) -> None:
    inventory = str(dead_fleet(env))
    status = CliRunner().invoke(app, ["status", "-i", inventory, "--json"])
    assert status.exit_code == 1
    boxes = json.loads(status.stdout)["boxes"]
    assert {b["name"]: b["state"] for b in boxes} == {"a": "unreachable", "b": "unreachable"}
    executed = CliRunner().invoke(app, ["exec", "-i", inventory, "--json", "--", "true"])
    assert executed.exit_code == 1
    assert all(b["rc"] is None and b["error"] for b in json.loads(executed.stdout)["boxes"])
