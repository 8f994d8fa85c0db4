"""The connection agent's wire protocol and where its socket lives (standard library only).

The fast `dnabox exec` client imports this before, and instead of, typer, pydantic, yaml and
paramiko; that is the point of the agent, so nothing here may import them.

One JSON object per line over the agent's Unix socket:

    client  {"v": 1, "op": "exec", "inventory": ABS, "cwd": CWD, "boxes": [], "sites": [],
             "tiers": [], "command": "uptime", "parallel": 64}
    agent   {"t": "ready", "boxes": [names]}  or  {"t": "fallback", "reason": "..."}
    client  {"go": true}
    agent   {"t": "line", "box": B, "line": L} ... {"t": "result", "box": B, "rc": 0,
             "seconds": 0.01, "error": ""} ... {"t": "end"}

Nothing runs before "go": a client that gave up waiting and ran the full CLI instead closes
the socket, so its command never runs twice. `{"op": "status"}` answers {"t": "status", ...},
`{"op": "stop"}` answers {"t": "stopping"}.
"""

from __future__ import annotations

import json
import os
import re
import socket
from typing import Any, BinaryIO

from dnabox.locations import Locations

PROTOCOL_VERSION = 1
SOCKET_NAME = "agent.sock"
LOCK_NAME = "agent.lock"
LOG_NAME = "agent.log"
PERSIST_ENV = "DNABOX_AGENT_PERSIST"
DEFAULT_PERSIST = 600.0
MAX_MESSAGE = 1 << 20  # a request is a command line and a few names; refuse anything huge
# sockaddr_un.sun_path is 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107
# Only a safety net against odd paths: the agent compares the real fleet name anyway.
_FLEET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_NAME_LINE = re.compile(r"name:[ \t]+(['\"]?)([^'\"#\s]*)\1\s*(#.*)?")

Message = dict[str, Any]


class ProtocolError(Exception):
    """The peer sent something that is not a protocol message."""


def persist_seconds(environ: dict[str, str] | None = None) -> float:
    """How long an idle agent lives: ``$DNABOX_AGENT_PERSIST`` (0: never start one)."""
    raw = (os.environ if environ is None else environ).get(PERSIST_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_PERSIST
    except ValueError:
        return DEFAULT_PERSIST


def fleet_name_of(text: str) -> str | None:
    """The top-level ``name:`` of an inventory, read without a YAML parser (None: unsure).

    Good enough to find the agent's socket; the agent checks the name against the fleet it
    validated, so a wrong guess only costs the fast path, never correctness.
    """
    for line in text.splitlines():
        if line.startswith("---") and not line.strip("-").strip():
            continue
        match = _NAME_LINE.fullmatch(line.rstrip())
        if match:
            name = match.group(2)
            return name if _FLEET_NAME.fullmatch(name) else None
    return None


def state_dir_for(fleet_name: str) -> str:
    """The fleet's state dir (:mod:`dnabox.locations`), absolute; not created here."""
    return os.path.realpath(Locations.discover().fleet_state(fleet_name))


def socket_path(state_dir: str) -> str | None:
    """The agent's socket in ``state_dir``; None when the path is too long for AF_UNIX."""
    path = os.path.join(state_dir, SOCKET_NAME)
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def socket_for_inventory(inventory: str) -> str | None:
    """Where the agent of the fleet described by ``inventory`` listens (None: unknown)."""
    try:
        with open(inventory, encoding="utf-8") as handle:
            name = fleet_name_of(handle.read(MAX_MESSAGE))
    except (OSError, UnicodeDecodeError):
        return None
    return socket_path(state_dir_for(name)) if name else None


def connect(path: str, timeout: float) -> socket.socket | None:
    """A connected socket to the agent at ``path``, or None when no agent listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def send(sock: socket.socket, message: Message) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def receive(stream: BinaryIO) -> Message | None:
    """The next message from ``stream`` (``sock.makefile("rb")``); None at end of stream."""
    line = stream.readline(MAX_MESSAGE + 1)
    if not line:
        return None
    if len(line) > MAX_MESSAGE or not line.endswith(b"\n"):
        raise ProtocolError("message too long or cut off")
    try:
        message = json.loads(line)
    except ValueError:
        raise ProtocolError("not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message


def ask(path: str, request: Message, timeout: float = 5.0) -> Message | None:
    """One request, one answer (status, stop); None when no agent answers."""
    sock = connect(path, timeout)
    if sock is None:
        return None
    try:
        with sock, sock.makefile("rb") as stream:
            send(sock, {"v": PROTOCOL_VERSION, **request})
            return receive(stream)
    except (OSError, ProtocolError):
        return None
