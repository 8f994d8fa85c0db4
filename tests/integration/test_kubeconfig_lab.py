"""The kubeconfig hand-off against a lab box standing in for a first control plane.

The lab cannot form a cluster (no kubeadm/k3s here), so a kubeadm-shaped admin.conf is put
where kubeadm writes it; the role's own task file then fetches it over SSH exactly as after
`kubeadm init`: into the fleet's state dir on the controller, mode 0600, the server set to
the box's management address, and never printed even with -vvv.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dnabox.locations import ASSETS, Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory

pytestmark = pytest.mark.lab

SECRET = "bGFiLWNsaWVudC1rZXktbm9ib2R5LW1heS1zZWU="
ADMIN_CONF = f"""apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: {SECRET}
contexts:
- name: kubernetes-admin@kubernetes
  context: {{cluster: kubernetes, user: kubernetes-admin}}
current-context: kubernetes-admin@kubernetes
"""


def test_the_role_fetches_the_admin_kubeconfig_from_a_lab_box(lab: Any,
                                                               tmp_path: Path) -> None:
    fleet = lab.fleet
    box = fleet.box("core-1")
    lab.run("core-1", "mkdir -p /etc/kubernetes && umask 077 && "
            "cat > /etc/kubernetes/admin.conf", stdin=ADMIN_CONF)
    located = Locations(project=tmp_path, state=tmp_path / "state")
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps(render_ansible_inventory(fleet, located)))
    playbook = tmp_path / "handoff.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "kubeconfig hand-off", "hosts": "core-1", "gather_facts": False,
        "vars": {"kubernetes_distribution": "kubeadm", "kubernetes_cluster_name": "core",
                 "kubernetes_control_plane_endpoint": str(box.address),
                 "kubernetes_api_port": 6443,
                 "kubernetes_admin_kubeconfig": {"kubeadm": "/etc/kubernetes/admin.conf"}},
        "tasks": [{"name": "the role's task file", "ansible.builtin.import_tasks": str(
            ASSETS / "playbooks" / "roles" / "kubernetes" / "tasks" / "kubeconfig.yml")}],
    }]))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-vvv", "-i", str(inventory),
         str(playbook)], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOST_KEY_CHECKING": "True"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    fetched = located.kubeconfig(fleet.name, "core")
    assert stat.S_IMODE(fetched.stat().st_mode) == 0o600
    config = yaml.safe_load(fetched.read_text())
    assert config["clusters"][0]["cluster"]["server"] == f"https://{box.address}:6443"
    assert config["users"][0]["user"]["client-key-data"] == SECRET
    assert SECRET not in result.stdout + result.stderr
    lab.run("core-1", "rm -f /etc/kubernetes/admin.conf")
