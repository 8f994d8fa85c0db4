"""CI runs ansible-lint (production profile) and ansible-playbook --syntax-check on the roles."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dnabox.inventory import load_fleet
from dnabox.locations import ASSETS, Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory

pytestmark = pytest.mark.skipif(shutil.which("ansible-playbook") is None,
                                reason="ansible-core is a dependency of dnabox")


def test_ansible_lint_production_profile_passes(repo_root: Path) -> None:
    if shutil.which("ansible-lint") is None:
        pytest.fail("ansible-lint is missing: pip install -e .[dev]")
    result = subprocess.run(
        ["ansible-lint", "--profile", "production", "--nocolor", *PLAYBOOK_DIRS],
        cwd=repo_root, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "passed" in (result.stdout + result.stderr)


PLAYBOOK_DIRS = [f"src/dnabox/assets/playbooks/{p}" for p in ("site.yml", "roles", "runbooks")]
PLAYBOOKS = ["src/dnabox/assets/playbooks/site.yml", *sorted(
    f"src/dnabox/assets/playbooks/runbooks/{p.name}"
    for p in (ASSETS / "playbooks" / "runbooks").glob("*.yml"))]


@pytest.mark.parametrize("playbook", PLAYBOOKS)
@pytest.mark.parametrize("sample", ["lab", "smartx-playground"])
def test_playbooks_pass_syntax_check(repo_root: Path, tmp_path: Path, sample: str,
                                     playbook: str) -> None:
    fleet = load_fleet(repo_root / "inventory" / f"{sample}.yaml")
    inventory = tmp_path / "hosts.json"
    rendered = render_ansible_inventory(fleet, Locations.discover())
    inventory.write_text(json.dumps(rendered), encoding="utf-8")
    result = subprocess.run(
        ["ansible-playbook", "--syntax-check", "-i", str(inventory), playbook],
        cwd=repo_root, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"playbook: {playbook}" in result.stdout


def test_syntax_check_catches_a_broken_playbook(repo_root: Path, tmp_path: Path) -> None:
    # The check above must be able to fail: a playbook naming a role that does not exist.
    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: all\n  roles:\n    - role: no_such_role\n", encoding="utf-8")
    result = subprocess.run(["ansible-playbook", "--syntax-check", "-i", "localhost,",
                             str(broken)], cwd=repo_root, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode != 0
