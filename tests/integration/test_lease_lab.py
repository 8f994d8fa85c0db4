"""The lease on the boxes, between two controllers (two state dirs) on real lab boxes.

Run A is held inside its preflight by one box (a `sha256sum` on it that waits for a file
the test creates): A has leased the boxes and is still running. Run B, from another state
dir, is refused with exit 5 naming A; `dnabox unlock` will not free a live holder; once A
is killed its lease stays (it has not expired) until `dnabox unlock --yes` frees it, and
then B runs. A lease that expired is taken over without asking. Every step waits on an
event (an output line, a file on a box), never on time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Lab  # type: ignore[import-not-found]

pytestmark = [pytest.mark.lab, pytest.mark.fault]

ROOT = Path(__file__).resolve().parents[2]
DNABOX = (sys.executable, "-m", "dnabox")
LEASE = "/var/lib/dnabox/lease"
GATE_BOX = "edge-a-1"
# Blocks the first preflight that reaches it (run A's) until /tmp/dnabox-gate-open exists.
GATE = """#!/bin/sh
if mkdir /tmp/dnabox-gate-taken 2>/dev/null; then
  while [ ! -e /tmp/dnabox-gate-open ]; do sleep 0.05; done
fi
exec /usr/bin/sha256sum "$@"
"""


def cli(state: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DNABOX_STATE_DIR": str(state), "DNABOX_AGENT_PERSIST": "0"}
    return subprocess.run([*DNABOX, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def wait_until(what: str, check: object, deadline: float = 120) -> None:
    """Poll an observable condition (a file on a box, an output line): no fixed sleep."""
    end = time.monotonic() + deadline
    while not check():  # type: ignore[operator]
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def gated(lab: Lab) -> Iterator[Lab]:
    lab.run(GATE_BOX, "rm -rf /tmp/dnabox-gate-taken /tmp/dnabox-gate-open && "
                      "cat > /usr/local/bin/sha256sum && chmod 755 /usr/local/bin/sha256sum",
            stdin=GATE)
    try:
        yield lab
    finally:
        lab.run(GATE_BOX, "touch /tmp/dnabox-gate-open; rm -f /usr/local/bin/sha256sum",
                check=False)
        for box in lab.fleet.boxes:
            lab.run(box.name, f"rm -f {LEASE}", check=False)


def test_a_second_controller_is_refused_until_the_gone_holder_is_unlocked(
        gated: Lab, tmp_path: Path) -> None:
    inventory = str(gated.inventory)
    env = {**os.environ, "DNABOX_STATE_DIR": str(tmp_path / "a"), "DNABOX_AGENT_PERSIST": "0"}
    run_a = subprocess.Popen([*DNABOX, "up", "-i", inventory, "--json"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # A is inside its preflight, holding its lease on the gate box at least.
        wait_until("run A at the gate", lambda: gated.run(
            GATE_BOX, "test -d /tmp/dnabox-gate-taken", check=False).returncode == 0)
        wait_until("run A's lease", lambda: f"pid={run_a.pid}" in gated.run(
            GATE_BOX, f"cat {LEASE} 2>/dev/null", check=False).stdout)
        refused = cli(tmp_path / "b", "up", "-i", inventory)
        assert refused.returncode == 5, refused.stdout + refused.stderr
        said = " ".join(refused.stderr.split())  # the console wraps long lines
        assert "leased by another dnabox run" in said
        assert f"pid {run_a.pid}" in said and GATE_BOX in said
        # B released whatever it took: only A's leases are on the boxes.
        for box in gated.fleet.boxes:
            lease = gated.run(box.name, f"cat {LEASE} 2>/dev/null", check=False).stdout
            assert not lease or f"pid={run_a.pid}" in lease, (box.name, lease)
        alive = cli(tmp_path / "b", "unlock", "-i", inventory, "--yes", "--json")
        assert alive.returncode == 1
        report = json.loads(alive.stdout)
        assert GATE_BOX in report["holder_alive"] and report["freed"] == []
    finally:
        run_a.send_signal(signal.SIGKILL)
        run_a.wait(timeout=60)
    # A is gone, its lease is not: B is still refused until someone unlocks.
    assert cli(tmp_path / "b", "up", "-i", inventory).returncode == 5
    freed = cli(tmp_path / "b", "unlock", "-i", inventory, "--yes", "--json")
    assert freed.returncode == 0, freed.stdout + freed.stderr
    assert GATE_BOX in json.loads(freed.stdout)["freed"]
    gated.run(GATE_BOX, "touch /tmp/dnabox-gate-open")
    after = cli(tmp_path / "b", "up", "-i", inventory, "--json")
    assert after.returncode == 0, after.stdout[-2000:] + after.stderr[-2000:]
    # B released its own lease at the end.
    assert gated.run(GATE_BOX, f"cat {LEASE} 2>/dev/null", check=False).stdout == ""


def test_an_expired_lease_is_taken_over(gated: Lab, tmp_path: Path) -> None:
    gated.run(GATE_BOX, "touch /tmp/dnabox-gate-open")
    gated.run(GATE_BOX, f"mkdir -p /var/lib/dnabox && printf 'run=old\\nowner=elsewhere:/x\\n"
                        f"host=elsewhere\\nuser=ops\\npid=1\\nstarted=1\\nexpires=2\\n' > {LEASE}")
    result = cli(tmp_path / "c", "up", "-i", str(gated.inventory), "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert gated.run(GATE_BOX, f"cat {LEASE} 2>/dev/null", check=False).stdout == ""
