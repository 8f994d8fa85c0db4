"""The installed dnabox on the lab: `dnabox demo` and a full Ansible bootstrap run from a
fleet repo made by `dnabox init`, with the playbooks coming from the installed package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB_FLEET = ROOT / "inventory" / "lab.yaml"

pytestmark = pytest.mark.lab


def test_demo_and_bootstrap_from_the_installed_package(installed: Any, lab: Any,
                                                       tmp_path: Path) -> None:
    # A clean slate: boxes the session's other tests converged hold the D-N-A credentials
    # of the checkout's state dir, and the installed tool starts a fleet repo of its own.
    lab.down()
    installed.run("init", "fleet", cwd=tmp_path)
    repo = tmp_path / "fleet"
    located = json.loads(installed.run("locations", "-i", str(LAB_FLEET), "--json",
                                       cwd=repo).stdout)
    assets = Path(located["assets"])
    assert assets.is_relative_to(installed.venv)
    try:
        demo = installed.run("demo", "-i", str(LAB_FLEET), "--keep", cwd=repo, timeout=1800)
        assert "demo complete" in demo.stdout
        # Every role through ansible-playbook, from the installed site.yml.
        installed.run("bootstrap", "-i", str(LAB_FLEET), "--json", cwd=repo, timeout=1800)
        commands = list((repo / ".dnabox" / "lab" / "ansible" / "bootstrap").glob(
            "artifacts/*/command"))
        assert commands, "ansible-runner recorded no run"
        command = json.dumps(json.loads(commands[-1].read_text())["command"])
        assert str(assets / "playbooks") in command
        assert str(ROOT / "src") not in command
    finally:
        installed.run("lab", "down", "-i", str(LAB_FLEET), cwd=repo, check=False)
        lab.up()  # the session's lab again, for the tests after this one
