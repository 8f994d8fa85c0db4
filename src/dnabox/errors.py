"""Typed errors shared by every layer.

Each error carries a hint (what to do about it) and an exit code, so the CLI can
map failures to exit codes without knowing which layer raised them.
"""

from __future__ import annotations

from dataclasses import dataclass


class DnaboxError(Exception):
    """Base of every error dnabox raises on purpose (never a bug)."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


@dataclass(frozen=True)
class Problem:
    """One finding about an input file: where it is and what would be valid."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"

    def as_json(self) -> dict[str, str | int]:
        return {"file": self.file, "line": self.line, "field": self.field,
                "message": self.message}


class InventoryError(DnaboxError):
    """The fleet description is invalid; carries every problem found, not just the first."""

    exit_code = 1

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the inventory:\n"
            + "\n".join(f"  {p}" for p in problems),
            hint="fix the lines above; nothing was changed",
        )

    def as_json(self) -> dict[str, object]:
        return {"problems": [p.as_json() for p in self.problems], "hint": self.hint}


class EnvironmentProblem(DnaboxError):
    """The machine lacks something dnabox needs (a binary, root, a kernel feature)."""

    exit_code = 3


class RemoteError(DnaboxError):
    """A box could not be reached or refused what was asked of it."""

    exit_code = 4


class HostKeyMismatch(RemoteError):
    """A box presented a host key that differs from the recorded one."""


class LockHeld(DnaboxError):
    """Another dnabox run holds the fleet lock."""

    exit_code = 5
