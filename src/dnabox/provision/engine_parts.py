"""What the engine reaches boxes through, as parameters: unit tests pass fakes.

``default_parts`` builds the real ones: one kept SSH connection per box, Ansible through
ansible-runner with site shards coalesced by the batcher, the direct program over SSH.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dnabox.adapters.ansible import HostStats, PlaybookResult, run_playbook
from dnabox.adapters.jobs import Job, JobResult, LazyPool
from dnabox.inventory.model import ResolvedSsh
from dnabox.plan.direct_program import DirectProgram
from dnabox.provision.batcher import AnsibleBatcher, RunBatch
from dnabox.provision.direct_run import DirectOutcome, run_direct
from dnabox.provision.events import Event, EventSink

if TYPE_CHECKING:
    from dnabox.adapters.ssh import BoxConnection


class Connections(Protocol):
    @property
    def retries(self) -> int: ...  # transient failures retried, for the run summary

    def get(self, box: str, ssh: ResolvedSsh) -> BoxConnection: ...

    def run_many(self, jobs: list[Job], *, parallel: int = ...) -> list[JobResult]: ...

    def close(self) -> None: ...


class Batcher(Protocol):
    def run(self, roles: Sequence[str], boxes: Sequence[str]) -> dict[str, HostStats]: ...


PlaybookRunner = Callable[..., PlaybookResult]  # adapters.ansible.run_playbook's signature
DirectRunner = Callable[["BoxConnection", DirectProgram, Callable[[str], None],
                         Callable[[str], None]], DirectOutcome]


@dataclass(frozen=True)
class EngineParts:
    """What the engine reaches boxes through; unit tests pass fakes
    (tests/unit/provision/test_provision_engine.py).

    ``batcher`` is handed how to run one batch of roles on boxes (the engine's own method,
    which calls ``run_playbook``) and returns what coalesces the site shards' requests.
    """

    pool: Connections
    batcher: Callable[[RunBatch], Batcher]
    run_playbook: PlaybookRunner
    run_direct: DirectRunner


def default_parts(sink: EventSink, ansible_slots: int) -> EngineParts:
    """SSH through one kept connection per box, Ansible through ansible-runner."""

    def on_retry(box: str, attempt: int, reason: str) -> None:
        sink(Event("box", "retry", box=box, message=f"attempt {attempt} failed: {reason}"))

    return EngineParts(
        # Made on first use: a converged fleet read through the agent needs no connection.
        pool=LazyPool(on_retry=on_retry),
        # As many Ansible controllers at once as there are cores (see provision/batcher.py).
        batcher=lambda run: AnsibleBatcher(run, slots=ansible_slots),
        run_playbook=run_playbook, run_direct=run_direct)
