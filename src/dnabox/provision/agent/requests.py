"""The agent's exec request: built by the fast client, checked by the agent (stdlib only)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from dnabox.provision.agent.protocol import PROTOCOL_VERSION, Message


class Fallback(Exception):
    """The full CLI must answer this request (it prints the proper error or does the work)."""


@dataclass(frozen=True)
class ExecJob:
    inventory: str
    command: str
    boxes: list[str]
    sites: list[str]
    tiers: list[str]
    parallel: int


def exec_request(job: ExecJob, cwd: str) -> Message:
    return {"v": PROTOCOL_VERSION, "op": "exec", "inventory": job.inventory, "cwd": cwd,
            "command": job.command, "boxes": job.boxes, "sites": job.sites,
            "tiers": job.tiers, "parallel": job.parallel}


def _names(request: Message, key: str) -> list[str]:
    value = request.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Fallback(f"malformed request: {key}")
    return value


def parse_exec(request: Message, agent_cwd: str) -> ExecJob:
    """The job in ``request``; Fallback when the agent cannot run it exactly as the CLI would.

    Relative paths in an inventory (keys, known_hosts) resolve against the working
    directory, so a client elsewhere than the agent gets the full CLI.
    """
    if request.get("cwd") != agent_cwd:
        raise Fallback("the client runs in another working directory")
    inventory, command = request.get("inventory"), request.get("command")
    parallel = request.get("parallel", 64)
    if not isinstance(inventory, str) or not inventory.startswith("/"):
        raise Fallback("malformed request: inventory")
    if not isinstance(command, str) or not command:
        raise Fallback("malformed request: command")
    if not isinstance(parallel, int) or isinstance(parallel, bool):
        raise Fallback("malformed request: parallel")
    return ExecJob(inventory, command, _names(request, "boxes"), _names(request, "sites"),
                   _names(request, "tiers"), parallel)


@dataclass(frozen=True)
class BatchJob:
    box: str
    command: str
    stdin: bytes
    timeout: float


def batch_request(inventory: str, cwd: str, jobs: list[BatchJob], parallel: int) -> Message:
    """Commands are sent once each and named by index: a fleet mostly runs one command."""
    commands: dict[str, int] = {}
    for job in jobs:
        commands.setdefault(job.command, len(commands))
    return {"v": PROTOCOL_VERSION, "op": "batch", "inventory": inventory, "cwd": cwd,
            "commands": list(commands), "parallel": parallel,
            "jobs": [[j.box, commands[j.command], base64.b64encode(j.stdin).decode(),
                      j.timeout] for j in jobs]}


def parse_batch(request: Message, agent_cwd: str) -> tuple[str, list[BatchJob], int]:
    """The inventory, jobs and parallelism of a batch; Fallback when it is not one."""
    if request.get("cwd") != agent_cwd:
        raise Fallback("the client runs in another working directory")
    inventory, commands = request.get("inventory"), request.get("commands")
    raw, parallel = request.get("jobs"), request.get("parallel", 256)
    if not isinstance(inventory, str) or not inventory.startswith("/"):
        raise Fallback("malformed request: inventory")
    if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
        raise Fallback("malformed request: commands")
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise Fallback("malformed request: parallel")
    if not isinstance(raw, list):
        raise Fallback("malformed request: jobs")
    jobs = []
    for entry in raw:
        try:
            box, index, stdin, timeout = entry
            jobs.append(BatchJob(str(box), commands[index], base64.b64decode(stdin, validate=True),
                                 float(timeout)))
        except (TypeError, ValueError, IndexError, binascii.Error):
            raise Fallback("malformed request: jobs") from None
    return inventory, jobs, parallel
