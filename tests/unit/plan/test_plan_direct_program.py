"""The direct path: what it may run, the program it builds, and that it covers its roles."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from dnabox.inventory import load_fleet
from dnabox.locations import ASSETS, Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.desired import box_variables, plan_fleet
from dnabox.plan.direct_program import (
    DIRECT_ROLES,
    POLICY_RC,
    ProgramAssets,
    build_program,
    direct_capable,
)

ROOT = Path(__file__).resolve().parents[3]
ROLES = ASSETS / "playbooks" / "roles"

# Every Ansible task of a direct role, and what the direct program does instead. A task
# added to one of these roles fails this test until the direct path covers it too (or the
# role leaves DIRECT_ROLES): the two ways of converging a box cannot drift apart silently.
COVERED = {
    "Base | Keep package scripts from starting daemons on boxes without systemd":
        "put /usr/sbin/policy-rc.d (files/policy-rc.d) when systemd is not PID 1",
    "Base | Unpack the bundle's package repository": "offline fleets: never direct",
    "Base | Use the bundle as the package source": "offline fleets: never direct",
    "Base | Install baseline packages": "one apt transaction for every role",
    "Base | Create directories of managed files": "put: mkdir -p",
    "Base | Render managed files": "put: each rendered file",
    "Base | Create directories of generated files": "put: mkdir -p",
    "Base | Copy generated files": "put: each generated file",
    "Base | Apply state directories, kernel modules, swap and time sync": "dnabox-base-apply",
    "Container runtime | Install containerd, runc and crun": "one apt transaction",
    "Container runtime | Artifacts": "artifacts (containerd-static, toolkit): never direct",
    "Container runtime | Create the containerd release directory": "artifacts: never direct",
    "Container runtime | Unpack the containerd static release": "artifacts: never direct",
    "Container runtime | Create the toolkit package directory": "artifacts: never direct",
    "Container runtime | Unpack the toolkit packages": "artifacts: never direct",
    "Container runtime | Find the toolkit packages": "artifacts: never direct",
    "Container runtime | Install the NVIDIA container toolkit": "artifacts: never direct",
    "Container runtime | Look for the NVIDIA driver": "artifacts: never direct",
    "Container runtime | Write the CDI spec of the GPUs": "artifacts: never direct",
    "Container runtime | Managed files": "put: each rendered file (base's files tasks)",
    "Container runtime | Mount cgroups and run containerd": "dnabox-containerd-apply",
    "Ovs | Install Open vSwitch": "one apt transaction",
    "Ovs | Managed files": "put: each rendered file (base's files tasks)",
    "Ovs | Run Open vSwitch and apply the bridge, port and address layout": "dnabox-ovs-apply",
    "Cni | Install the container networking plugins": "one apt transaction",
    "Cni | Fetch ovs-cni": "artifacts: never direct",
    "Cni | Install ovs-cni": "artifacts: never direct",
    "Cni | Managed files": "put: each rendered file (base's files tasks)",
    "Dna | Install nats-server": "one apt transaction",
    "Dna | Managed files": "put: each rendered file (base's files tasks)",
    "Dna | Write the secrets": "put: each secret file (0600), from the fleet state dir",
    "Dna | Run nats-server and apply the streams": "dnabox-dna-apply",
    "Dna services | Install python3 and numpy": "one apt transaction",
    "Dna services | Managed files": "put: each rendered and generated file (base's files tasks)",
    "Dna services | Run the service containers": "dnabox-dna-services-apply",
}
# Handlers: the program runs the apply script's --reload when the role's files changed.
HANDLER_COMMANDS = {"base": "dnabox-base-apply --reload",
                    "container_runtime": "dnabox-containerd-apply --reload",
                    "ovs": "dnabox-ovs-apply --reload",
                    "dna": "dnabox-dna-apply --reload",
                    "dna_services": "dnabox-dna-services-apply --reload"}


def tasks_of(path: Path) -> list[dict[str, Any]]:
    """The tasks of a task file, with import_tasks expanded (as Ansible would)."""
    found: list[dict[str, Any]] = []
    for task in yaml.safe_load(path.read_text()) or []:
        imported = task.get("ansible.builtin.import_tasks")
        if imported:
            found += tasks_of(path.parent / imported)
        else:
            found.append(task)
    return found


@pytest.mark.parametrize("role", sorted(DIRECT_ROLES))
def test_every_task_of_a_direct_role_is_covered(role: str) -> None:
    names = [t["name"] for t in tasks_of(ROLES / role / "tasks" / "main.yml")]
    assert names, role
    assert [n for n in names if n not in COVERED] == []


@pytest.mark.parametrize("role", sorted(DIRECT_ROLES))
def test_handlers_of_a_direct_role_are_its_reload(role: str) -> None:
    handlers = yaml.safe_load((ROLES / role / "handlers" / "main.yml").read_text()) or []
    commands = [h["ansible.builtin.command"] for h in handlers if "ansible.builtin.command" in h]
    others = [h["name"] for h in handlers if "ansible.builtin.command" not in h
              and "ansible.builtin.debug" not in h]
    assert others == []
    assert [c.rsplit("/", 1)[-1] for c in commands] == (
        [HANDLER_COMMANDS[role]] if role in HANDLER_COMMANDS else [])


def test_apply_scripts_are_managed_files_of_their_role() -> None:
    table = yaml.safe_load((ASSETS / "templates" / "files.yml").read_text())
    for role, script in DIRECT_ROLES.items():
        if script:
            assert {"role": role, "dest": script} in [
                {"role": e["role"], "dest": e["dest"]} for e in table], role


def test_only_online_roles_without_artifacts_go_direct() -> None:
    online = {"dnabox_artifact_source": "online", "dnabox_artifacts": []}
    assert all(direct_capable(role, online) for role in DIRECT_ROLES)
    assert not direct_capable("kubernetes", online)
    assert not direct_capable("kata", online)
    assert not direct_capable("base", {**online, "dnabox_artifact_source": "offline"})
    with_artifact = {**online, "dnabox_artifacts": [{"name": "ovs-cni", "role": "cni"}]}
    assert not direct_capable("cni", with_artifact)
    assert direct_capable("ovs", with_artifact)


def lab_program(roles: list[str]) -> tuple[Any, str]:
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    project = Locations.discover(ROOT)
    inventory = render_ansible_inventory(fleet, project)
    plan = plan_fleet(fleet, project, inventory)["core-1"]
    program = build_program(
        plan, roles, box_variables(inventory, "core-1"),
        assets=replace(ProgramAssets.load(project), policy_rc="#!/bin/sh\nexit 101\n"),
        fingerprints_document=json.dumps({"fingerprints": plan.fingerprints}).encode(),
        state_file="/var/lib/dnabox/fingerprints.json")
    return plan, program.script


def decoded_files(script: str) -> dict[str, str]:
    files = {}
    for dest, body in re.findall(r"put (\S+) \d+ \w+ <<'@@dnabox-eof'\n(.*?)@@dnabox-eof\n",
                                 script, re.S):
        files[dest] = base64.b64decode(body).decode()
    return files


def test_program_installs_packages_files_then_applies_in_role_order() -> None:
    plan, script = lab_program(["cni", "dna_services", "dna", "ovs", "base",
                                "container_runtime"])
    steps = re.findall(r"^step (.+)$", script, re.M)
    assert steps == [
        f"base: {POLICY_RC}", "packages", "base: files", "container_runtime: files",
        "ovs: files", "cni: files", "dna: files", "dna_services: files", "base: apply",
        "container_runtime: apply", "ovs: apply", "dna: apply", "dna_services: apply",
        "fingerprints"]
    # One call of the program's install_missing (templates/apply/direct-program.sh).
    wanted = re.search(r"^install_missing (.+)$", script, re.M)
    assert wanted is not None
    assert wanted.group(1).split()[:2] == ["ca-certificates", "kmod"]
    assert "openvswitch-switch" in wanted.group(1).split()
    # dpkg's journal of an interrupted run is finished first: apt refuses to run before.
    recovery = script.index("ls -A /var/lib/dpkg/updates")
    configure = script.index("--force-confold --configure -a")
    assert recovery < configure < script.index("\ninstall_missing ")
    files = decoded_files(script)
    assert files.pop(POLICY_RC) == "#!/bin/sh\nexit 101\n"
    assert files == {f.dest: f.content for f in plan.files}
    for role, apply in DIRECT_ROLES.items():
        if apply:
            assert f'if [ "$changed_{role}" = 1 ]; then step {role}: reload; {apply} --reload' \
                in script


def test_program_runs_only_the_roles_asked_for() -> None:
    plan, script = lab_program(["ovs"])
    assert re.findall(r"^step (.+)$", script, re.M) == [
        "packages", "ovs: files", "ovs: apply", "fingerprints"]
    assert set(decoded_files(script)) == {f.dest for f in plan.role("ovs").files}
    assert "policy-rc.d" not in script


def test_program_is_valid_posix_shell_and_reads_nothing_from_its_own_stdin() -> None:
    _, script = lab_program(list(DIRECT_ROLES))
    assert script.startswith("{\n") and script.endswith("} </dev/null\n")
    checked = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True,
                             check=False)
    assert checked.returncode == 0, checked.stderr


def test_a_role_that_cannot_go_direct_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot take the direct path"):
        lab_program(["base", "kubernetes"])
