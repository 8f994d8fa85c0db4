"""Typed errors shared by every layer.

Each error carries a hint (what to do about it) and an exit code, so the CLI can
map failures to exit codes without knowing which layer raised them.
"""

from __future__ import annotations

from dataclasses import dataclass

# The exit codes of every dnabox command: one table, shown in every `--help` and docs/CLI.md.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING_TOOL = 3
EXIT_INVALID_INVENTORY = 4
EXIT_LOCKED = 5
EXIT_ARTIFACT_MISSING = 6
EXIT_HOST_KEY = 7
EXIT_INTERRUPTED = 130
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_FAILED: "failed, unconverged or unreachable boxes; drift; stale config",
    EXIT_USAGE: "usage: bad option or argument, or a name the fleet lacks",
    EXIT_MISSING_TOOL: "a required external tool or capability is missing",
    EXIT_INVALID_INVENTORY: "the inventory is invalid (file, line and field listed)",
    EXIT_LOCKED: "another dnabox run holds the fleet's lock",
    EXIT_ARTIFACT_MISSING: "an artifact the roles need is undeclared or not in the bundle",
    EXIT_HOST_KEY: "a box's host key differs from the recorded one",
    EXIT_INTERRUPTED: "interrupted",
}


class DnaboxError(Exception):
    """Base of every error dnabox raises on purpose (never a bug)."""

    exit_code = EXIT_USAGE

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

    exit_code = EXIT_INVALID_INVENTORY

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

    exit_code = EXIT_MISSING_TOOL


class RemoteError(DnaboxError):
    """A box could not be reached or refused what was asked of it."""

    exit_code = EXIT_FAILED


class HostKeyMismatch(RemoteError):
    """A box presented a host key that differs from the recorded one."""

    exit_code = EXIT_HOST_KEY


class LockHeld(DnaboxError):
    """Another dnabox run holds the fleet lock."""

    exit_code = EXIT_LOCKED
