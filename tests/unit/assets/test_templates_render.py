"""templates/: one table, every file renders for every box, and Ansible renders it the same.

The planner renders managed files in Python (jinja2, StrictUndefined) to fingerprint them;
the roles render them with Ansible's template module. Both must produce the same bytes.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
import warnings
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from dnabox.inventory import Fleet, load_fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.catalogue import ROLE_ORDER
from dnabox.plan.desired import box_variables, plan_fleet, template_environment
from dnabox.plan.managed_files import read_table
from dnabox.plan.roles import roles_for
from dnabox.plan.runtimes import runtimes_for

ROOT = Path(__file__).resolve().parents[3]
PROJECT = Locations.discover(ROOT)
SAMPLES = ["lab", "smartx-playground"]


def fleet_of(sample: str) -> Fleet:
    return load_fleet(ROOT / "inventory" / f"{sample}.yaml")


def context(fleet: Fleet, box: str, role: str) -> dict[str, Any]:
    defaults = yaml.safe_load((PROJECT.roles / role / "defaults" / "main.yml").read_text()) or {}
    return {**defaults, **box_variables(render_ansible_inventory(fleet, PROJECT), box)}


def render(fleet: Fleet, box: str, src: str) -> str:
    entry = next(e for e in read_table(PROJECT.templates) if e["src"] == src)
    env = template_environment(PROJECT.templates)
    return env.get_template(src).render(context(fleet, box, entry["role"]))


def test_table_entries_are_well_formed_and_cover_every_template() -> None:
    table = read_table(PROJECT.templates)
    assert table, "templates/files.yml is empty"
    for entry in table:
        assert entry["role"] in ROLE_ORDER
        assert (PROJECT.templates / entry["src"]).is_file(), entry["src"]
        assert entry["dest"].startswith("/")
        assert re.fullmatch(r"0[0-7]{3}", entry["mode"]), entry
    listed = {e["src"] for e in table}
    on_disk = {str(p.relative_to(PROJECT.templates)) for p in PROJECT.templates.rglob("*.j2")}
    assert on_disk == listed, "a template is not in files.yml (or the table names a missing one)"
    dests = [e["dest"] for e in table]
    assert len(dests) == len(set(dests))


def test_inventory_hands_the_table_to_the_roles() -> None:
    inventory = render_ansible_inventory(fleet_of("lab"), PROJECT)
    assert inventory["all"]["vars"]["dnabox_managed_files"] == read_table(PROJECT.templates)
    assert inventory["all"]["vars"]["dnabox_templates_dir"] == str(PROJECT.templates.resolve())


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_file_renders_for_every_box_under_strict_undefined(sample: str) -> None:
    fleet = fleet_of(sample)
    plans = plan_fleet(fleet, PROJECT)
    for box in fleet.boxes:
        roles = roles_for(fleet, box)
        expected = {e["dest"] for e in read_table(PROJECT.templates) if e["role"] in roles}
        rendered_files = [f for f in plans[box.name].files if not f.generated]
        assert {f.dest for f in rendered_files} == expected
        for rendered in rendered_files:
            assert "{{" not in rendered.content and "{%" not in rendered.content


def test_strict_undefined_refuses_a_missing_variable() -> None:
    env = template_environment(PROJECT.templates)
    values = context(fleet_of("lab"), "core-1", "container_runtime")
    del values["dnabox_runtimes"]
    with pytest.raises(jinja2.UndefinedError, match="dnabox_runtimes"):
        env.get_template("containerd/dnabox.toml.j2").render(values)


@pytest.mark.parametrize("sample", SAMPLES)
def test_ansible_renders_every_file_exactly_like_the_planner(sample: str) -> None:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    fleet = fleet_of(sample)
    inventory = render_ansible_inventory(fleet, PROJECT)
    env = template_environment(PROJECT.templates)
    compared = 0
    for box in fleet.boxes:
        for entry in read_table(PROJECT.templates):
            if entry["role"] not in roles_for(fleet, box) and entry["role"] != "kubernetes":
                continue
            variables = box_variables(inventory, box.name)
            if entry["role"] == "kubernetes" and "kubernetes_distribution" not in variables:
                continue
            defaults = yaml.safe_load(
                (PROJECT.roles / entry["role"] / "defaults" / "main.yml").read_text()) or {}
            values = {**defaults, **variables}
            source = (PROJECT.templates / entry["src"]).read_text(encoding="utf-8")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # The template action's settings: trim_blocks on, trailing newline kept.
                # Its search path for includes holds the template's own directory.
                templar = Templar(loader=DataLoader(), variables=values).copy_with_new_env(
                    searchpath=[str((PROJECT.templates / entry["src"]).parent)])
                by_ansible = templar.template(
                    trust_as_template(source), preserve_trailing_newlines=True,
                    escape_backslashes=False, overrides={"trim_blocks": True})
            assert by_ansible == env.get_template(entry["src"]).render(values), (
                box.name, entry["src"])
            compared += 1
    assert compared >= len(fleet.boxes) * 8


@pytest.mark.parametrize("sample", SAMPLES)
def test_containerd_config_has_one_runtime_table_per_handler(sample: str) -> None:
    fleet = fleet_of(sample)
    for box in fleet.boxes:
        # dnabox's part of the config; test_containerd_config merges it in both formats.
        runtimes = tomllib.loads(render(fleet, box.name, "containerd/dnabox.toml.j2"))[
            "runtimes"]
        specs = {r.handler: r for r in runtimes_for(fleet, box)}
        assert set(runtimes) == set(specs)
        for handler, spec in specs.items():
            assert runtimes[handler]["runtime_type"] == spec.runtime_type
            if spec.binary_name:
                assert runtimes[handler]["options"]["BinaryName"] == spec.binary_name


def test_lab_core_box_gets_kata_and_apptainer_handlers_end_device_only_runc() -> None:
    fleet = fleet_of("lab")
    core = tomllib.loads(render(fleet, "core-1", "containerd/dnabox.toml.j2"))
    end = tomllib.loads(render(fleet, "end-a-1", "containerd/dnabox.toml.j2"))
    assert set(core["runtimes"]) == {"runc", "kata", "apptainer"}
    assert set(end["runtimes"]) == {"runc"}


@pytest.mark.parametrize("sample", SAMPLES)
def test_cni_conflist_is_json_with_the_box_pod_subnet(sample: str) -> None:
    fleet = fleet_of(sample)
    inventory = render_ansible_inventory(fleet, PROJECT)
    subnets = []
    for box in fleet.boxes:
        conflist = json.loads(render(fleet, box.name, "cni/10-dnabox.conflist.j2"))
        bridge = conflist["plugins"][0]
        subnet = bridge["ipam"]["ranges"][0][0]["subnet"]
        assert subnet == box_variables(inventory, box.name)["dnabox_pod_subnet"]
        subnets.append(subnet)
    assert len(subnets) == len(set(subnets)), "two boxes share a pod subnet"


def test_kubernetes_node_config_per_distribution_and_role() -> None:
    fleet = fleet_of("smartx-playground")
    kubeadm_cp = list(yaml.safe_load_all(render(fleet, "core-gist-1",
                                                 "kubernetes/node-config.yaml.j2")))
    assert [d["kind"] for d in kubeadm_cp] == ["InitConfiguration", "ClusterConfiguration",
                                               "KubeletConfiguration"]
    assert kubeadm_cp[1]["networking"]["podSubnet"] == "10.244.0.0/16"
    k3s_server = yaml.safe_load(render(fleet, "edge-postech-1", "kubernetes/node-config.yaml.j2"))
    assert k3s_server["cluster-init"] is True and "token-file" not in k3s_server
    k3s_agent = yaml.safe_load(render(fleet, "end-gist-pi-1", "kubernetes/node-config.yaml.j2"))
    assert k3s_agent["server"] == "https://10.10.3.11:6443"
    assert "node-role.kubernetes.io/end=" not in " ".join(k3s_agent["node-label"])
    assert k3s_agent["node-taint"] == ["node-role.kubernetes.io/end=:NoSchedule"]
    edge = render(fleet, "edge-kaist-2", "kubernetes/dnabox-kubernetes.service.j2")
    assert "Alias=kubelet.service" in edge and "/usr/local/bin/kubelet" in edge
    assert "--register-with-taints=node-role.kubernetes.io/edge=:NoSchedule" in edge
    core = render(fleet, "core-gist-2", "kubernetes/dnabox-kubernetes.service.j2")
    assert "--register-with-taints" not in core


@pytest.mark.parametrize("sample", SAMPLES)
def test_ovs_apply_script_is_valid_shell_with_every_tunnel(sample: str, tmp_path: Path) -> None:
    fleet = fleet_of(sample)
    inventory = render_ansible_inventory(fleet, PROJECT)
    for box in fleet.boxes:
        script = render(fleet, box.name, "apply/dnabox-ovs-apply.sh.j2")
        path = tmp_path / f"{box.name}.sh"
        path.write_text(script)
        assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0
        for overlay in box_variables(inventory, box.name)["dnabox_overlays"]:
            wanted = "".join(f"{tunnel['port']} {tunnel['remote_ip']}\n"
                             for tunnel in overlay["tunnels"])
            assert (f"ensure_tunnels {overlay['bridge']} {overlay['vni']} <<'TUNNELS'\n"
                    f"{wanted}TUNNELS\n") in script
