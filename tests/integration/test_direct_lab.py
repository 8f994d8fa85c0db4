"""The direct path on fresh lab boxes: one SSH round trip per box converges what the
Ansible roles converge. Proven both ways: after `dnabox up` (direct) the playbooks find
nothing to change, and the boxes pass the overlay and container proofs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from dnabox.adapters.ssh import ConnectionPool
from dnabox.plan.roles import roles_for
from dnabox.provision.proofs import container_run, cross_site_pairs, overlay_ping

if TYPE_CHECKING:
    from conftest import Lab  # type: ignore[import-not-found]

pytestmark = pytest.mark.lab


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def direct_run(lab: Lab) -> list[dict[str, Any]]:
    lab.down()  # fresh boxes: no package, file or daemon of any role yet
    lab.up()
    result = lab.cli("up", "-i", str(lab.inventory), "--json", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return events(result.stdout)


def test_fresh_boxes_take_the_direct_path_for_every_role(
        lab: Lab, direct_run: list[dict[str, Any]]) -> None:
    tasks = [e for e in direct_run if e.get("kind") == "task"]
    assert tasks, "nothing ran"
    assert {e["data"]["engine"] for e in tasks} == {"direct"}, "no ansible-playbook may run"
    for box in lab.fleet.boxes:
        steps = [e["message"] for e in tasks
                 if e["box"] == box.name and e["data"]["status"] == "started"]
        assert steps[:2] == ["base: /usr/sbin/policy-rc.d", "packages"], box.name
        assert steps[-1] == "fingerprints", box.name
        stored = json.loads(lab.run(box.name, "cat /var/lib/dnabox/fingerprints.json").stdout)
        assert set(stored["fingerprints"]) == set(roles_for(lab.fleet, box))


def test_the_playbooks_find_nothing_to_change_after_the_direct_path(
        lab: Lab, direct_run: list[dict[str, Any]]) -> None:
    result = lab.cli("bootstrap", "-i", str(lab.inventory), "--json", timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    changed = {row["name"]: row["changed"] for row in summary["boxes"]}
    assert changed == {b.name: 0 for b in lab.fleet.boxes}


def test_direct_boxes_pass_the_overlay_and_container_proofs(
        lab: Lab, direct_run: list[dict[str, Any]]) -> None:
    with ConnectionPool() as pool:
        proofs = [overlay_ping(lab.fleet, pool, src, dst, overlay)
                  for src, dst, overlay in cross_site_pairs(lab.fleet)]
        proofs.append(container_run(lab.fleet, pool, lab.fleet.boxes[0]))
    failed = [f"{p.what}: {p.detail}" for p in proofs if not p.ok]
    assert proofs and failed == []


def test_a_second_direct_run_changes_nothing(lab: Lab, direct_run: list[dict[str, Any]]) -> None:
    for box in lab.fleet.boxes:  # forget every fingerprint: the whole program runs again
        lab.run(box.name, "rm /var/lib/dnabox/fingerprints.json")
    result = lab.cli("up", "-i", str(lab.inventory), "--json", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    changes = [f"{e['box']}: {e['message']}" for e in events(result.stdout)
               if e.get("kind") == "task" and e["data"]["status"] == "changed"]
    assert changes == []
