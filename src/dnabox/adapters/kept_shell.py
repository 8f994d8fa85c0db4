"""A shell kept open on a box, so dnabox's own short reads cost no SSH session each.

Every SSH session costs the box a fork of its sshd, an exec of the login shell and that
shell's start: ~5 ms of the box's CPU for `true`, measured on the lab, which is most of a
status read on a thousand boxes. The connection agent keeps one `/bin/sh` per box
instead (like mitogen's kept interpreter, with nothing but a POSIX shell on the box) and
sends each of its batch commands (status, preflight, the lease) to it:

    ( eval '<command>' ) </dev/null; printf '\\n<token> %s\\n' "$?"; printf '\\n<token>\\n' >&2

- ``eval`` of one quoted word: a command that does not parse fails on its own, in its
  subshell, and never leaves the kept shell waiting for the rest of a quote.
- the subshell: ``exit``, ``cd`` and variables of one command never reach the next.
- ``</dev/null``: a command that reads its input must not eat the next command.
- a fresh random token per command ends its stdout (with the exit code) and its stderr,
  so no output can fake the end of another command.

Only commands that are POSIX sh, read no input and are safe to run twice use it: when the
kept shell dies mid-command (the box rebooted), the caller runs the command again over a
fresh session, as it does for a kept connection that died.
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
import time

import asyncssh

START = "exec /bin/sh"


class KeptShellLost(Exception):
    """The kept shell ended before it answered: run the command elsewhere."""


def wrap(command: str, token: str) -> bytes:
    """The line the kept shell reads for ``command`` (see the module's docstring)."""
    return (f"( eval {shlex.quote(command)} ) </dev/null; "
            f"printf '\\n{token} %s\\n' \"$?\"; printf '\\n{token}\\n' >&2\n").encode()


class KeptShell:
    """One ``/bin/sh`` on one box; one command at a time (the box's lock serialises them)."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process
        self.commands = 0

    @classmethod
    async def start(cls, conn: asyncssh.SSHClientConnection, timeout: float) -> KeptShell:
        """Open the shell; its first answer reads past anything the login shell printed."""
        try:
            shell = cls(await conn.create_process(START, encoding=None))
        except (asyncssh.Error, OSError):
            raise KeptShellLost("the kept shell did not start") from None
        try:
            await shell.run("true", timeout)
        except TimeoutError:
            raise KeptShellLost("the kept shell did not start") from None
        shell.commands = 0  # that answer was the start, not a command of the caller
        return shell

    @property
    def alive(self) -> bool:
        return not self._process.is_closing() and self._process.exit_status is None

    async def run(self, command: str, timeout: float) -> tuple[int, bytes, bytes, float]:
        """Exit code, stdout and stderr of ``command``; raises TimeoutError or KeptShellLost."""
        token = secrets.token_hex(8)
        started = time.monotonic()
        try:
            self._process.stdin.write(wrap(command, token))
        except (asyncssh.Error, OSError, BrokenPipeError):
            raise KeptShellLost("the kept shell is gone") from None
        out_end, err_end = f"\n{token} ".encode(), f"\n{token}\n".encode()

        async def answer() -> tuple[int, bytes, bytes]:
            # readuntil also returns (without the token) at the end of the stream, and
            # fails when a command's output outgrows the channel's buffer: both mean
            # "run it elsewhere".
            out, err = await asyncio.gather(self._process.stdout.readuntil(out_end),
                                            self._process.stderr.readuntil(err_end))
            status = await self._process.stdout.readline()
            if not (out.endswith(out_end) and err.endswith(err_end)
                    and status.endswith(b"\n")):
                raise ValueError("the kept shell's answer ended early")
            return int(status), out[:-len(out_end)], err[:-len(err_end)]

        try:
            rc, out, err = await asyncio.wait_for(answer(), timeout)
        except TimeoutError:
            self.close()  # its command may still run: nothing else may follow it here
            raise
        except (asyncio.IncompleteReadError, asyncssh.Error, OSError, ValueError):
            self.close()
            raise KeptShellLost("the kept shell ended mid-command") from None
        self.commands += 1
        return rc, out, err, time.monotonic() - started

    def close(self) -> None:
        self._process.close()
