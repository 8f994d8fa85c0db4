"""Kubeconfig hand-off: the role's fetch (run for real by ansible-playbook on this machine),
the merge into the operator's kubeconfig, and the stacks units that need it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dnabox.adapters import kubeconfig as kc
from dnabox.adapters import pulumi as pulumi_adapter
from dnabox.cli.app import app
from dnabox.inventory import load_fleet
from dnabox.locations import ASSETS, Locations
from dnabox.provision.stack_units import missing_for_stack, run_stack_unit

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "inventory" / "lab.yaml"
TASKS = ASSETS / "playbooks" / "roles" / "kubernetes" / "tasks" / "kubeconfig.yml"
SECRET = "c2VjcmV0LWtleS1ub2JvZHktbWF5LXNlZQ=="


def admin_conf(server: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {
            "certificate-authority-data": "Q0E=", "server": server}}],
        "users": [{"name": "kubernetes-admin", "user": {
            "client-certificate-data": "Q0VSVA==", "client-key-data": SECRET}}],
        "contexts": [{"name": "kubernetes-admin@kubernetes",
                      "context": {"cluster": "kubernetes", "user": "kubernetes-admin"}}],
        "current-context": "kubernetes-admin@kubernetes",
    }, sort_keys=False)


@pytest.mark.parametrize(("distribution", "server"), [
    ("kubeadm", "https://192.168.50.10:6443"), ("k3s", "https://127.0.0.1:6443")])
def test_the_role_fetches_rewrites_protects_and_masks(tmp_path: Path, distribution: str,
                                                      server: str) -> None:
    """The control plane is this machine (local connection), the controller too."""
    source = tmp_path / "box" / "admin.conf"
    source.parent.mkdir()
    source.write_text(admin_conf(server))
    state = tmp_path / "state" / "fleet" / "kubeconfig"
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "hand-off", "hosts": "cp", "gather_facts": False,
        "vars": {"kubernetes_distribution": distribution,
                 "kubernetes_admin_kubeconfig": {distribution: str(source)},
                 "dnabox_kubeconfig_dir": str(state), "kubernetes_cluster_name": "core",
                 "kubernetes_control_plane_endpoint": "10.20.0.11",
                 "kubernetes_api_port": 6443},
        "tasks": [{"name": "the role's task file",
                   "ansible.builtin.import_tasks": str(TASKS)}],
    }]))
    hosts = tmp_path / "hosts.ini"
    python = f"ansible_connection=local ansible_python_interpreter={sys.executable}"
    hosts.write_text(f"cp {python}\nlocalhost {python}\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-v", "-i", str(hosts),
         str(playbook)], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "t"),
             "ANSIBLE_HOME": str(tmp_path / "ansible")})
    assert result.returncode == 0, result.stdout + result.stderr
    fetched = state / "core.yaml"
    assert stat.S_IMODE(fetched.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    config = yaml.safe_load(fetched.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://10.20.0.11:6443"
    # Only the server changed: keys and certificates arrive intact.
    original = yaml.safe_load(source.read_text())
    original["clusters"][0]["cluster"]["server"] = "https://10.20.0.11:6443"
    assert config == original
    # Never printed or logged, even with -v.
    assert SECRET not in result.stdout + result.stderr
    assert "censored" in result.stdout


def test_check_private_refuses_missing_and_loose_files(tmp_path: Path) -> None:
    path = tmp_path / "core.yaml"
    with pytest.raises(kc.KubeconfigProblem, match="no kubeconfig at"):
        kc.check_private(path)
    path.write_text(admin_conf("https://a:6443"))
    path.chmod(0o644)
    with pytest.raises(kc.KubeconfigProblem, match="readable by others") as caught:
        kc.check_private(path)
    assert caught.value.hint == f"chmod 600 {path}"
    path.chmod(0o600)
    kc.check_private(path)


def test_merge_renames_keeps_the_rest_and_writes_0600(tmp_path: Path) -> None:
    source = tmp_path / "core.yaml"
    source.write_text(admin_conf("https://10.20.0.11:6443"))
    source.chmod(0o600)
    target = tmp_path / "home" / ".kube" / "config"
    target.parent.mkdir(parents=True)
    mine = {"apiVersion": "v1", "kind": "Config", "current-context": "work",
            "clusters": [{"name": "work", "cluster": {"server": "https://w:6443"}},
                         {"name": "lab-core", "cluster": {"server": "https://stale:6443"}}],
            "users": [{"name": "work", "user": {"token": "t"}}],
            "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}],
            "preferences": {"colors": True}}
    target.write_text(yaml.safe_dump(mine))
    kc.merge_into(source, target, "lab-core")
    kc.merge_into(source, target, "lab-core")  # idempotent
    merged = yaml.safe_load(target.read_text())
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert merged["current-context"] == "work" and merged["preferences"] == {"colors": True}
    assert [c["name"] for c in merged["clusters"]] == ["work", "lab-core"]
    assert merged["clusters"][1]["cluster"]["server"] == "https://10.20.0.11:6443"
    assert [u["name"] for u in merged["users"]] == ["work", "lab-core"]
    assert merged["users"][1]["user"]["client-key-data"] == SECRET
    assert merged["contexts"][1] == {"name": "lab-core",
                                     "context": {"cluster": "lab-core", "user": "lab-core"}}


def test_user_kubeconfig_follows_the_kubeconfig_variable(tmp_path: Path) -> None:
    assert kc.user_kubeconfig({"KUBECONFIG": f"{tmp_path}/a{os.pathsep}{tmp_path}/b"}) == (
        tmp_path / "a")
    assert kc.user_kubeconfig({}) == Path.home() / ".kube" / "config"


def test_cli_prints_only_the_path_and_merges(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNABOX_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kube" / "config"))
    runner = CliRunner()
    missing = runner.invoke(app, ["kubeconfig", "-i", str(LAB), "-c", "core"])
    assert missing.exit_code == 1 and "no kubeconfig at" in missing.output
    fetched = tmp_path / "state" / "lab" / "kubeconfig" / "core.yaml"
    fetched.parent.mkdir(parents=True)
    fetched.write_text(admin_conf("https://10.20.0.11:6443"))
    fetched.chmod(0o600)
    shown = runner.invoke(app, ["kubeconfig", "-i", str(LAB), "-c", "core"])
    assert shown.exit_code == 0 and shown.stdout == f"{fetched}\n"
    merged = runner.invoke(app, ["kubeconfig", "-i", str(LAB), "-c", "core", "--merge",
                                 "--json"])
    assert merged.exit_code == 0, merged.output
    assert SECRET not in merged.output
    assert json.loads(merged.stdout)["merged_into"] == str(tmp_path / "kube" / "config")
    contexts = yaml.safe_load((tmp_path / "kube" / "config").read_text())["contexts"]
    assert [c["name"] for c in contexts] == ["lab-core"]
    unknown = runner.invoke(app, ["kubeconfig", "-i", str(LAB), "-c", "nope"])
    assert unknown.exit_code == 2


# --- the stacks units of `dnabox up` -------------------------------------------------------

def where(tmp_path: Path) -> Locations:
    return Locations(project=ROOT, state=tmp_path / "state")


def test_a_stack_unit_names_exactly_what_is_missing(tmp_path: Path) -> None:
    fleet = load_fleet(LAB)
    located = where(tmp_path)
    kubeconfig = located.kubeconfig("lab", "core")
    both = missing_for_stack(fleet, located, "core", which=lambda _: None)
    assert len(both) == 2 and "Pulumi CLI" in both[0] and str(kubeconfig) in both[1]
    outcome = run_stack_unit(fleet, located, "core", which=lambda _: "/usr/bin/pulumi")
    assert outcome.status == "skipped"
    assert "kubeconfig" in outcome.message and "Pulumi CLI" not in outcome.message
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text("apiVersion: v1\n")
    outcome = run_stack_unit(fleet, located, "core", which=lambda _: None)
    assert outcome.status == "skipped"
    assert "Pulumi CLI" in outcome.message and "kubeconfig" not in outcome.message


def test_a_stack_unit_runs_the_stack_when_both_are_present(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = load_fleet(LAB)
    located = where(tmp_path)
    located.kubeconfig("lab", "edge").parent.mkdir(parents=True)
    located.kubeconfig("lab", "edge").write_text("apiVersion: v1\n")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    ran: list[pulumi_adapter.StackJob] = []

    def runner(jobs: list[pulumi_adapter.StackJob]) -> list[pulumi_adapter.StackOutcome]:
        ran.extend(jobs)
        return [pulumi_adapter.StackOutcome(j.cluster, "up", True, {"create": 9}, "log",
                                            stack=j.stack) for j in jobs]

    outcome = run_stack_unit(fleet, located, "edge", which=lambda _: "/usr/bin/pulumi",
                             runner=runner)
    assert (outcome.status, outcome.message) == ("changed", "stack lab-edge: create 9")
    assert [(j.stack, j.operation, j.inventory) for j in ran] == [("lab-edge", "up", LAB)]

    def failing(jobs: list[pulumi_adapter.StackJob]) -> list[pulumi_adapter.StackOutcome]:
        return [pulumi_adapter.StackOutcome(j.cluster, "up", False, {}, "the.log", "boom",
                                            stack=j.stack) for j in jobs]

    outcome = run_stack_unit(fleet, located, "edge", which=lambda _: "/usr/bin/pulumi",
                             runner=failing)
    assert outcome.status == "failed" and "boom" in outcome.message
