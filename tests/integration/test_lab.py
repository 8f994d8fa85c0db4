"""The lab builds real boxes: strict SSH, own filesystems, routed sites, a local package
repository, idempotent `up`, and a `down` that leaves nothing behind, even after a crash.

The last test tears the session lab down and brings it up again: keep it last.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from dnabox import lab as lab_api
from dnabox.inventory import load_fleet
from dnabox.lab.layout import MEMORY_LIMITS

if TYPE_CHECKING:
    from conftest import Lab

ROOT = Path(__file__).resolve().parents[2]
DNABOX = [sys.executable, "-c", "from dnabox.cli.app import main; main()"]

pytestmark = pytest.mark.lab

CONNECT = """
import socket, sys
for address in sys.argv[1:]:
    try:
        with socket.create_connection((address, 22), timeout=3) as conn:
            print(address, conn.recv(8).decode())
    except OSError as exc:
        print(address, "errno", exc.errno)
"""


def test_every_box_answers_its_hostname_over_strict_ssh(lab: Lab) -> None:
    for box in lab.fleet.boxes:
        result = lab.cli("lab", "ssh", box.name, "-i", str(lab.inventory), "--", "hostname")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == box.name
    recorded = lab.paths.known_hosts(lab.fleet.name).read_text().splitlines()
    assert sorted(line.split()[0] for line in recorded) == sorted(
        str(b.address) for b in lab.fleet.boxes)


def test_unknown_or_wrong_host_keys_are_refused(lab: Lab, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    refused = subprocess.run(lab.ssh_argv("core-1", ["true"], known_hosts=empty),
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr
    # core-1's address recorded with edge-a-1's key: a box impersonating another.
    lines = lab.paths.known_hosts(lab.fleet.name).read_text().splitlines()
    keys = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines}
    swapped = tmp_path / "swapped_known_hosts"
    swapped.write_text(f"10.201.1.11 {keys['10.201.2.11']}\n")
    mismatch = subprocess.run(lab.ssh_argv("core-1", ["true"], known_hosts=swapped),
                              capture_output=True, text=True, check=False)
    assert mismatch.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in mismatch.stderr
    assert len(set(keys.values())) == len(lab.fleet.boxes)  # one host key per box


def test_boxes_have_separate_filesystems(lab: Lab) -> None:
    marker = f"/root/marker-{uuid.uuid4().hex}"
    lab.run("core-1", f"echo core-1 > {marker}")
    assert lab.run("core-1", f"cat {marker}").stdout.strip() == "core-1"
    for other in ("edge-a-1", "end-a-1"):
        assert lab.run(other, f"test -e {marker}", check=False).returncode == 1
    assert not Path(marker).exists()
    assert not (lab.paths.rootfs("bookworm") / marker.lstrip("/")).exists()


def test_box_is_isolated_with_its_own_pid_1_hostname_and_memory_limit(lab: Lab) -> None:
    for box in lab.fleet.boxes:
        result = lab.run(box.name, "cat /proc/1/comm; cat /proc/sys/kernel/hostname; "
                         "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                         "/sys/fs/cgroup/memory.max 2>/dev/null; ls /dev/net/tun")
        comm, hostname, limit, tun = result.stdout.split()
        assert (comm, hostname, tun) == ("sh", box.name, "/dev/net/tun")
        assert int(limit) == MEMORY_LIMITS[box.size]


def test_boxes_reach_each_other_across_sites_on_every_plane(lab: Lab) -> None:
    others = [b for b in lab.fleet.boxes if b.name != "core-1"]
    targets = [str(b.address) for b in others] + [str(b.interfaces["D"].address.ip)
                                                   for b in others]
    result = lab.run("core-1", "python3 - " + " ".join(targets), stdin=CONNECT)
    answers = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    assert answers == {address: "SSH-2.0-" for address in targets}


def test_boxes_reach_nothing_outside_the_lab(lab: Lab) -> None:
    route = json.loads(subprocess.run(["ip", "-j", "route", "get", "192.0.2.1"],
                                      capture_output=True, text=True, check=True).stdout)
    host_addresses = [r["prefsrc"] for r in route if "prefsrc" in r]
    targets = ["192.0.2.1", *host_addresses]
    result = lab.run("edge-b-1", "python3 - " + " ".join(targets), stdin=CONNECT)
    answers = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    for address in targets:  # ENETUNREACH / EHOSTUNREACH: the router has no way out
        assert answers[address] in ("errno 101", "errno 113"), (address, answers[address])


def test_apt_installs_from_the_local_repository_and_ovs_runs_in_a_box(lab: Lab) -> None:
    # --reinstall: downloads from the lab's repository even if a role installed it already.
    lab.run("end-a-1", "apt-get -q update && DEBIAN_FRONTEND=noninteractive "
            "apt-get -q -y install --reinstall openvswitch-switch", timeout=300)
    # A private OVS (own database, sockets and network namespace): the test neither meets
    # nor disturbs an OVS the bootstrap roles may run in this box.
    result = lab.run("end-a-1", """set -e
        d=$(mktemp -d)
        ovsdb-tool create $d/conf.db /usr/share/openvswitch/vswitch.ovsschema
        unshare --net sh -ec '
          db=unix:$0/db.sock
          ovsdb-server $0/conf.db --remote=punix:$0/db.sock --pidfile=$0/db.pid \\
            --unixctl=$0/db.ctl --no-chdir --detach --log-file=$0/db.log
          ovs-vsctl --db=$db --no-wait init
          ovs-vswitchd $db --pidfile=$0/vs.pid --unixctl=$0/vs.ctl --no-chdir --detach \\
            --log-file=$0/vs.log
          ip link add veth-a type veth peer name veth-b
          ovs-vsctl --db=$db add-br br-test -- set bridge br-test datapath_type=netdev
          ovs-vsctl --db=$db add-port br-test veth-a
          ovs-vsctl --db=$db list-ports br-test
          ip -br link show br-test
          ovs-appctl -t $0/vs.ctl exit
          ovs-appctl -t $0/db.ctl exit' $d""")
    lines = result.stdout.splitlines()
    assert "veth-a" in lines
    assert lines[-1].startswith("br-test")  # the netdev bridge's tap device


def test_killing_sshd_stops_the_box_and_up_restarts_it_like_a_reboot(lab: Lab) -> None:
    known_hosts = lab.paths.known_hosts(lab.fleet.name).read_text()
    lab.run("edge-b-1", "echo before-crash > /root/crash-marker")
    lab.run("edge-b-1", "kill -9 $(cat /run/sshd.pid)", check=False)
    deadline = time.monotonic() + 10
    while _state_of(lab, "edge-b-1") != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state_of(lab, "edge-b-1") == "stopped"
    report = lab.up()
    assert report.started == ["edge-b-1"]
    assert lab.run("edge-b-1", "cat /root/crash-marker").stdout.strip() == "before-crash"
    assert lab.paths.known_hosts(lab.fleet.name).read_text() == known_hosts


def test_pid_1_reaps_orphans(lab: Lab) -> None:
    lab.run("core-1", "sh -c 'sleep 0.2 &'; sleep 0.6")
    states = lab.run("core-1", "cat /proc/[0-9]*/stat").stdout
    zombies = [line for line in states.splitlines() if line.split(") ")[1].startswith("Z")]
    assert zombies == []


def _state_of(lab: Lab, box: str) -> str:
    return next(s.state for s in lab_api.status(lab.fleet, lab.paths) if s.name == box)


def test_status_json_lists_every_box_running(lab: Lab) -> None:
    result = lab.cli("lab", "status", "-i", str(lab.inventory), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"schema": "dnabox/v1", "command": "lab.status", "boxes": [
        {"name": b.name, "site": b.site, "address": str(b.address), "state": "running"}
        for b in lab.fleet.boxes]}


def test_lab_up_again_keeps_every_box_as_it_is(lab: Lab) -> None:
    state_file = lab.paths.state_file(lab.fleet.name)
    before = json.loads(state_file.read_text())
    known_hosts = lab.paths.known_hosts(lab.fleet.name).read_text()
    lab.run("edge-a-1", "echo still-here > /root/idempotent")
    result = lab.cli("lab", "up", "-i", str(lab.inventory), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["started"] == [] and report["removed"] == []
    assert report["kept"] == [b.name for b in lab.fleet.boxes]
    after = json.loads(state_file.read_text())
    assert {n: b["init"] for n, b in after["boxes"].items()} == {
        n: b["init"] for n, b in before["boxes"].items()}
    assert lab.paths.known_hosts(lab.fleet.name).read_text() == known_hosts
    assert lab.run("edge-a-1", "cat /root/idempotent").stdout.strip() == "still-here"


def test_adding_a_box_starts_only_that_box(lab: Lab, tmp_path: Path) -> None:
    data = yaml.safe_load(lab.inventory.read_text())
    data["boxes"].append({"name": "edge-a-2", "site": "edge-a", "size": "small",
                          "address": "10.201.2.12",
                          "interfaces": {"D": {"nic": "eth1", "address": "10.203.2.12/24"}}})
    bigger = tmp_path / "lab.yaml"
    bigger.write_text(yaml.safe_dump(data))
    grown = load_fleet(bigger)
    report = lab_api.up(grown, lab.paths)
    assert report.started == ["edge-a-2"]
    assert report.kept == [b.name for b in lab.fleet.boxes]
    assert lab.run("core-1", "python3 - 10.201.2.12", stdin=CONNECT).stdout.split()[1] \
        == "SSH-2.0-"
    report = lab.up()
    assert report.removed == ["edge-a-2"] and report.started == []
    assert "dnabox.lab.edge-a-2" not in _netns()


def test_down_leaves_nothing_even_after_a_crashed_up(lab: Lab) -> None:
    assert lab.down()
    assert leftovers(lab) == []
    state_file = lab.paths.state_file(lab.fleet.name)
    crashing = subprocess.Popen(
        [*DNABOX, "lab", "up", "-i", str(lab.inventory)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not _some_box_launched(state_file) and time.monotonic() < deadline:
        assert crashing.poll() is None, "lab up finished before it could be interrupted"
        time.sleep(0.005)
    crashing.kill()
    crashing.wait()
    assert not json.loads(state_file.read_text())["boxes"]["core-1"]["complete"]
    assert leftovers(lab) != []
    assert lab.down()
    assert leftovers(lab) == []
    lab.up()  # the session's lab, for the tests that follow
    assert lab.run("core-1", "hostname").stdout.strip() == "core-1"


def _some_box_launched(state_file: Path) -> bool:
    try:
        boxes = json.loads(state_file.read_text())["boxes"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return False
    return any(b.get("launcher") for b in boxes.values())


def _netns() -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             check=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def leftovers(lab: Lab) -> list[str]:
    """Everything of the lab still on the machine, read from the system, not the lab."""
    fleet = lab.fleet.name
    found = [f"netns {n}" for n in _netns() if n.startswith(f"dnabox.{fleet}.")]
    found += [f"link {p.name}" for p in Path("/sys/class/net").iterdir()
              if p.name == f"dnx-{fleet}"[:15]]
    routes = subprocess.run(["ip", "route", "show", "10.201.0.0/16"], capture_output=True,
                            text=True, check=True).stdout
    found += [f"route {line}" for line in routes.splitlines()]
    state_dir = lab.paths.fleet_dir(fleet)
    if state_dir.exists():
        found.append(f"directory {state_dir}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(line.split()[4])
        if line.split(" - ")[1].startswith("cgroup") and (point / "dnabox" / fleet).exists():
            found.append(f"cgroup {point / 'dnabox' / fleet}")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cgroup = (proc / "cgroup").read_text()
            mounts = (proc / "mountinfo").read_text()
        except OSError:
            continue  # exited meanwhile
        if f"/dnabox/{fleet}/" in cgroup:
            found.append(f"process {proc.name} in a lab cgroup")
        if str(state_dir) in mounts:
            found.append(f"mounts of process {proc.name}")
    return found
