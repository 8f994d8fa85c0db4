"""The lab's state file: every resource is recorded *before* it is created.

So `lab down` can always remove what a crashed `lab up` left: at worst it tries to remove
something that was never made, which is a no-op.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from dnabox.errors import LockHeld
from dnabox.lab.processes import Proc


class NetworkState(BaseModel):
    fingerprint: str
    router_ns: str
    host_link: str
    repo_dir: str
    cgroups: list[str]
    server: Proc | None = None
    complete: bool = False


class LabBoxState(BaseModel):
    fingerprint: str
    netns: str
    cgroups: list[str]
    launcher: Proc | None = None  # `unshare`, parent of the box's PID 1
    init: Proc | None = None  # the box's PID 1 (sshd); killing it ends the whole box
    complete: bool = False


class LabState(BaseModel):
    fleet: str
    inventory: str = ""
    network: NetworkState | None = None
    boxes: dict[str, LabBoxState] = Field(default_factory=dict)
    # Light boxes (`lab up --light`): the base role's packages in a shared lower layer.
    layers: list[str] = Field(default_factory=list)


def load(path: Path) -> LabState | None:
    if not path.exists():
        return None
    return LabState.model_validate_json(path.read_text())


def save(state: LabState, path: Path) -> None:
    """Atomic: a crash leaves the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(state.model_dump_json(indent=1))
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    temporary.replace(path)


@contextlib.contextmanager
def locked(state_root: Path) -> Iterator[None]:
    """One lab command at a time on this machine (labs would fight over addresses)."""
    state_root.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(state_root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                f"another `dnabox lab` command is running (it holds {state_root})",
                hint="wait for it to finish, then retry",
            ) from None
        yield
    finally:
        os.close(descriptor)
