"""Run a box's direct program (see ``dnabox.plan.direct_program``) over its kept SSH connection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dnabox.plan.direct_program import STEP_MARK, DirectProgram

if TYPE_CHECKING:
    from dnabox.adapters.ssh import BoxConnection

# Package installs on a real box can take minutes; a hung one must still end.
DIRECT_TIMEOUT = 1800.0


@dataclass(frozen=True)
class DirectOutcome:
    ok: bool
    step: str  # the last step started: where a failure happened
    changes: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def run_direct(connection: BoxConnection, program: DirectProgram,
               on_step: Callable[[str], None],
               on_change: Callable[[str], None]) -> DirectOutcome:
    """Run ``program``; report each step as it starts and each ``CHANGED:`` line."""
    step = "start"
    changes: list[str] = []

    def line(text: str) -> None:
        nonlocal step
        if text.startswith(STEP_MARK):
            step = text[len(STEP_MARK):].strip()
            on_step(step)
        elif text.startswith("CHANGED: "):
            change = text[len("CHANGED: "):].strip()
            changes.append(change)
            on_change(change)

    result = connection.run("sh -s", stdin=program.stdin, timeout=DIRECT_TIMEOUT, on_output=line)
    if result.rc == 0:
        return DirectOutcome(True, step, changes, seconds=result.seconds)
    error = result.stderr.strip().splitlines()[-12:]
    return DirectOutcome(False, step, changes, "\n".join(error) or f"exit code {result.rc}",
                         result.seconds)
