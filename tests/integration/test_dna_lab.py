"""The D-N-A data layer on the lab: real SSH, real nats-server, real JetStream.

Samples published at the end device reach its edge pond and the core lake exactly once;
a partitioned edge keeps every sample and the lake catches up on heal; a killed edge
nats-server loses no acknowledged sample once `dnabox up` repaired it; a converged fleet
re-runs nothing and a retention change re-runs only the box it touches. Waits poll the
streams' state (with a deadline), never a fixed sleep.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Lab  # type: ignore[import-not-found]

pytestmark = pytest.mark.lab

PRODUCER = "end-a-1"
LEAF = "edge-a-1"
HUB = "core-1"
SITE = "edge-a"
TOOL = "/usr/local/sbin/dnabox-jetstream"
CLIENT = "/etc/dnabox/dna/client.json"
# Figures the report quotes (ingest rate, catch-up time), printed with -s.
FIGURES: dict[str, float] = {}


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def up(lab: Lab, inventory: Path | None = None) -> list[dict[str, Any]]:
    result = lab.cli("up", "-i", str(inventory or lab.inventory), "--json", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return events(result.stdout)


def status(lab: Lab) -> dict[str, Any]:
    result = lab.cli("dna", "status", "-i", str(lab.inventory), "--json", timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def ids(lab: Lab, box: str, stream: str, domain: str = "") -> Counter[str]:
    result = lab.run(box, f"{TOOL} ids {stream} {domain}".strip(), timeout=120)
    return Counter(json.loads(result.stdout))


def wait_until(what: str, ready: Callable[[], bool], timeout: float = 120,
               explain: Callable[[], str] = lambda: "") -> float:
    """Poll a stream state until ``ready``; the seconds it took. On a timeout the failure
    carries ``explain()`` (e.g. the stream's sources and the servers' logs)."""
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{explain()}")
        time.sleep(0.2)  # a poll interval, not a synchronisation: ready() decides
    return time.monotonic() - started


def publish(lab: Lab, count: int) -> dict[str, Any]:
    result = lab.cli("dna", "publish", "-i", str(lab.inventory), "--box", PRODUCER,
                     "--count", str(count), "--json", timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["published"] == count
    assert report["duplicates"] == 0, f"ids the pond already held: {report}"
    return report


def sample_ids(first: int, last: int) -> set[str]:
    return {f"{PRODUCER}:{seq}" for seq in range(first, last + 1)}


def lake_total(lab: Lab) -> int:
    return int(status(lab)["lake"]["samples"])


def lake_story(lab: Lab) -> str:
    """What a stuck lake looks like from the inside: its sources and both servers' logs."""
    parts = [f"lake total {lake_total(lab)}"]
    for box, command in ((HUB, f"{TOOL} info LAKE_TRAFFIC"),
                         (HUB, "tail -n 30 /var/log/dnabox/nats.log"),
                         (LEAF, "tail -n 30 /var/log/dnabox/nats.log")):
        result = lab.run(box, f"{command} 2>&1 || true", timeout=60)
        parts.append(f"--- {box}: {command}\n{result.stdout[-4000:]}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def dna(lab: Lab) -> Iterator[Lab]:
    up(lab)
    yield lab
    # What the tests measured, for the report (visible with -s).
    print("\nDNA_FIGURES " + json.dumps({k: round(v, 2) for k, v in FIGURES.items()}))


def test_samples_reach_pond_and_lake_exactly_once(dna: Lab) -> None:
    before = lake_total(dna)
    report = publish(dna, 2000)
    FIGURES["publish_rate_per_s"] = report["rate"]
    published = sample_ids(report["first_seq"], report["last_seq"])
    waited = wait_until("the lake to hold the samples",
                        lambda: lake_total(dna) == before + len(published))
    FIGURES["end_to_lake_s_for_2000"] = waited
    pond = ids(dna, HUB, "POND_TRAFFIC", SITE)  # read through the edge's JetStream domain
    lake = ids(dna, HUB, "LAKE_TRAFFIC")
    for where, held in (("pond", pond), ("lake", lake)):
        assert all(held[i] == 1 for i in published), f"a sample is missing or doubled in {where}"
        assert all(count == 1 for count in held.values()), f"a duplicate in the {where}"
    final = status(dna)
    assert final["lake"]["by_site"][SITE] == sum(
        1 for i in lake if i.startswith(f"{PRODUCER}:"))
    catalogue = final["catalogue"][f"traffic.{SITE}"]
    assert catalogue["samples"] == final["lake"]["by_site"][SITE]
    assert catalogue["first_ts"] <= catalogue["last_ts"]
    [pond_row] = [p for p in final["ponds"] if p["site"] == SITE]
    assert pond_row["lag"] == 0


def test_a_partitioned_edge_keeps_every_sample_and_the_lake_catches_up(dna: Lab) -> None:
    base = lake_total(dna)
    cut = dna.cli("lab", "partition", "-i", str(dna.inventory), "--site", SITE, "--json")
    assert cut.returncode == 0, cut.stderr
    try:
        started = time.monotonic()
        published: set[str] = set()
        # The hub loses the edge's pond: its JetStream domain no longer answers.
        wait_until("the hub to lose the edge", lambda: any(
            p["samples"] is None for p in status(dna)["ponds"] if p["site"] == SITE))
        # Publish for at least 30 s while cut off; the management plane still carries SSH.
        while time.monotonic() - started < 30:
            report = publish(dna, 500)
            published |= sample_ids(report["first_seq"], report["last_seq"])
        assert lake_total(dna) == base, "samples crossed a partitioned link"
        pond = ids(dna, LEAF, "POND_TRAFFIC")  # at the edge itself
        assert all(pond[i] == 1 for i in published)
    finally:
        healed = dna.cli("lab", "heal", "-i", str(dna.inventory), "--site", SITE)
        assert healed.returncode == 0, healed.stderr
    seconds = wait_until("the lake to catch up after heal",
                         lambda: lake_total(dna) == base + len(published), timeout=180,
                         explain=lambda: lake_story(dna))
    FIGURES["partition_samples"] = len(published)
    FIGURES["catch_up_s"] = seconds
    lake = ids(dna, HUB, "LAKE_TRAFFIC")
    assert all(lake[i] == 1 for i in published), "a sample was lost or doubled"
    assert all(count == 1 for count in lake.values())


def test_a_killed_edge_nats_server_loses_no_acknowledged_sample(dna: Lab) -> None:
    last = dna.run(PRODUCER, "cat /var/lib/dnabox/dna/publish-traffic.seq 2>/dev/null "
                             "|| echo 0").stdout.strip()
    first = int(last or 0) + 1
    before = sum(1 for _ in ids(dna, LEAF, "POND_TRAFFIC"))
    publisher = subprocess.Popen(
        dna.ssh_argv(PRODUCER, [f"{TOOL} publish {CLIENT} traffic 200000 {first}"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Mid-stream: the pond has taken some of this run's samples.
        wait_until("the pond to take samples", lambda: json.loads(dna.run(
            LEAF, f"{TOOL} info POND_TRAFFIC").stdout)["state"]["messages"] > before + 1000)
        dna.run(LEAF, "kill -9 $(cat /run/dnabox/nats.pid)")
        out, _ = publisher.communicate(timeout=120)
    finally:
        publisher.kill()
    assert publisher.returncode != 0, "the publisher should have lost its server"
    report = json.loads(out.strip().splitlines()[-1])
    acknowledged = sample_ids(first, report["acked_through"])
    assert len(acknowledged) > 1000
    assert dna.run(LEAF, "/usr/local/sbin/dnabox-dna-apply --probe", check=False).returncode != 0
    repaired = up(dna)
    ran = {(e["box"], e["message"]) for e in repaired if e.get("kind") == "task"
           and e["data"].get("status") == "started"}
    assert (LEAF, "dna: apply") in ran, "dnabox up did not repair the dead nats-server"
    pond = ids(dna, LEAF, "POND_TRAFFIC")
    missing = [i for i in acknowledged if pond[i] != 1]
    assert missing == [], f"{len(missing)} acknowledged samples lost, e.g. {missing[:3]}"
    # Samples past the last acknowledged one may be stored too (sent, their ack lost with the
    # server): the next run starts after the highest id the pond holds, not after the last
    # acknowledged (those ids would be duplicates, acknowledged and not stored).
    highest = max(int(i.rsplit(":", 1)[1]) for i in pond if i.startswith(f"{PRODUCER}:"))
    assert highest >= report["acked_through"]
    dna.run(PRODUCER, f"echo {highest} > /var/lib/dnabox/dna/publish-traffic.seq")
    # And they reach the lake, once each: the pond's lag to the lake drains to 0.
    wait_until("the lake to catch up with the repaired pond", lambda: all(
        p["lag"] == 0 for p in status(dna)["ponds"] if p["site"] == SITE))
    lake = ids(dna, HUB, "LAKE_TRAFFIC")
    assert all(lake[i] == 1 for i in acknowledged)


def test_a_converged_fleet_runs_nothing_and_retention_reruns_only_its_pond(
        dna: Lab, tmp_path: Path) -> None:
    again = up(dna)
    assert [e for e in again if e.get("kind") == "task"] == [], "a converged fleet ran tasks"
    changed = tmp_path / "lab.yaml"
    changed.write_text(dna.inventory.read_text().replace("max_bytes: 64MiB", "max_bytes: 48MiB"))
    try:
        touched = up(dna, changed)
        tasks = [e for e in touched if e.get("kind") == "task"]
        assert {e["box"] for e in tasks} == {LEAF}
        changes = [e["message"] for e in tasks if e["data"].get("status") == "changed"]
        assert any("POND_TRAFFIC updated (max_bytes)" in c for c in changes), changes
        info = json.loads(dna.run(LEAF, f"{TOOL} info POND_TRAFFIC").stdout)
        assert info["config"]["max_bytes"] == 48 << 20
    finally:
        up(dna)  # back to the checked-in fleet
    info = json.loads(dna.run(LEAF, f"{TOOL} info POND_TRAFFIC").stdout)
    assert info["config"]["max_bytes"] == 64 << 20


def test_rotated_credentials_reach_every_box_and_each_server_restarts_on_them(
        dna: Lab) -> None:
    """Rotation is removing the fleet's D-N-A credentials and running `dnabox up`: every box
    holding a secret runs the dna role again, each nats-server restarts on the new
    passwords, and publishing works at once. (Before, the boxes looked converged and kept
    passwords nobody held: CI met it as an Authorization Violation.)"""
    from dnabox.locations import Locations

    credentials = Locations.discover(dna.inventory.parent).fleet_state(
        dna.fleet.name) / "dna" / "credentials"
    assert credentials.is_dir(), "the dna fixture's `up` made the credentials"
    shutil.rmtree(credentials)
    read = dna.cli("status", "-i", str(dna.inventory), "--json", timeout=120)
    assert read.returncode == 1, read.stdout + read.stderr
    assert not credentials.exists(), "status creates nothing"
    due = {b["name"]: b["roles"] for b in json.loads(read.stdout)["boxes"]
           if b["state"] != "converged"}
    assert {HUB, LEAF, PRODUCER} <= set(due), due
    assert all(roles["dna"] != "converged" for roles in due.values())
    assert all(why == "converged" for roles in due.values()
               for role, why in roles.items() if role != "dna"), due
    rotated = up(dna)
    changes = {(e["box"], e["message"]) for e in rotated if e.get("kind") == "task"
               and e["data"].get("status") == "changed"}
    for server in (HUB, LEAF):
        assert any(box == server and "nats-server restarted" in what
                   for box, what in changes), f"{server} kept its old passwords: {changes}"
    before = lake_total(dna)
    report = publish(dna, 100)
    wait_until("the lake to take samples sent with the new passwords",
               lambda: lake_total(dna) == before + report["published"],
               explain=lambda: lake_story(dna))
    assert [e for e in up(dna) if e.get("kind") == "task"] == [], "rotation converged"
