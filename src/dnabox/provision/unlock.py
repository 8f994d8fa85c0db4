"""`dnabox unlock`: free boxes whose lease holder is gone (crashed controller, lost laptop).

Reads every selected box's lease in one round trip, then removes them. A holder on this
machine whose process still runs is never unlocked (it is not gone); a holder elsewhere
cannot be checked from here, which is why the CLI asks before it removes anything.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from dnabox.adapters.jobs import Job
from dnabox.adapters.ssh import ConnectionPool
from dnabox.inventory.model import Fleet
from dnabox.provision.agent.batch import run_batch
from dnabox.provision.lease import Lease, break_command, parse_lease, read_command


@dataclass(frozen=True)
class LeaseReading:
    leases: dict[str, Lease] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    alive: dict[str, str] = field(default_factory=dict)  # box -> why its holder is not gone

    def as_json(self) -> dict[str, object]:
        return {"leases": {b: lease.as_json() for b, lease in sorted(self.leases.items())},
                "unreachable": self.unreachable, "holder_alive": self.alive}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def _batch(fleet: Fleet, boxes: list[str], command: str) -> list[tuple[str, str | None, str]]:
    jobs = [Job(b, fleet.ssh_for(fleet.box(b)), command, timeout=30) for b in boxes]
    with ConnectionPool() as pool:
        results = run_batch(fleet.name, fleet.source or "", jobs, pool).results \
            if fleet.source else pool.run_many(jobs)
    return [(r.box, r.result.stdout if r.result and r.result.rc == 0 else None,
             r.error or (r.result.stderr.strip() if r.result else "")) for r in results]


def read_leases(fleet: Fleet, boxes: list[str]) -> LeaseReading:
    reading = LeaseReading()
    here = socket.gethostname()
    for box, out, error in _batch(fleet, boxes, read_command()):
        if out is None:
            reading.unreachable[box] = error
            continue
        lease = parse_lease(out)
        if lease is None:
            continue
        reading.leases[box] = lease
        if lease.host == here and _pid_alive(lease.pid):
            reading.alive[box] = f"pid {lease.pid} still runs on this machine ({here})"
    return reading


def unlock(fleet: Fleet, reading: LeaseReading) -> list[str]:
    """Remove the leases of ``reading`` whose holder is gone; the boxes freed."""
    gone = sorted(b for b in reading.leases if b not in reading.alive)
    return sorted(box for box, out, _ in _batch(fleet, gone, break_command()) if out is not None)
