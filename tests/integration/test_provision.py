"""The provisioner on real lab boxes: converge, converged re-run, drift, exec, and faults."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from dnabox import lab as lab_api
from dnabox.lab import processes
from dnabox.lab import state as lab_state

if TYPE_CHECKING:
    from conftest import Lab  # type: ignore[import-not-found]

pytestmark = pytest.mark.lab

FINGERPRINTS = "/var/lib/dnabox/fingerprints.json"
ROOT = Path(__file__).resolve().parents[2]
DNABOX = (sys.executable, "-m", "dnabox")


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def unit_results(evts: list[dict[str, Any]]) -> dict[str, str]:
    return {e["unit"]: e["status"] for e in evts
            if e.get("kind") == "unit" and e["status"] != "started"}


def up(lab: Lab, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return lab.cli("up", "-i", str(lab.inventory), "--json", *args, timeout=timeout)


def forget_role(lab: Lab, box: str, role: str) -> None:
    """Drop one role's fingerprint on a box, so the next `up` runs that role there only."""
    lab.run(box, f"python3 -c \"import json; p='{FINGERPRINTS}'; d=json.load(open(p)); "
                 f"d['fingerprints'].pop('{role}', None); json.dump(d, open(p, 'w'))\"")


@pytest.fixture(scope="module")
def converged(lab: Lab) -> Lab:
    first = up(lab)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return lab


def test_up_converges_and_records_fingerprints(converged: Lab) -> None:
    for box in converged.fleet.boxes:
        stored = json.loads(converged.run(box.name, f"cat {FINGERPRINTS}").stdout)
        assert {"base", "container_runtime", "ovs", "cni"} <= set(stored["fingerprints"])
        assert "kata" not in stored["fingerprints"], "the lab skips kata"
    status = converged.cli("status", "-i", str(converged.inventory), "--json")
    assert status.returncode == 0, status.stdout
    assert {b["state"] for b in json.loads(status.stdout)["boxes"]} == {"converged"}


def test_converged_rerun_runs_no_ansible(converged: Lab) -> None:
    again = up(converged)
    assert again.returncode == 0, again.stdout[-2000:]
    evts = events(again.stdout)
    assert not [e for e in evts if e.get("kind") == "task"], "no Ansible task may run"
    boxes = [e for e in evts if e.get("kind") == "box" and e["status"] == "info"]
    assert {e["message"] for e in boxes} == {"converged"}
    assert len(boxes) == len(converged.fleet.boxes)


def test_drift_is_shown_planned_and_repaired(converged: Lab) -> None:
    path = "/etc/sysctl.d/90-dnabox.conf"
    converged.run("edge-b-1", f"echo 'vm.swappiness = 77' >> {path}")
    drift = converged.cli("drift", "-i", str(converged.inventory), "--json")
    assert drift.returncode == 1
    drifted = json.loads(drift.stdout)["drifted"]
    assert list(drifted) == ["edge-b-1"]
    assert "-vm.swappiness = 77" in drifted["edge-b-1"][path]
    plan = converged.cli("plan", "-i", str(converged.inventory), "--json")
    roles = {b["name"]: b["roles"] for b in json.loads(plan.stdout)["boxes"]}
    assert roles["edge-b-1"]["base"] == "drifted"
    assert roles["core-1"]["base"] == "converged"
    repaired = up(converged)
    assert repaired.returncode == 0, repaired.stdout[-2000:]
    ran = {e["box"] for e in events(repaired.stdout) if e.get("kind") == "task"}
    assert ran == {"edge-b-1"}, "only the drifted box runs Ansible"
    assert "77" not in converged.run("edge-b-1", f"cat {path}").stdout
    assert converged.cli("drift", "-i", str(converged.inventory)).returncode == 0


def test_exec_fans_out_with_exit_codes(converged: Lab) -> None:
    ok = converged.cli("exec", "-i", str(converged.inventory), "--tier", "edge", "--json",
                       "--", "hostname")
    assert ok.returncode == 0
    boxes = {b["name"]: b for b in json.loads(ok.stdout)["boxes"]}
    assert set(boxes) == {"edge-a-1", "edge-b-1"}
    assert all(b["output"] == [name] and b["rc"] == 0 for name, b in boxes.items())
    failing = converged.cli("exec", "-i", str(converged.inventory), "--json", "--",
                            "test \"$(hostname)\" != core-1")
    assert failing.returncode == 1
    rcs = {b["name"]: b["rc"] for b in json.loads(failing.stdout)["boxes"]}
    assert rcs == {"core-1": 1, "edge-a-1": 0, "edge-b-1": 0, "end-a-1": 0}


def test_changed_host_key_is_refused(converged: Lab, tmp_path: Path) -> None:
    known_hosts = Path(converged.fleet.defaults.ssh.known_hosts or "")
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(tmp_path / "impostor")], check=True)
    assert other.returncode == 0
    impostor = (tmp_path / "impostor.pub").read_text().split()[:2]
    lines = []
    for line in known_hosts.read_text().splitlines():
        host = line.split()[0]
        lines.append(f"{host} {' '.join(impostor)}" if host in {"10.201.1.11",
                                                                  "[10.201.1.11]:22"} else line)
    (tmp_path / "known_hosts").write_text("\n".join(lines) + "\n")
    data = yaml.safe_load(converged.inventory.read_text())
    data["defaults"]["ssh"]["known_hosts"] = str(tmp_path / "known_hosts")
    inventory = tmp_path / "lab.yaml"
    inventory.write_text(yaml.safe_dump(data))
    result = converged.cli("exec", "-i", str(inventory), "--json", "--", "true")
    boxes = {b["name"]: b for b in json.loads(result.stdout)["boxes"]}
    assert result.returncode == 1
    assert boxes["core-1"]["rc"] is None and "CHANGED host key" in boxes["core-1"]["error"]
    assert boxes["edge-a-1"]["rc"] == 0


@pytest.mark.fault
def test_dead_box_fails_its_site_only_and_a_rerun_completes_it(converged: Lab) -> None:
    for box in converged.fleet.boxes:
        forget_role(converged, box.name, "cni")
    # The box's PID 1 (its sshd): killing it takes the box down at once, as a crash would.
    init = lab_state.load(converged.paths.state_file(converged.fleet.name))
    assert init is not None
    processes.kill(init.boxes["end-a-1"].init)
    while processes.alive(init.boxes["end-a-1"].init):
        pass  # SIGKILL is delivered asynchronously: wait for the kernel to end the process
    result = up(converged)
    assert result.returncode == 1
    units = unit_results(events(result.stdout))
    assert units["preflight:end-a-1"] == "failed"
    assert units["bootstrap:end-a"] == "blocked"
    for site in ("core", "edge-a", "edge-b"):
        assert units[f"bootstrap:{site}"] == "changed", units
    converged.up()  # the lab restarts the dead box
    rerun = up(converged)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    ran = {e["box"] for e in events(rerun.stdout) if e.get("kind") == "task"}
    assert ran == {"end-a-1"}, "the other sites already converged"


@pytest.mark.fault
def test_box_killed_mid_install_fails_its_site_only_and_a_rerun_repairs_it(
        converged: Lab) -> None:
    for box in converged.fleet.boxes:
        forget_role(converged, box.name, "cni")
    # end-a-1 must install a package again, from a package server the test holds frozen: its
    # package step waits there until the box has been killed, however slow this machine is.
    # `apt-get clean`: a .deb left in apt's cache would install without the server.
    converged.run("end-a-1", f"rm -f {FINGERPRINTS} && dpkg --purge crun >/dev/null "
                             "&& apt-get clean")
    init = lab_state.load(converged.paths.state_file(converged.fleet.name))
    assert init is not None
    victim = init.boxes["end-a-1"].init
    lab_api.freeze(converged.fleet, [], package_server=True, paths=converged.paths)
    try:
        running = subprocess.Popen([*DNABOX, "up", "-i", str(converged.inventory), "--json"],
                                   cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert running.stdout is not None
        seen: list[dict[str, Any]] = []
        for line in running.stdout:
            seen.append(json.loads(line))
            event = seen[-1]
            if (event.get("kind"), event.get("box"), event.get("message")) == (
                    "task", "end-a-1", "packages") and victim is not None:
                processes.kill(victim)  # the box's PID 1: every process in it dies at once
                victim = None
                lab_api.freeze(converged.fleet, [], frozen=False, package_server=True,
                               paths=converged.paths)
    finally:
        lab_api.freeze(converged.fleet, [], frozen=False, package_server=True,
                       paths=converged.paths)
    assert running.wait(timeout=600) == 1
    assert victim is None, "end-a-1 never reached its package step"
    units = unit_results(seen)
    assert units["preflight:end-a-1"] != "failed", "the box died after preflight, mid-run"
    assert units["bootstrap:end-a"] == "failed", units
    for site in ("core", "edge-a", "edge-b"):
        assert units[f"bootstrap:{site}"] == "changed", units
    assert any(e.get("kind") == "task" and e["status"] == "failed" and e["box"] == "end-a-1"
               for e in seen)
    converged.up()  # the lab restarts the dead box on its (half-installed) root filesystem
    rerun = up(converged)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    assert {e["box"] for e in events(rerun.stdout) if e.get("kind") == "task"} == {"end-a-1"}
    converged.run("end-a-1", "command -v crun && dpkg --audit")


@pytest.mark.fault
def test_a_site_cut_off_mid_run_fails_alone_and_resume_completes_it(converged: Lab) -> None:
    """A site's WAN link drops while `up` works on it (`lab partition --wan`: the controller
    loses its boxes too). Synchronised on the run's own events and a frozen package server:
    edge-b-1 waits for a package the test holds back, the cut comes while it waits.

    The run fails edge-b only (the lost connection is noticed by SSH keepalives, not at the
    step's timeout) and converges every other site; after heal, `--resume` completes edge-b
    without repeating the sites that finished."""
    victim, site = "edge-b-1", "edge-b"
    for box in converged.fleet.boxes:
        forget_role(converged, box.name, "cni")
    forget_role(converged, victim, "container_runtime")
    # `apt-get clean`: a .deb left in apt's cache would install without the server.
    converged.run(victim, "dpkg --purge crun >/dev/null && apt-get clean")
    inventory = str(converged.inventory)
    lab_api.freeze(converged.fleet, [], package_server=True, paths=converged.paths)
    cut = False
    try:
        running = subprocess.Popen([*DNABOX, "up", "-i", inventory, "--json"],
                                   cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert running.stdout is not None
        seen: list[dict[str, Any]] = []
        for line in running.stdout:
            seen.append(json.loads(line))
            event = seen[-1]
            if (event.get("kind"), event.get("box"), event.get("message")) == (
                    "task", victim, "packages") and not cut:
                cutting = converged.cli("lab", "partition", "-i", inventory, "--site", site,
                                        "--wan", "--json")
                assert cutting.returncode == 0, cutting.stdout + cutting.stderr
                cut = True
        assert running.wait(timeout=600) == 1
    finally:
        healed = converged.cli("lab", "heal", "-i", inventory, "--site", site)
        lab_api.freeze(converged.fleet, [], frozen=False, package_server=True,
                       paths=converged.paths)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert cut, f"{victim} never reached its package step"
    units = unit_results(seen)
    assert units[f"bootstrap:{site}"] == "failed", units
    for other in ("core", "edge-a", "end-a"):
        assert units[f"bootstrap:{other}"] == "changed", units
    lost = [e for e in seen if e.get("kind") == "task" and e["status"] == "failed"]
    assert {e["box"] for e in lost} == {victim}, lost
    assert "connection lost" in lost[0]["message"], lost[0]
    resumed = up(converged, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    again = events(resumed.stdout)
    units = unit_results(again)
    for other in ("core", "edge-a", "end-a"):
        assert units[f"bootstrap:{other}"] == "skipped", f"bootstrap:{other} was repeated"
    assert {e["box"] for e in again if e.get("kind") == "task"} <= {victim}
    converged.run(victim, "command -v crun && dpkg --audit")
    status = converged.cli("status", "-i", inventory, "--json")
    assert status.returncode == 0, status.stdout


@pytest.mark.fault
def test_concurrent_up_is_refused_and_resume_skips_finished_work(converged: Lab) -> None:
    """Synchronised on the run's own events, on a stopped process and on a frozen package
    server, never on timing.

    The first run is stopped (SIGSTOP: it holds the fleet lock, as a run still working does)
    while a second `up` is refused. end-a-1 has to install a package from a frozen server,
    so the first run cannot finish well before the test interrupts it; the other sites
    finish, and the resumed run must skip what they finished.
    """
    for box in converged.fleet.boxes:
        forget_role(converged, box.name, "cni")
    # `apt-get clean`: a .deb left in apt's cache would install without the server.
    converged.run("end-a-1", "dpkg --purge containernetworking-plugins >/dev/null "
                             "&& apt-get clean")
    lab_api.freeze(converged.fleet, [], package_server=True, paths=converged.paths)
    try:
        # Through Ansible, whose apt task waits on the frozen server (as on a stalled mirror).
        first = subprocess.Popen([*DNABOX, "up", "-i", str(converged.inventory), "--json",
                                  "--per-site", "1", "--engine", "ansible"],
                                 cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert first.stdout is not None
        seen: list[dict[str, Any]] = []
        for line in first.stdout:
            seen.append(json.loads(line))
            if seen[-1].get("kind") == "run":
                first.send_signal(signal.SIGSTOP)  # it holds the lock and cannot finish
                try:
                    second = up(converged, timeout=120)
                finally:
                    first.send_signal(signal.SIGCONT)
                assert second.returncode == 5, second.stdout + second.stderr
                assert "another dnabox run" in second.stderr
            if seen[-1].get("kind") == "unit" and seen[-1]["status"] == "changed":
                first.send_signal(signal.SIGINT)  # Ctrl-C after the first site converged
                break
        end_a = [e for e in seen if e.get("unit") == "bootstrap:end-a"
                 or e.get("box") == "end-a-1"]
        assert not any(e.get("kind") == "unit" and e["status"] in {"ok", "changed"}
                       for e in end_a), f"end-a installed without its server: {end_a}"
    finally:
        lab_api.freeze(converged.fleet, [], frozen=False, package_server=True,
                       paths=converged.paths)
    first.communicate(timeout=600)
    finished = {e["unit"] for e in seen if e.get("kind") == "unit" and e["status"] == "changed"}
    assert finished
    resumed = up(converged, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    units = unit_results(events(resumed.stdout))
    for unit in finished:
        assert units[unit] == "skipped", f"{unit} was repeated"
    converged.run("end-a-1", "dpkg-query -W containernetworking-plugins >/dev/null")
