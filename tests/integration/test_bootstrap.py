"""The Ansible bootstrap on real lab boxes over real SSH: the five proofs of issue 4.

One bootstrap of inventory/lab.yaml for the module, then the checks, then a second run that
must change nothing. Kata, Apptainer and Kubernetes are skipped by the lab inventory (not
obtainable here); their containerd handlers are still configured and checked.
"""

from __future__ import annotations

import json
import shlex
import time
import tomllib
from typing import TYPE_CHECKING, Any

import pytest

from dnabox.plan.network import box_network
from dnabox.plan.runtimes import runtimes_for

if TYPE_CHECKING:
    from conftest import Lab

pytestmark = pytest.mark.lab

BOOTSTRAP_TIMEOUT = 1200


def bootstrap(lab: Lab) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = lab.cli("bootstrap", "-i", str(lab.inventory), "--json", timeout=BOOTSTRAP_TIMEOUT)
    seconds = time.monotonic() - started
    assert result.returncode == 0, f"bootstrap failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return summary, seconds


@pytest.fixture(scope="module")
def first_run(lab: Lab) -> dict[str, Any]:
    summary, seconds = bootstrap(lab)
    print(f"\nfirst bootstrap of {len(lab.fleet.boxes)} lab boxes: {seconds:.1f} s")
    return summary


def test_first_run_converges_every_box(lab: Lab, first_run: dict[str, Any]) -> None:
    boxes = {row["name"]: row for row in first_run["boxes"]}
    assert sorted(boxes) == sorted(b.name for b in lab.fleet.boxes)
    for name, row in boxes.items():
        assert row["failed"] == 0 and row["unreachable"] == 0, name
        assert row["ok"] > 10, f"{name} ran almost nothing: {row}"


def _overlay_ip(lab: Lab, box: str) -> str:
    return str(lab.fleet.box(box).overlay_addresses["dataplane"].ip)


def test_ping_crosses_sites_over_the_vxlan_overlay(lab: Lab, first_run: dict[str, Any]) -> None:
    for source, target in (("core-1", "edge-a-1"), ("end-a-1", "edge-b-1"),
                           ("edge-b-1", "core-1")):
        address = _overlay_ip(lab, target)
        result = lab.run(source, f"ping -c 3 -W 2 -I br-vxlan {address}", check=False)
        assert result.returncode == 0, f"{source} -> {target} ({address}):\n{result.stdout}"
        assert " 0% packet loss" in result.stdout


SERVER = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], 5101))
server.listen(1)
print("listening", flush=True)
server.settimeout(30)
conn, _ = server.accept()
total = 0
while chunk := conn.recv(1 << 16):
    total += len(chunk)
conn.sendall(str(total).encode())
"""
CLIENT = """
import socket, sys
payload = b"d" * int(sys.argv[2])
with socket.create_connection((sys.argv[1], 5101), timeout=10) as conn:
    conn.sendall(payload)
    conn.shutdown(socket.SHUT_WR)
    print(conn.recv(64).decode())
"""


def test_tcp_crosses_sites_over_the_vxlan_overlay(lab: Lab, first_run: dict[str, Any]) -> None:
    # 8 MB: far more than one window, so an MTU mistake on the overlay would stall it.
    size = 8_000_000
    address = _overlay_ip(lab, "edge-b-1")
    lab.run("edge-b-1", f"nohup python3 -c {shlex.quote(SERVER)} {address} "
            "> /tmp/dnabox-tcp-server.log 2>&1 &")
    # The server says when it listens: wait for that line, not for a second to pass.
    deadline = time.monotonic() + 60
    while "listening" not in lab.run("edge-b-1", "cat /tmp/dnabox-tcp-server.log",
                                     check=False).stdout:
        assert time.monotonic() < deadline, "the TCP server never listened"
    result = lab.run("core-1", f"python3 -c {shlex.quote(CLIENT)} {address} {size}",
                     timeout=60)
    assert result.stdout.strip() == str(size)


ROOTFS = "/var/tmp/dnabox-ctr-rootfs"
# A tiny root filesystem made of the box's own dash and the libraries it links.
BUILD_ROOTFS = f"""set -e
rm -rf {ROOTFS}; mkdir -p {ROOTFS}/bin {ROOTFS}/proc {ROOTFS}/dev {ROOTFS}/sys {ROOTFS}/tmp
cp /bin/dash {ROOTFS}/bin/sh
for lib in $(ldd /bin/dash | grep -o '/[^ ]*'); do
  mkdir -p {ROOTFS}$(dirname $lib); cp $lib {ROOTFS}$lib
done
"""


def test_containerd_runs_a_runc_container_from_a_local_rootfs(
        lab: Lab, first_run: dict[str, Any]) -> None:
    for box in ("core-1", "end-a-1"):
        lab.run(box, BUILD_ROOTFS)
        result = lab.run(box, f"ctr run --rm --runtime io.containerd.runc.v2 --rootfs {ROOTFS} "
                              f"dnabox-smoke-{box} /bin/sh -c 'echo ran in $$'", timeout=60)
        # PID 1 inside its own PID namespace: a real container, not a shell on the box.
        assert result.stdout.strip() == "ran in 1", result.stdout


def test_containerd_config_holds_the_handlers_of_each_box(
        lab: Lab, first_run: dict[str, Any]) -> None:
    expected = {"core-1": {"runc", "kata", "apptainer"}, "edge-a-1": {"runc", "kata"},
                "edge-b-1": {"runc", "kata"}, "end-a-1": {"runc"}}
    for box, handlers in expected.items():
        assert {r.handler for r in runtimes_for(lab.fleet, lab.fleet.box(box))} == handlers
        text = lab.run(box, "cat /etc/containerd/config.toml").stdout
        cri = tomllib.loads(text)["plugins"]["io.containerd.grpc.v1.cri"]
        runtimes = cri["containerd"]["runtimes"]
        assert set(runtimes) == handlers, box
        if "kata" in handlers:
            assert runtimes["kata"]["runtime_type"] == "io.containerd.kata.v2"
        if "apptainer" in handlers:
            assert runtimes["apptainer"]["options"]["BinaryName"] == "/usr/bin/crun"
        # The running containerd serves the CRI plugin from that file.
        plugins = lab.run(box, "ctr plugins ls").stdout
        assert "io.containerd.grpc.v1" in plugins and "cri" in plugins
        # containerd's own parser reads every handler (`config dump`: the box's containerd).
        dump = lab.run(box, "containerd --config /etc/containerd/config.toml config dump").stdout
        dumped = tomllib.loads(dump)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
        assert handlers <= set(dumped["runtimes"]), box


FOREIGN_NVIDIA = """
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime"
"""


def test_a_foreign_runtime_survives_a_rerun_on_a_real_box(
        lab: Lab, first_run: dict[str, Any]) -> None:
    """What the GPU Operator's toolkit does (adds `nvidia` to config.toml), then dnabox's
    apply again: the entry stays and containerd, restarted, still reads it."""
    box = "edge-a-1"
    lab.run(box, f"printf '%s' {shlex.quote(FOREIGN_NVIDIA)} >> /etc/containerd/config.toml")
    out = lab.run(box, "/usr/local/sbin/dnabox-containerd-apply").stdout
    assert "kept runtimes dnabox does not own: nvidia" in out
    text = lab.run(box, "cat /etc/containerd/config.toml").stdout
    runtimes = tomllib.loads(text)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"][
        "runtimes"]
    assert set(runtimes) == {"runc", "kata", "nvidia"}
    assert runtimes["nvidia"]["options"]["BinaryName"].endswith("nvidia-container-runtime")
    assert "CHANGED" not in lab.run(box, "/usr/local/sbin/dnabox-containerd-apply").stdout
    dump = lab.run(box, "containerd --config /etc/containerd/config.toml config dump").stdout
    assert "nvidia" in tomllib.loads(dump)["plugins"]["io.containerd.grpc.v1.cri"][
        "containerd"]["runtimes"]


def _vsctl(lab: Lab, box: str, args: str) -> str:
    return lab.run(box, f"ovs-vsctl {args}").stdout.strip()


def test_ovs_bridges_and_ports_match_the_inventory(lab: Lab, first_run: dict[str, Any]) -> None:
    for box in lab.fleet.boxes:
        network = box_network(lab.fleet, box)
        bridges = set(_vsctl(lab, box.name, "list-br").split())
        assert bridges == {p.bridge for p in network.planes} | {o.bridge for o in network.overlays}
        addresses = lab.run(box.name, "ip -o -4 addr show").stdout
        for plane in network.planes:
            assert set(_vsctl(lab, box.name, f"list-ports {plane.bridge}").split()) == {plane.nic}
            assert f"{plane.bridge}    inet {plane.address}" in addresses.replace("\\", "")
            route = lab.run(box.name, f"ip -o route show {plane.plane_cidr}").stdout
            assert f"via {plane.gateway} dev {plane.bridge}" in route
        for overlay in network.overlays:
            ports = set(_vsctl(lab, box.name, f"list-ports {overlay.bridge}").split())
            assert ports == {t.port for t in overlay.tunnels}
            for tunnel in overlay.tunnels:
                assert _vsctl(lab, box.name, f"get interface {tunnel.port} type") == "vxlan"
                options = _vsctl(lab, box.name, f"get interface {tunnel.port} options")
                assert f'remote_ip="{tunnel.remote_ip}"' in options
                assert f'key="{overlay.vni}"' in options
            mtu = _vsctl(lab, box.name, f"get interface {overlay.bridge} mtu_request")
            assert mtu == str(overlay.mtu)
            assert f"inet {overlay.address}" in addresses


def test_second_run_changes_nothing(lab: Lab, first_run: dict[str, Any]) -> None:
    summary, seconds = bootstrap(lab)
    print(f"\nsecond bootstrap of {len(lab.fleet.boxes)} lab boxes: {seconds:.1f} s")
    changed = {row["name"]: row["changed"] for row in summary["boxes"]}
    assert changed == {b.name: 0 for b in lab.fleet.boxes}
