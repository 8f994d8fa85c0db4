"""`dnabox init`: the scaffolded fleet repo validates, plans and carries its editor schema;
`--from-ansible` imports what it can tell and leaves TODOs that fail validation."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from dnabox.cli.app import app
from dnabox.inventory import load_fleet
from dnabox.inventory.json_schema import generate
from dnabox.layers import stack_config
from dnabox.locations import Locations
from dnabox.plan.desired import plan_fleet
from dnabox.scaffold.repo import INVENTORY, SCHEMA, WORKFLOW

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def test_the_checked_in_inventory_schema_is_generated_from_the_model() -> None:
    assert (ROOT / "docs" / "inventory.schema.json").read_text() == generate(), (
        "stale: python -m dnabox.inventory.json_schema > docs/inventory.schema.json")


@pytest.mark.parametrize("sample", ["lab", "smartx-playground"])
def test_the_samples_validate_against_the_schema(sample: str) -> None:
    document = yaml.safe_load((ROOT / "inventory" / f"{sample}.yaml").read_text())
    jsonschema.validate(document, json.loads(generate()))


def test_init_writes_a_repo_that_validates_and_plans(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "acme-fleet"
    result = runner.invoke(app, ["init", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["todos"] == 0
    assert set(report["files"]) == {
        INVENTORY, SCHEMA, "Pulumi.yaml", "stacks/__main__.py", ".gitignore", "README.md",
        WORKFLOW, "Pulumi.acme-fleet-core.yaml", "Pulumi.acme-fleet-edge.yaml"}
    inventory = repo / INVENTORY
    text = inventory.read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/inventory.schema.json\n")
    assert (inventory.parent / "../schema/inventory.schema.json").resolve().read_text() == (
        generate())
    jsonschema.validate(yaml.safe_load(text), json.loads(generate()))
    fleet = load_fleet(inventory)
    assert fleet.name == "acme-fleet"
    assert sorted(fleet.tier_of(b) for b in fleet.boxes) == ["core", "edge", "end"]
    # The Pulumi project runs dnabox's program; the state dir is ignored.
    assert (repo / "Pulumi.yaml").read_text() == stack_config.project_file()
    assert (repo / "stacks" / "__main__.py").read_text() == stack_config.PROGRAM_SHIM
    assert "/.dnabox/" in (repo / ".gitignore").read_text().splitlines()
    workflow = yaml.safe_load((repo / WORKFLOW).read_text())
    steps = json.dumps(workflow["jobs"])
    assert "pulumi/actions" in steps and "'preview' || 'up'" in steps
    assert workflow["env"]["DNABOX_INVENTORY"] == INVENTORY
    # From inside the repo: valid, stack config current, and planned (no box is contacted).
    monkeypatch.chdir(repo)
    monkeypatch.setenv("DNABOX_INVENTORY", INVENTORY)
    assert runner.invoke(app, ["inventory", "validate"]).exit_code == 0
    assert runner.invoke(app, ["stack", "config", "--check"]).exit_code == 0
    planned = runner.invoke(app, ["plan", "--offline", "--json"])
    assert planned.exit_code == 0, planned.output
    boxes = json.loads(planned.stdout)["boxes"]
    assert {b["name"]: b["state"] for b in boxes} == {
        "core-1": "pending", "edge-1-1": "pending", "end-1-1": "pending"}
    assert all(set(b["roles"].values()) == {"new"} and b["diffs"] for b in boxes)
    assert plan_fleet(fleet, Locations.discover(repo))


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    (tmp_path / "README.md").write_text("mine\n")
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 2 and "README.md" in again.output
    assert (tmp_path / "README.md").read_text() == "mine\n"
    assert runner.invoke(app, ["init", str(tmp_path), "--force"]).exit_code == 0


HOSTS_INI = """\
# a hand-written inventory
[core]
core01 ansible_host=192.168.10.11
core02 ansible_host=192.168.10.12 ansible_user=admin

[edge_kaist]
kaist-1 ansible_host=192.168.20.11 ansible_port=2222
kaist-2 ansible_host=kaist-2.example.org

[labs]
pi-1 ansible_host=192.168.30.5 ansible_ssh_private_key_file=~/.ssh/pi

[edge:children]
edge_kaist

[all:vars]
ansible_user=ops
"""

HOSTS_YAML = """\
all:
  vars:
    ansible_user: ops
  children:
    core:
      hosts:
        core01: {ansible_host: 192.168.10.11}
        core02: {ansible_host: 192.168.10.12, ansible_user: admin}
    edge:
      children:
        edge_kaist:
          hosts:
            kaist-1: {ansible_host: 192.168.20.11, ansible_port: 2222}
            kaist-2: {ansible_host: kaist-2.example.org}
    labs:
      hosts:
        pi-1: {ansible_host: 192.168.30.5, ansible_ssh_private_key_file: ~/.ssh/pi}
"""


@pytest.mark.parametrize(("name", "text"), [("hosts.ini", HOSTS_INI),
                                            ("hosts.yaml", HOSTS_YAML)])
def test_from_ansible_imports_what_it_can_and_marks_the_rest(tmp_path: Path, name: str,
                                                            text: str) -> None:
    source = tmp_path / name
    source.write_text(text)
    repo = tmp_path / "imported"
    result = runner.invoke(app, ["init", str(repo), "--from-ansible", str(source), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["todos"] == 2
    imported = yaml.safe_load((repo / INVENTORY).read_text())
    assert imported["defaults"]["ssh"]["user"] == "ops"
    assert {s["name"]: s["tier"] for s in imported["sites"]} == {
        "core": "core", "edge-kaist": "edge", "labs": "TODO"}
    boxes = {b["name"]: b for b in imported["boxes"]}
    assert boxes["core01"] == {"name": "core01", "site": "core", "address": "192.168.10.11"}
    assert boxes["core02"]["ssh"] == {"user": "admin"}
    assert boxes["kaist-1"]["ssh"] == {"port": 2222}
    assert boxes["kaist-2"]["address"] == "TODO"
    assert boxes["pi-1"]["ssh"] == {"key": "~/.ssh/pi"}
    # Each TODO fails validation on its own line until it is filled in.
    checked = runner.invoke(app, ["inventory", "validate", "-i", str(repo / INVENTORY),
                                  "--json"])
    assert checked.exit_code == 4
    problems = json.loads(checked.stdout)["error"]["problems"]
    assert {p["field"] for p in problems} == {"sites[2].tier", "boxes[3].address"}
    lines = (repo / INVENTORY).read_text().splitlines()
    assert all("TODO" in lines[p["line"] - 1] for p in problems)
    filled = (repo / INVENTORY).read_text().replace(
        "tier: TODO", "tier: end").replace("address: TODO", "address: 192.168.20.12")
    (repo / INVENTORY).write_text(filled)
    assert runner.invoke(app, ["inventory", "validate", "-i",
                               str(repo / INVENTORY)]).exit_code == 0


def test_from_ansible_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    ranges = tmp_path / "hosts"
    ranges.write_text("[web]\nweb[01:20].example.org\n")
    result = runner.invoke(app, ["init", str(tmp_path / "r"), "--from-ansible", str(ranges)])
    assert result.exit_code == 2 and "host ranges" in result.output
    empty = tmp_path / "empty.ini"
    empty.write_text("# nothing\n")
    result = runner.invoke(app, ["init", str(tmp_path / "e"), "--from-ansible", str(empty)])
    assert result.exit_code == 2 and "no hosts" in result.output
