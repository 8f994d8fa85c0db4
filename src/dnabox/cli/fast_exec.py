"""`dnabox exec` through the fleet's connection agent, before the full CLI is even imported.

`python -m dnabox` and the `dnabox` script call :func:`run` first for `exec`. It imports the
standard library only: typer, rich, pydantic, yaml and paramiko cost ~0.35 s, more than the
whole fan-out over kept connections. :func:`run` returns None, and the full CLI runs
instead, whenever it cannot do exactly what the full CLI would: an option it does not parse,
--help, DNABOX_AGENT_PERSIST=0, no agent listening, or the agent answering "fallback"
(inventory changed and invalid, unknown box, another working directory, ...).
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

from dnabox.cli.exec_output import BoxOutcome, ExecPrinter, command_line
from dnabox.provision.agent.protocol import (
    Message,
    ProtocolError,
    connect,
    persist_seconds,
    receive,
    send,
    socket_for_inventory,
)
from dnabox.provision.agent.requests import ExecJob, exec_request

DEFAULT_INVENTORY = "inventory/lab.yaml"  # the full CLI's default (dnabox.cli.common)
INVENTORY_ENV = "DNABOX_INVENTORY"
# The agent answers "ready" after at most an inventory reload; longer means it is stuck.
READY_TIMEOUT = 10.0
# --cluster and --limit are left to the full CLI (the agent's request has no field for them).
_LISTS = {"--box": "boxes", "--site": "sites", "--tier": "tiers"}
_VALUES = {"-i": "inventory", "--inventory": "inventory", "--parallel": "parallel",
           **_LISTS}


def parse(args: list[str]) -> tuple[ExecJob, bool] | None:
    """The job and --json from the words after `exec`; None for anything unusual."""
    values = {"inventory": os.environ.get(INVENTORY_ENV) or DEFAULT_INVENTORY, "parallel": "64"}
    lists: dict[str, list[str]] = {"boxes": [], "sites": [], "tiers": []}
    cmd: list[str] = []
    json_output = False
    words = iter(args)
    for word in words:
        if word == "--":
            cmd.extend(words)
        elif word == "--json":
            json_output = True
        elif not word.startswith("-"):
            cmd.append(word)  # click takes positionals between options, so do we
        else:
            name, has_value, value = word.partition("=")
            if name not in _VALUES or (has_value and not name.startswith("--")):
                return None  # --help, short forms like -iFILE, options we do not know
            if not has_value:
                value = next(words, "-")
            if value.startswith("-"):
                return None
            if name in _LISTS:
                lists[_LISTS[name]].append(value)
            else:
                values[_VALUES[name]] = value
    try:
        parallel = int(values["parallel"])
    except ValueError:
        return None
    if not cmd:
        return None
    return ExecJob(os.path.abspath(values["inventory"]), command_line(cmd), lists["boxes"],
                   lists["sites"], lists["tiers"], parallel), json_output


def run(args: list[str]) -> int | None:
    """Run `exec` through the agent; the exit code, or None when the full CLI must run."""
    parsed = parse(args)
    if parsed is None or persist_seconds() <= 0:
        return None
    job, json_output = parsed
    path = socket_for_inventory(job.inventory)
    sock = connect(path, READY_TIMEOUT) if path else None
    if sock is None:
        return None
    with sock, sock.makefile("rb") as stream:
        try:
            send(sock, exec_request(job, os.getcwd()))
            ready = receive(stream)
            names = _names(ready)
            if names is None:
                return None
            send(sock, {"go": True})  # from here on the command runs: no more fallback
        except (OSError, ProtocolError):
            return None
        sock.settimeout(None)
        printer = ExecPrinter(names, json_output)
        try:
            results = _stream(stream, printer, names)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            return 130
        return printer.finish(results)


def _names(ready: Message | None) -> list[str] | None:
    names = ready.get("boxes") if ready and ready.get("t") == "ready" else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return None
    return names


def _stream(stream: BinaryIO, printer: ExecPrinter, names: list[str]) -> list[BoxOutcome]:
    """Print lines as they come; the results, or every box failed if the agent went away."""
    try:
        while (message := receive(stream)) is not None:
            if message.get("t") == "line":
                printer.line(str(message["box"]), str(message["line"]))
            elif message.get("t") == "end":
                return [BoxOutcome(str(r["box"]), r["rc"], float(r["seconds"]), str(r["error"]))
                        for r in message["results"]]
    except (OSError, ProtocolError, KeyError, TypeError, ValueError):
        pass
    return [BoxOutcome(name, None, 0.0, "the connection agent went away mid-command")
            for name in names]
