"""The lab for integration tests: one lab per test session, brought up and down here.

Tests ask for the `lab` fixture and get the fleet, its inventory path, and helpers that
run commands in a box over real SSH with strict host-key checking. Only one lab may run
on a machine at a time: the fixture holds /tmp/dnabox-lab.lock for the session, unless
the run was started under `flock /tmp/dnabox-lab.lock pytest ...` (then it holds it already).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from dnabox import lab as lab_api
from dnabox.inventory import Fleet, load_fleet

ROOT = Path(__file__).resolve().parents[2]
LAB_INVENTORY = ROOT / "inventory" / "lab.yaml"
MACHINE_LOCK = Path("/tmp/dnabox-lab.lock")


@dataclass(frozen=True)
class Lab:
    fleet: Fleet
    inventory: Path
    paths: lab_api.LabPaths

    def ssh_argv(self, box: str, command: Sequence[str] = (),
                 known_hosts: Path | None = None) -> list[str]:
        target = self.fleet.box(box)
        ssh = self.fleet.ssh_for(target)
        return lab_api.ssh_argv(
            key=self.paths.private_key(self.fleet.name),
            known_hosts=known_hosts or self.paths.known_hosts(self.fleet.name),
            user=ssh.user, address=ssh.host, port=ssh.port, command=command,
        )

    def run(self, box: str, command: str, *, check: bool = True, stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a shell command in ``box`` over SSH; fail the test on a non-zero exit."""
        result = subprocess.run(self.ssh_argv(box, [command]), input=stdin, text=True,
                                capture_output=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"`{command}` on {box} exited {result.returncode}:\n"
                        f"{result.stdout}\n{result.stderr}")
        return result

    def up(self) -> lab_api.LabUpReport:
        return lab_api.up(self.fleet, self.paths)

    def down(self) -> bool:
        return lab_api.down(self.fleet, self.paths)

    @staticmethod
    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The real `dnabox` CLI in a child process, as a user runs it.

        A child that outlives ``timeout`` is stopped with SIGABRT, so Python's fault
        handler prints where every thread was in its stderr: a hang fails with its cause.
        """
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
        return subprocess.run(["timeout", "-s", "ABRT", "-k", "10", str(timeout), *DNABOX, *args],
                              capture_output=True, text=True, timeout=timeout + 30,
                              check=False, cwd=ROOT, env=env)


DNABOX = (sys.executable, "-c", "from dnabox.cli.app import main; main()")


def cannot_host_namespaces() -> str | None:
    """Why this machine cannot run the lab, or None when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, mounts, cgroups)"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "the lab needs `ip` and `unshare` (apt-get install -y iproute2 util-linux)"
    probe = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "true"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        return f"this machine cannot create namespaces: {probe.stderr.decode().strip()}"
    return None


def _lock_inherited() -> bool:
    """True when an ancestor (`flock FILE pytest`) holds the machine lock for us."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(MACHINE_LOCK):
                return True
        except OSError:
            continue
    return False


@contextmanager
def machine_lock() -> Iterator[None]:
    if _lock_inherited():
        yield
        return
    with MACHINE_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits for another session's lab to go
        yield


@pytest.fixture
def lab_machine() -> Iterator[None]:
    """The machine lock, without a lab: for a test that builds and removes its own."""
    reason = cannot_host_namespaces()
    if reason is not None:
        pytest.skip(reason)
    with machine_lock():
        yield


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    reason = cannot_host_namespaces()
    if reason is not None:
        pytest.skip(reason)
    fleet = load_fleet(LAB_INVENTORY)
    handle = Lab(fleet=fleet, inventory=LAB_INVENTORY, paths=lab_api.LabPaths())
    with machine_lock():
        handle.down()  # a fresh lab: nothing left over from an interrupted session
        handle.up()
        yield handle
        handle.down()
