"""Every `dnabox` command pays for what the CLI imports before it runs: the heavy libraries
load in the commands that use them, never at the start."""

from __future__ import annotations

import subprocess
import sys

# SSH, the plan's templates, the fleet model, Ansible, Pulumi, the web view, the lab.
HEAVY = {"asyncssh", "jinja2", "pydantic", "yaml", "ansible_runner", "pulumi", "aiohttp",
         "dnabox.inventory", "dnabox.lab", "dnabox.provision.engine"}


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    probe = ("import sys, dnabox.cli.app; "
             f"print(sorted(m for m in sys.modules if m in {sorted(HEAVY)!r}))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
