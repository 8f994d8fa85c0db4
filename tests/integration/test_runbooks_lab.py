"""Runbooks on real lab boxes: add_box touches only what it must; rolling_upgrade batches,
verifies, stops at the first failed batch and resumes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Lab  # type: ignore[import-not-found]

pytestmark = pytest.mark.lab

NEW_BOX = {"name": "edge-a-2", "site": "edge-a", "size": "small", "address": "10.201.2.12",
           "interfaces": {"D": {"nic": "eth1", "address": "10.203.2.12/24"}},
           "overlay_addresses": {"dataplane": "10.250.0.22/24"}}


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def summary(output: str) -> dict[str, Any]:
    return next(e for e in reversed(events(output)) if "runbook" in e)


@pytest.fixture(scope="module")
def converged(lab: Lab) -> Lab:
    result = lab.cli("up", "-i", str(lab.inventory), "--json", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    return lab


def test_add_box_bootstraps_the_new_box_and_only_retunnels_the_others(
    converged: Lab, tmp_path: Path
) -> None:
    data = yaml.safe_load(converged.inventory.read_text())
    data["boxes"].append(NEW_BOX)
    grown = tmp_path / "lab.yaml"
    grown.write_text(yaml.safe_dump(data, sort_keys=False))
    started = converged.cli("lab", "up", "-i", str(grown), "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["started"] == ["edge-a-2"]
    try:
        result = converged.cli("runbook", "run", "add_box", "-i", str(grown), "--box",
                               "edge-a-2", "--json", timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        ran = summary(result.stdout)["ran"]
        assert set(ran["edge-a-2"]) == {"base", "container_runtime", "ovs", "cni"}
        for box in ("core-1", "edge-a-1", "edge-b-1", "end-a-1"):
            assert ran.get(box) == ["ovs"], f"{box} must re-run only ovs: {ran.get(box)}"
        ping = converged.run("core-1", "ping -c 2 -W 2 10.250.0.22", check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
    finally:
        # Back to the shipped fleet: the extra box goes, the others drop its tunnel.
        converged.up()
        back = converged.cli("up", "-i", str(converged.inventory), "--json", timeout=900)
        assert back.returncode == 0, back.stdout[-2000:]


def test_replace_box_refuses_a_live_box_then_rebuilds_its_replacement(converged: Lab) -> None:
    inventory = str(converged.inventory)
    refused = converged.cli("runbook", "run", "replace_box", "-i", inventory, "--box",
                            "edge-b-1", "--json")
    assert refused.returncode != 0
    assert "has not failed" in refused.stdout + refused.stderr
    host_key = "cat /etc/ssh/ssh_host_ed25519_key.pub"
    old_key = converged.run("edge-b-1", host_key).stdout
    swapped = converged.cli("lab", "replace", "-i", inventory, "--box", "edge-b-1")
    assert swapped.returncode == 0, swapped.stdout + swapped.stderr
    assert converged.run("edge-b-1", host_key).stdout != old_key, "a replacement has a new key"
    blank = converged.run("edge-b-1", "test -e /var/lib/dnabox/fingerprints.json", check=False)
    assert blank.returncode != 0, "the replacement's disk is blank"
    result = converged.cli("runbook", "run", "replace_box", "-i", inventory, "--box",
                           "edge-b-1", "--json", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    ran = summary(result.stdout)["ran"]
    assert ran == {"edge-b-1": ran["edge-b-1"]}, f"only the replacement may run: {ran}"
    # Every role the blank box is planned for: the D-N-A leaf of its serving edge and the
    # inference server it runs included.
    assert set(ran["edge-b-1"]) == {"base", "container_runtime", "ovs", "cni", "dna",
                                    "dna_services"}
    target = converged.fleet.box("edge-b-1").overlay_addresses["dataplane"].ip
    ping = converged.run("core-1", f"ping -c 2 -W 2 {target}", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_rolling_upgrade_batches_verifies_stops_and_resumes(converged: Lab) -> None:
    args = ["runbook", "run", "rolling_upgrade", "-i", str(converged.inventory), "--role",
            "container_runtime", "--max-unavailable", "1", "--json"]
    clean = converged.cli(*args, timeout=900)
    assert clean.returncode == 0, clean.stdout[-3000:]
    batches = summary(clean.stdout)["batches"]
    assert [b["site"] for b in batches] == ["core", "edge-a", "edge-b", "end-a"]
    assert {b["status"] for b in batches} == {"ok"}

    sources = converged.run("edge-a-1", "cat /etc/apt/sources.list").stdout
    # A box whose package source is gone cannot upgrade: its batch must fail.
    converged.run("edge-a-1", "echo 'deb [trusted=yes] http://127.0.0.1:9/ ./' "
                              "> /etc/apt/sources.list")
    try:
        broken = converged.cli(*args, timeout=900)
        assert broken.returncode == 1
        report = summary(broken.stdout)
        assert [b.get("status") for b in report["batches"]] == ["ok", "failed"]
        assert "stopped at batch 2 of 4" in report["message"]
    finally:
        converged.run("edge-a-1", "cat > /etc/apt/sources.list", stdin=sources)
    resumed = converged.cli(*args, "--resume", timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    statuses = [b["status"] for b in summary(resumed.stdout)["batches"]]
    assert statuses == ["skipped", "ok", "ok", "ok"], "batch 1 is not repeated"


def test_drain_stops_workloads_and_undrain_returns_the_box(converged: Lab) -> None:
    # A long-running container stands in for a workload.
    converged.run("edge-b-1", "mkdir -p /tmp/wl && cp --parents /bin/sleep "
                              "$(ldd /bin/sleep | awk '/=>/ {print $3} /ld-linux/ {print $1}') "
                              "/tmp/wl && ctr run -d --rootfs /tmp/wl workload /bin/sleep 600")
    def workload_state() -> str:
        rows = converged.run("edge-b-1", "ctr tasks list").stdout.splitlines()
        return next((row.split()[-1] for row in rows if row.startswith("workload")), "absent")

    assert workload_state() == "RUNNING"
    drained = converged.cli("runbook", "run", "drain", "-i", str(converged.inventory),
                            "--box", "edge-b-1", "--json")
    assert drained.returncode == 0, drained.stdout[-2000:]
    assert converged.run("edge-b-1", "test -f /var/lib/dnabox/drained", check=False
                         ).returncode == 0
    deadline = time.monotonic() + 10
    while workload_state() == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workload_state() in {"STOPPED", "absent"}, "drain stops the box's workloads"
    undrained = converged.cli("runbook", "run", "undrain", "-i", str(converged.inventory),
                              "--box", "edge-b-1", "--json")
    assert undrained.returncode == 0, undrained.stdout[-2000:]
    assert converged.run("edge-b-1", "test -f /var/lib/dnabox/drained", check=False
                         ).returncode == 1
    converged.run("edge-b-1", "ctr tasks kill workload 2>/dev/null; ctr tasks rm workload "
                              "2>/dev/null; ctr containers rm workload; rm -rf /tmp/wl",
                  check=False)


def test_collect_diagnostics_fetches_a_tarball_without_secrets(converged: Lab,
                                                               tmp_path: Path) -> None:
    import tarfile

    result = converged.cli("runbook", "run", "collect_diagnostics", "-i",
                           str(converged.inventory), "--site", "core", "--dest",
                           str(tmp_path), "--json")
    assert result.returncode == 0, result.stdout[-2000:]
    with tarfile.open(tmp_path / "core-1.tar.gz") as archive:
        names = archive.getnames()
        assert "core-1/ovs-vsctl-show.txt" in names
        assert "core-1/containerd-config.toml" in names
        assert not [n for n in names if "key" in n or n.endswith(".pem")]
        show = archive.extractfile("core-1/ovs-vsctl-show.txt")
        assert show is not None and b"br-vxlan" in show.read()
    assert converged.run("core-1", "test -e /tmp/dnabox-diagnostics.tar.gz",
                         check=False).returncode == 1, "work files are removed from the box"
