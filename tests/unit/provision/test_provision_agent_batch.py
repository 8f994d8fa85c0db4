"""`dnabox status` and `up`'s preflight ride on the agent's connections: the batch request."""

from __future__ import annotations

import os

import pytest
from test_provision_agent_server import Running, running  # noqa: F401  (the fixture)

from dnabox.adapters.jobs import Job
from dnabox.adapters.ssh import ConnectionPool
from dnabox.inventory import load_fleet
from dnabox.provision.agent.batch import ask_agent, run_batch
from dnabox.provision.agent.requests import BatchJob, Fallback, batch_request, parse_batch


def test_batch_request_round_trips_and_sends_each_command_once() -> None:
    jobs = [BatchJob("a", "cat /x", b"", 60.0), BatchJob("b", "cat /x", b"\x00in", 5.0),
            BatchJob("c", "uptime", b"", 60.0)]
    request = batch_request("/fleet.yaml", "/work", jobs, 100)
    assert request["commands"] == ["cat /x", "uptime"]
    assert parse_batch(request, "/work") == ("/fleet.yaml", jobs, 100)


@pytest.mark.parametrize(("key", "value"), [
    ("inventory", "relative.yaml"), ("commands", [1]), ("parallel", 0), ("jobs", "x"),
    ("jobs", [["a", 5, "", 1.0]]), ("jobs", [["a", 0, "%%%", 1.0]]), ("jobs", [["a"]]),
])
def test_malformed_batches_go_to_the_full_cli(key: str, value: object) -> None:
    request = batch_request("/fleet.yaml", "/work", [BatchJob("a", "true", b"", 1.0)], 8)
    with pytest.raises(Fallback, match="malformed"):
        parse_batch({**request, key: value}, "/work")
    with pytest.raises(Fallback, match="working directory"):
        parse_batch(request, "/elsewhere")


def _jobs(agent: Running, names: list[str]) -> list[Job]:
    fleet = load_fleet(agent.inventory)
    return [Job(name, fleet.ssh_for(fleet.box(name)), "true", timeout=5) for name in names]


def test_agent_answers_a_batch_for_every_box(running: Running) -> None:  # noqa: F811
    answers = ask_agent("dead", str(running.inventory), _jobs(running, ["a", "b"]))
    assert sorted(answers) == ["a", "b"]
    assert all(a.result is None and "unreachable" in a.error and a.error_kind == "remote"
               for a in answers.values())
    status = running.ask({"op": "status"}) or {}
    assert status["requests"] == 1


def test_a_box_the_agent_does_not_know_means_no_answer(running: Running) -> None:  # noqa: F811
    jobs = _jobs(running, ["a"])
    unknown = [Job("zz", jobs[0].ssh, "true")]
    assert ask_agent("dead", str(running.inventory), [*jobs, *unknown]) == {}


def test_without_an_agent_the_callers_pool_answers(running: Running,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNABOX_AGENT_PERSIST", "0")
    jobs = _jobs(running, ["a", "b"])
    with ConnectionPool() as pool:
        outcome = run_batch("dead", str(running.inventory), jobs, pool)
    assert outcome.via_agent == 0
    assert [r.box for r in outcome.results] == ["a", "b"]
    assert all("unreachable" in r.error for r in outcome.results)
    assert os.environ["DNABOX_AGENT_PERSIST"] == "0"
