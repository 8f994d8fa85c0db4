"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # `dnabox exec` and `dnabox up` start a connection agent that outlives them; tests that
    # want one enable it explicitly (and stop it), every other test must leave none behind.
    os.environ["DNABOX_AGENT_PERSIST"] = "0"


@pytest.fixture
def repo_root() -> Path:
    return ROOT
