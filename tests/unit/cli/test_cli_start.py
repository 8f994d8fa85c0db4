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


def test_reading_the_fleet_through_the_agent_needs_no_ssh_library() -> None:
    """`dnabox status` answered by the connection agent opens no connection of its own, so
    it must not pay for asyncssh (~0.4 s); a box the agent skips imports it then."""
    probe = ("import sys, dnabox.cli.app, dnabox.provision.inspect, dnabox.provision.plans; "
             "from dnabox.adapters.jobs import LazyPool; "
             "before = 'asyncssh' in sys.modules; LazyPool().run_many([]); "
             "quiet = 'asyncssh' in sys.modules; LazyPool().pool(); "
             "print(before, quiet, 'asyncssh' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "False", "True"]
