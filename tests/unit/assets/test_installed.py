"""dnabox as an installed tool: the wheel carries everything, and a fleet repo made by
`dnabox init` in an empty directory validates and plans with nothing from the checkout."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from dnabox.locations import ASSETS

ROOT = Path(__file__).resolve().parents[3]
Installed = Any  # tests/conftest.py: the `installed` fixture


def test_the_wheel_carries_every_asset(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    shipped = {f"dnabox/assets/{p.relative_to(ASSETS).as_posix()}"
               for p in ASSETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "dnabox/layers/program.py" in names and "dnabox/py.typed" in names


def test_init_validate_and_plan_from_an_empty_directory(installed: Installed,
                                                        tmp_path: Path) -> None:
    assert installed.run("--version", cwd=tmp_path).stdout.startswith("dnabox ")
    installed.run("init", "fleet", cwd=tmp_path)
    repo = tmp_path / "fleet"
    located = json.loads(installed.run("locations", "-i", "inventory/fleet.yaml", "--json",
                                       cwd=repo).stdout)
    # Assets from the installed package, state in the fleet repo: nothing from the checkout.
    assert Path(located["assets"]).is_relative_to(installed.venv)
    assert located["project"] == str(repo)
    assert located["fleet_state"] == str(repo / ".dnabox" / "fleet")
    assert str(ROOT) not in json.dumps(located)
    installed.run("inventory", "validate", "-i", "inventory/fleet.yaml", cwd=repo)
    installed.run("stack", "config", "-i", "inventory/fleet.yaml", "--check", cwd=repo)
    planned = json.loads(installed.run("plan", "-i", "inventory/fleet.yaml", "--offline",
                                       "--json", cwd=repo).stdout)
    assert [b["name"] for b in planned["boxes"]] == ["core-1", "edge-1-1", "end-1-1"]
    assert all(b["roles"] and b["diffs"] for b in planned["boxes"])
    shown = installed.run("runbook", "show", "drain", cwd=tmp_path).stdout
    assert "dnabox_state_dir" in shown
