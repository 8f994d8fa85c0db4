"""A lease on the boxes themselves, so two controllers never converge the same box at once.

The fleet lock (provision/lock.py) is a file in the controller's state dir: two `dnabox
up` runs from two directories or two machines both got it. So, like k0sctl locking its
hosts, every run also takes a lease on each box it works on, inside preflight's round trip
(no extra connection): ``/var/lib/dnabox/lease`` holds the holder's host, user, pid, run id,
state dir, start and expiry. The take is one ``flock``ed shell step on the box:

- no lease, an expired one, or one of this run: write ours;
- one from the same controller (host and state dir): take it over. This run holds that
  state dir's fleet lock, so the run that wrote it is gone (a crash, Ctrl-C);
- any other: leave it and report it. The run then releases what it took and stops with
  exit code 5, naming the holder.

Times are the box's own clock (``date +%s`` on the box), so a controller's skew does not
matter. ``dnabox unlock`` removes leases whose holder is gone.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import time
import uuid
from dataclasses import dataclass

from dnabox.errors import LockHeld

STATE_DIR = "/var/lib/dnabox"
DEFAULT_TTL = 3600.0
TTL_ENV = "DNABOX_LEASE_TTL"
TAKEN = "lease-taken"
HELD = "lease-held"
FIELDS = ("run", "owner", "host", "user", "pid", "started", "expires")


@dataclass(frozen=True)
class Lease:
    run: str
    owner: str  # host:state-dir of the controller; a run from the same place may take over
    host: str
    user: str
    pid: int
    started: int  # box clock, seconds since the epoch
    expires: int

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.started))
        expires = time.strftime("%H:%M:%S", time.gmtime(self.expires))
        return (f"run {self.run} of {self.user}@{self.host} (pid {self.pid}, state dir "
                f"{self.owner.partition(':')[2]}), started {started} UTC, "
                f"expires {expires} UTC")

    def as_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in FIELDS}


@dataclass(frozen=True)
class Holder:
    """Who this run is, as written into each box's lease."""

    run: str
    owner: str
    host: str
    user: str
    pid: int
    ttl: int

    @classmethod
    def here(cls, state_dir: str, ttl: float | None = None) -> Holder:
        host = socket.gethostname()
        if ttl is None:
            try:
                ttl = float(os.environ.get(TTL_ENV, "") or DEFAULT_TTL)
            except ValueError:
                ttl = DEFAULT_TTL
        return cls(uuid.uuid4().hex[:12], f"{host}:{os.path.realpath(state_dir)}", host,
                   _user(), os.getpid(), max(1, int(ttl)))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _safe(value: str) -> str:
    """One line, no '=' games: the file is line-oriented."""
    return value.replace("\n", " ").replace("\r", " ")


# Reads the lease's fields with the shell's own `read` (no process per field): a thousand
# boxes pay this in every preflight.
_READ = ('r= o= e=; if [ -f "$L" ]; then while IFS= read -r line; do case $line in '
         'run=*) [ -n "$r" ] || r=${line#run=};; owner=*) [ -n "$o" ] || o=${line#owner=};; '
         'expires=*) [ -n "$e" ] || e=${line#expires=};; esac; done < "$L"; fi; ')


def take_command(holder: Holder, directory: str = STATE_DIR) -> str:
    """Shell that takes (or reports) the box's lease; prints TAKEN, or HELD and the lease.

    Two processes on the box (flock, date): the lease is written in place, as every writer
    and `dnabox unlock` hold the box's lease lock (a torn lease has no expiry: expired)."""
    names = ("run", "owner", "host", "user", "pid")
    template = "".join(f"{name}=%s\\n" for name in (*names, "started", "expires"))
    values = " ".join(shlex.quote(_safe(str(getattr(holder, name)))) for name in names)
    return (
        f'd={directory}; L=$d/lease; [ -d "$d" ] || {{ mkdir -p "$d" && chmod 700 "$d"; }}; '
        '{ flock 9 || exit 1; ' + _READ +
        'now=$(date +%s); case $e in ""|*[!0-9]*) e=0;; esac; '
        f'if [ -n "$r" ] && [ "$r" != {shlex.quote(holder.run)} ] '
        f'&& [ "$o" != {shlex.quote(holder.owner)} ] && [ "$e" -gt "$now" ]; then '
        f'echo {HELD}; cat "$L"; '
        f"else printf '{template}' {values} \"$now\" \"$((now + {holder.ttl}))\" "
        f'> "$L" && echo {TAKEN}; fi; '
        '} 9>>"$d/lease.lock"'
    )


def release_command(run: str, directory: str = STATE_DIR) -> str:
    """Empty the box's lease if (and only if) it is still ``run``'s: an empty lease is no
    lease, and emptying it is the shell's own (one process on the box: flock)."""
    return (f'd={directory}; L=$d/lease; [ -s "$L" ] || exit 0; '
            '{ flock 9 || exit 1; ' + _READ +
            f'if [ "$r" = {shlex.quote(run)} ]; then : > "$L"; fi; }} 9>>"$d/lease.lock"')


def read_command(directory: str = STATE_DIR) -> str:
    return f"cat {directory}/lease 2>/dev/null; true"


def break_command(directory: str = STATE_DIR) -> str:
    """`dnabox unlock`: remove whatever lease the box holds."""
    lease, lock = f"{directory}/lease", f"{directory}/lease.lock"
    return f"[ -s {lease} ] || exit 0; flock {lock} rm -f {lease}"


def parse_lease(text: str) -> Lease | None:
    """The lease in ``text`` (the file's ``key=value`` lines); None when there is none."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in FIELDS and key not in values:
            values[key] = value
    if "run" not in values:
        return None

    def number(key: str) -> int:
        raw = values.get(key, "")
        return int(raw) if raw.isdigit() else 0

    return Lease(values["run"], values.get("owner", ""), values.get("host", "?"),
                 values.get("user", "?"), number("pid"), number("started"), number("expires"))


def parse_take(output: str) -> tuple[bool, Lease | None]:
    """(taken, the other holder's lease when not taken)."""
    first, _, rest = output.partition("\n")
    if first.strip() == TAKEN:
        return True, None
    if first.strip() == HELD:
        return False, parse_lease(rest)
    return False, None


def lease_refusal(held: dict[str, Lease | None]) -> LockHeld:
    """The error for a run that found boxes leased by another controller's run."""
    boxes = sorted(held)
    holders = sorted({lease.describe() for lease in held.values() if lease is not None})
    shown = ", ".join(boxes[:5]) + (f" and {len(boxes) - 5} more" if len(boxes) > 5 else "")
    return LockHeld(
        f"{len(boxes)} box(es) ({shown}) are leased by another dnabox run: "
        + ("; ".join(holders) or "holder unreadable"),
        hint="wait for that run to finish; if its controller is gone, `dnabox unlock` "
             "frees the boxes (or wait until the lease expires)",
    )
