"""A batch of per-box commands, over the connection agent's kept connections when it runs.

`dnabox status` and `dnabox up`'s preflight read every box once. When the fleet's agent
is up (it is after any `exec` or `up`), those reads ride on its authenticated connections:
no handshake at all, which is what a status of a thousand boxes costs otherwise. Without
an agent, or for any box the agent did not answer for, the caller's own pool runs the job,
so the result is the same either way; only the time differs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Protocol

from dnabox.adapters.jobs import CommandResult, Job, JobResult
from dnabox.provision.agent.protocol import (
    MAX_MESSAGE,
    Message,
    ProtocolError,
    connect,
    persist_seconds,
    receive,
    send,
    socket_path,
    state_dir_for,
)
from dnabox.provision.agent.requests import BatchJob, batch_request

# The agent answers as boxes end; a box may legitimately take a while (preflight hashes).
ANSWER_TIMEOUT = 120.0


@dataclass(frozen=True)
class BatchOutcome:
    results: list[JobResult]
    via_agent: int  # how many boxes the agent answered for


def result_message(answer: JobResult) -> Message:
    result = answer.result
    if result is None:
        return {"t": "result", "box": answer.box, "error": answer.error,
                "kind": answer.error_kind}
    return {"t": "result", "box": answer.box, "rc": result.rc, "out": result.stdout,
            "err": result.stderr, "seconds": result.seconds}


def _job_result(message: Message) -> JobResult | None:
    box = message.get("box")
    if not isinstance(box, str):
        return None
    if "rc" not in message:
        return JobResult(box, None, str(message.get("error", "")),
                         str(message.get("kind", "remote")))
    try:
        return JobResult(box, CommandResult(int(message["rc"]), str(message.get("out", "")),
                                            str(message.get("err", "")),
                                            float(message.get("seconds", 0.0))))
    except (TypeError, ValueError):
        return None


def ask_agent(fleet_name: str, inventory: str, jobs: list[Job],
              parallel: int = 256) -> dict[str, JobResult]:
    """What the fleet's agent answered, per box; empty when no agent could take the batch.

    Host-key and reachability errors are answers too: the agent checks keys exactly as the
    caller would, from the same inventory (it falls back when the inventory differs).
    """
    path = socket_path(state_dir_for(fleet_name))
    if not jobs or path is None or persist_seconds() <= 0:
        return {}
    request = batch_request(inventory, os.getcwd(),
                            [BatchJob(j.box, j.command, j.stdin, j.timeout) for j in jobs],
                            parallel)
    sock = connect(path, 2.0)
    if sock is None:
        return {}
    answers: dict[str, JobResult] = {}
    try:
        with sock, sock.makefile("rb") as stream:
            if len(json.dumps(request)) > MAX_MESSAGE:
                return {}  # the agent would refuse it; a fleet this big reads on its own
            send(sock, request)
            sock.settimeout(ANSWER_TIMEOUT)
            while (message := receive(stream)) is not None:
                if message.get("t") != "result":
                    break  # "end", or "fallback": the caller does the rest
                answer = _job_result(message)
                if answer is not None:
                    answers[answer.box] = answer
    except (OSError, ProtocolError):
        pass  # what arrived is good; the caller runs the rest itself
    return answers


class ManyRunner(Protocol):
    def run_many(self, jobs: list[Job], *, parallel: int = ...) -> list[JobResult]: ...


def run_batch(fleet_name: str, inventory: str, jobs: list[Job], pool: ManyRunner,
              *, parallel: int = 256) -> BatchOutcome:
    """Every job's result: the agent's answer where it gave one, else ``pool``'s."""
    answered = ask_agent(fleet_name, inventory, jobs, parallel)
    rest = [job for job in jobs if job.box not in answered]
    own = {r.box: r for r in pool.run_many(rest, parallel=parallel)}
    return BatchOutcome([answered.get(job.box) or own[job.box] for job in jobs],
                        len(answered))
