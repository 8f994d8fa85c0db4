"""Running host commands: one place that turns a failed command into a typed error."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from dnabox.errors import DnaboxError


class LabCommandFailed(DnaboxError):
    """A host command the lab relies on failed; the message carries its stderr."""


def run(argv: Sequence[str], *, stdin: str | None = None, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                            cwd=cwd, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise LabCommandFailed(
            f"`{' '.join(argv)[:200]}` failed (exit {result.returncode}): "
            + " | ".join(detail),
            hint="run `dnabox lab down` to remove what was built, then retry",
        )
    return result


def ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    """Run many `ip` commands in one process: 100 boxes need thousands of them."""
    if not commands:
        return
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    run(argv, stdin="\n".join(commands) + "\n")
