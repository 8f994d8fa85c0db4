"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Installed:
    """dnabox built as a wheel and installed into a fresh venv outside the checkout."""

    venv: Path
    wheel: Path

    @property
    def dnabox(self) -> str:
        return str(self.venv / "bin" / "dnabox")

    def env(self) -> dict[str, str]:
        """No PYTHONPATH: nothing may come from the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DNABOX_PROJECT"}}
        return {**env, "PATH": f"{self.venv / 'bin'}:{env.get('PATH', '')}"}

    def run(self, *args: str, cwd: Path, timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.dnabox, *args], cwd=cwd, env=self.env(),
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"`dnabox {' '.join(args)}` exited {result.returncode}:\n"
                        f"{result.stdout}\n{result.stderr}")
        return result


_IGNORED = shutil.ignore_patterns(".git", ".venv", ".dnabox", "__pycache__", "build", "dist",
                                  "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache")


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the sources (the checkout stays clean) and install it
    into a new venv. Offline: the build uses this environment's setuptools and wheel, and
    the new venv reaches this environment's dependencies through a .pth file (but not its
    dnabox: that .pth line names a directory, which Python never scans for .pth files)."""
    work = tmp_path_factory.mktemp("installed")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_IGNORED)
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-q", "-w", str(dist), str(source)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = dist.glob("dnabox-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=600)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "dnabox-test-deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    return Installed(venv, wheel)
