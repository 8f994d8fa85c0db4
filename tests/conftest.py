"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# DNABOX_TEST_CPU_LOAD=N: N busy processes run for the whole session, so a test that races
# its subject fails here first rather than at random in CI (setup.sh runs the fault tests
# once more this way).
CPU_LOAD_ENV = "DNABOX_TEST_CPU_LOAD"
_LOAD = pytest.StashKey[list[subprocess.Popen[bytes]]]()
# Bounded: a busy loop that outlives a killed pytest still ends on its own.
BUSY = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end: pass\n"


def pytest_configure(config: pytest.Config) -> None:
    # `dnabox exec` and `dnabox up` start a connection agent that outlives them; tests that
    # want one enable it explicitly (and stop it), every other test must leave none behind.
    os.environ["DNABOX_AGENT_PERSIST"] = "0"
    raw = os.environ.get(CPU_LOAD_ENV, "").strip()
    count = int(raw) if raw.isdigit() else 0
    config.stash[_LOAD] = [subprocess.Popen([sys.executable, "-c", BUSY],
                                            stdin=subprocess.DEVNULL)
                           for _ in range(min(count, 16))]


def pytest_unconfigure(config: pytest.Config) -> None:
    for process in config.stash.get(_LOAD, []):  # by PID: only what we started
        process.kill()
        process.wait()


def pytest_report_header(config: pytest.Config) -> str | None:
    load = config.stash.get(_LOAD, [])
    return f"CPU load: {len(load)} busy processes" if load else None


@pytest.fixture
def repo_root() -> Path:
    return ROOT
