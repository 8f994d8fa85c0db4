"""dnabox-ovs-apply decides what to change from what OVS and the kernel report.

Run here in --check mode against stub `ovs-vsctl` and `ip` commands that replay a box's
state: it must report exactly the differences (and nothing on a converged box).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from dnabox.inventory import load_fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.desired import box_variables, template_environment
from dnabox.plan.network import box_network

ROOT = Path(__file__).resolve().parents[3]

VSCTL = r'''#!/usr/bin/env python3
import json, os, sys
state = json.load(open(os.environ["STUB_STATE"]))
options = [a for a in sys.argv[1:] if a.startswith("--")]
args = [a for a in sys.argv[1:] if not a.startswith("--")]
columns = next((o.split("=", 1)[1].split(",") for o in options if o.startswith("--columns=")), [])
cmd = args[0]
if cmd == "show":
    pass
elif cmd == "list-br":
    print("\n".join(state["bridges"]))
elif cmd == "list-ports":
    print("\n".join(state["bridges"].get(args[1], [])))
elif cmd == "list" and columns[0] == "name":
    table, column = args[1], columns[1]
    records = sorted({key.split()[1] for key in state["columns"] if key.split()[0] == table})
    for record in records:
        prefix = f"{table} {record} {column}"
        pairs = sorted(f"{key.split(':', 1)[1]}={value.strip(chr(34))}"
                       for key, value in state["columns"].items()
                       if key.startswith(prefix + ":"))
        value = " ".join(pairs) if pairs else state["columns"].get(prefix, "").strip(chr(34))
        print(f"{record},{value}")
else:
    sys.exit("stub: unexpected command in --check mode: " + " ".join(sys.argv[1:]))
'''
DAEMON = '''#!/bin/sh
exit 0
'''
IP = r'''#!/usr/bin/env python3
import json, os, sys
state = json.load(open(os.environ["STUB_STATE"]))
args = sys.argv[1:]
if "addr" in args:
    dev = args[args.index("dev") + 1]
    for address in state["addresses"].get(dev, []):
        print(f"5: {dev}    inet {address} brd x scope global {dev}\\       valid_lft forever")
elif "link" in args:
    dev = args[args.index("dev") + 1]
    if dev in state["up"]:
        print(f"5: {dev}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500")
elif "route" in args:
    print(state["routes"].get(args[-1], ""))
'''


def converged_state(box: str) -> dict[str, object]:
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    network = box_network(fleet, fleet.box(box))
    plane, overlay = network.planes[0], network.overlays[0]
    columns = {f"interface {plane.bridge} mtu_request": str(plane.mtu),
               f"interface {plane.nic} mtu_request": str(plane.mtu),
               f"bridge {plane.bridge} datapath_type": "netdev",
               f"bridge {overlay.bridge} datapath_type": "netdev",
               f"interface {overlay.bridge} mtu_request": str(overlay.mtu),
               f"bridge {overlay.bridge} other_config:hwaddr": '"0e:da:0a:fa:00:0b"'}
    for tunnel in overlay.tunnels:
        columns |= {f"interface {tunnel.port} type": "vxlan",
                    f"interface {tunnel.port} options:remote_ip": f'"{tunnel.remote_ip}"',
                    f"interface {tunnel.port} options:key": f'"{overlay.vni}"',
                    f"port {tunnel.port} protected": "true"}
    return {
        "bridges": {plane.bridge: [plane.nic], overlay.bridge: [t.port for t in overlay.tunnels]},
        "columns": columns,
        "addresses": {plane.bridge: [plane.address], overlay.bridge: [overlay.address]},
        "up": [plane.nic, plane.bridge, overlay.bridge],
        "routes": {plane.plane_cidr: f"{plane.plane_cidr} via {plane.gateway} dev {plane.bridge}"},
    }


def check(tmp_path: Path, state: dict[str, object]) -> list[str]:
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    project = Locations.discover(ROOT)
    defaults = yaml.safe_load((project.roles / "ovs/defaults/main.yml").read_text())
    values = {**defaults, **box_variables(render_ansible_inventory(fleet, project), "core-1"),
              "ovs_run_dir": str(tmp_path), "ovs_db_file": str(tmp_path / "state.json")}
    script = template_environment(project.templates).get_template(
        "apply/dnabox-ovs-apply.sh.j2").render(values)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (("ovs-vsctl", VSCTL), ("ip", IP), ("dnabox-daemon", DAEMON)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "apply.sh").write_text(script)
    (tmp_path / "state.json").write_text(json.dumps(state))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "STUB_STATE": str(tmp_path / "state.json")}
    done = subprocess.run(["sh", str(tmp_path / "apply.sh"), "--check"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("CHANGED:")]


def test_a_converged_box_reports_nothing(tmp_path: Path) -> None:
    if not Path("/dev/net/tun").exists():
        pytest.skip("the netdev path needs /dev/net/tun")
    assert check(tmp_path, converged_state("core-1")) == []


def test_drift_is_reported_precisely(tmp_path: Path) -> None:
    if not Path("/dev/net/tun").exists():
        pytest.skip("the netdev path needs /dev/net/tun")
    state = converged_state("core-1")
    bridges = state["bridges"]
    assert isinstance(bridges, dict)
    bridges["br-vxlan"] = [*bridges["br-vxlan"][1:], "vx-0000000000"]  # one lost, one stale
    addresses = state["addresses"]
    assert isinstance(addresses, dict)
    addresses["eth1"] = ["10.203.1.11/24"]  # the lab's address still on the NIC
    addresses["br-data"] = []
    changes = check(tmp_path, state)
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    lost = box_network(fleet, fleet.box("core-1")).overlays[0].tunnels[0].port
    assert f"CHANGED: port {lost} added to br-vxlan" in changes
    assert "CHANGED: stale tunnel vx-0000000000 removed" in changes
    assert "CHANGED: address 10.203.1.11/24 removed from eth1" in changes
    assert "CHANGED: address 10.203.1.11/24 on br-data" in changes


def test_tunnel_drift_is_reported_per_column(tmp_path: Path) -> None:
    if not Path("/dev/net/tun").exists():
        pytest.skip("the netdev path needs /dev/net/tun")
    state = converged_state("core-1")
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    overlay = box_network(fleet, fleet.box("core-1")).overlays[0]
    first, second, third = (tunnel.port for tunnel in overlay.tunnels[:3])
    columns, bridges = state["columns"], state["bridges"]
    assert isinstance(columns, dict) and isinstance(bridges, dict)
    columns[f"interface {first} options:remote_ip"] = '"10.9.9.9"'
    columns[f"port {first} protected"] = "false"
    del columns[f"interface {second} type"]
    columns[f"interface {second} options:key"] = '"7"'
    bridges["br-vxlan"] = [port for port in bridges["br-vxlan"] if port != third]
    bridges["br-data"] = [*bridges["br-data"], third]  # on the wrong bridge
    assert check(tmp_path, state) == [
        f"CHANGED: interface {first} options:remote_ip={overlay.tunnels[0].remote_ip}",
        f"CHANGED: port {first} protected=true (was false)",
        f"CHANGED: interface {second} type=vxlan (was unset)",
        f"CHANGED: interface {second} options:key={overlay.vni}",
        f"CHANGED: port {third} moved from br-data",
        f"CHANGED: port {third} added to br-vxlan",
    ]
