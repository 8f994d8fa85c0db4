"""Fingerprints: stable, specific to what a role uses, and sensitive to what it renders."""

from __future__ import annotations

import json
import platform
import socket
import subprocess
from pathlib import Path

import yaml

from dnabox.inventory import load_fleet
from dnabox.inventory.model import Fleet
from dnabox.locations import Locations
from dnabox.plan.desired import plan_fleet
from dnabox.provision.remote import BoxState, decide, parse_preflight, preflight_command


def fake_project(tmp_path: Path) -> Locations:
    """Two roles: `base` reads the tier; `ovs` renders the overlay tunnels."""
    roles = tmp_path / "playbooks" / "roles"
    (roles / "base" / "tasks").mkdir(parents=True)
    (roles / "base" / "tasks" / "main.yml").write_text("- debug: msg={{ dnabox_tier }}\n")
    (roles / "ovs" / "tasks").mkdir(parents=True)
    (roles / "ovs" / "tasks" / "main.yml").write_text("- debug: msg=ovs\n")
    (roles / "ovs" / "defaults").mkdir()
    (roles / "ovs" / "defaults" / "main.yml").write_text("ovs_datapath: netdev\n")
    templates = tmp_path / "templates"
    (templates / "ovs").mkdir(parents=True)
    (templates / "ovs" / "tunnels.j2").write_text(
        "datapath={{ ovs_datapath }}\n"
        "{% for o in dnabox_overlays %}{% for t in o.tunnels %}"
        "{{ t.port }} {{ t.remote_ip }}\n{% endfor %}{% endfor %}")
    (templates / "files.yml").write_text(yaml.safe_dump(
        [{"role": "ovs", "src": "ovs/tunnels.j2", "dest": "/etc/dnabox/tunnels", "mode": "0644"}]))
    return Locations(project=tmp_path, state=tmp_path / ".dnabox", assets=tmp_path)


def with_extra_box(fleet: Fleet) -> Fleet:
    data = fleet.model_dump(mode="json")
    extra = dict(data["boxes"][1], name="edge-a-2", address="10.201.2.12",
                 interfaces={"D": {"nic": "eth1", "address": "10.203.2.12/24"}},
                 overlay_addresses={"dataplane": "10.250.0.22/24"})
    data["boxes"].append(extra)
    return Fleet.model_validate(data)


def test_fingerprints_are_stable(repo_root: Path, tmp_path: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    project = fake_project(tmp_path)
    first = {b: p.fingerprints for b, p in plan_fleet(fleet, project).items()}
    second = {b: p.fingerprints for b, p in plan_fleet(fleet, project).items()}
    assert first == second


def test_adding_a_box_changes_only_the_overlay_role_of_its_peers(
    repo_root: Path, tmp_path: Path
) -> None:
    project = fake_project(tmp_path)
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    before = plan_fleet(fleet, project)
    after = plan_fleet(with_extra_box(fleet), project)
    for name, plan in before.items():
        assert plan.role("base").fingerprint == after[name].role("base").fingerprint, name
        assert plan.role("ovs").fingerprint != after[name].role("ovs").fingerprint, name
    assert "edge-a-2" in after
    rendered = after["core-1"].role("ovs").files[0]
    assert rendered.dest == "/etc/dnabox/tunnels"
    assert rendered.content.startswith("datapath=netdev\n")
    assert rendered.content.count("\n") == 1 + 4  # four peers now


def test_editing_a_role_changes_its_fingerprint(repo_root: Path, tmp_path: Path) -> None:
    project = fake_project(tmp_path)
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    before = plan_fleet(fleet, project)["core-1"]
    (project.roles / "base" / "tasks" / "main.yml").write_text("- debug: msg=changed\n")
    # The role text cache is per process; a new planner run in a new process sees edits.
    from dnabox.plan import desired

    desired._role_text.cache_clear()
    after = plan_fleet(fleet, project)["core-1"]
    assert before.role("base").fingerprint != after.role("base").fingerprint
    assert before.role("ovs").fingerprint == after.role("ovs").fingerprint


def test_preflight_round_trip_and_decisions(repo_root: Path, tmp_path: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    plan = plan_fleet(fleet, fake_project(tmp_path))["core-1"]
    command = preflight_command(plan)
    assert "/etc/dnabox/tunnels" in command and "fingerprints.json" in command
    ovs_file = plan.role("ovs").files[0]
    # The roles' generated files (the dna services' code and configs) come from the
    # catalogue, not from the fake project's templates: they are on the box too.
    generated = "".join(f"{f.sha256}  {f.dest}\n" for f in plan.files if f.generated)
    assert generated
    output = (
        json.dumps({"fingerprints": plan.fingerprints}) + "\n@@dnabox-section@@\n"
        f"{ovs_file.sha256}  /etc/dnabox/tunnels\n{generated}@@dnabox-section@@\n"
        "core-1\n6.1.0\nx86_64\n2\n1024\ndebian\n"
    )
    state = parse_preflight(output, "core-1")
    assert state.facts.hostname == "core-1" and state.facts.cpus == 2
    assert all(d.reason == "converged" for d in decide(plan, state))
    drifted = BoxState(state.facts, state.fingerprints, {"/etc/dnabox/tunnels": "0" * 64})
    reasons = {d.role: d.reason for d in decide(plan, drifted)}
    assert reasons["ovs"] == "drifted" and reasons["base"] == "converged"
    fresh = BoxState(state.facts, {"base": "stale"}, {})
    reasons = {d.role: d.reason for d in decide(plan, fresh)}
    assert reasons["base"] == "changed" and reasons["ovs"] == "new"


def test_preflight_reads_release_architecture_and_containerd_in_the_same_round_trip(
        repo_root: Path, tmp_path: Path) -> None:
    """The real command on this machine (a Debian box): one shell, every fact."""
    import subprocess

    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    plan = plan_fleet(fleet, fake_project(tmp_path))["core-1"]
    done = subprocess.run(["sh", "-c", preflight_command(plan)], capture_output=True,
                          text=True, check=True)
    facts = parse_preflight(done.stdout, "core-1").facts
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text()
                   .splitlines() if "=" in line)
    assert facts.os_codename == release.get("VERSION_CODENAME", "").strip('"')
    assert facts.arch == subprocess.run(["uname", "-m"], capture_output=True, text=True,
                                        check=True).stdout.strip()
    if Path("/usr/bin/containerd").exists():
        version = subprocess.run(["/usr/bin/containerd", "--version"], capture_output=True,
                                 text=True, check=True).stdout.split()[2]
        assert facts.containerd == version


def test_a_box_that_is_not_what_the_inventory_says_is_stopped(repo_root: Path) -> None:
    from dnabox.provision.remote import BoxFacts, fact_problems

    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    facts = BoxFacts("core-1", "6.1", "x86_64", 2, 1024, "debian", "bookworm", "1.6.20")
    assert fact_problems(fleet, "core-1", facts) == []
    index = [b.name for b in fleet.boxes].index("core-1")
    trixie = BoxFacts("core-1", "6.12", "aarch64", 2, 1024, "debian", "trixie", "1.7.24")
    assert fact_problems(fleet, "core-1", trixie) == [
        "core-1 runs Debian trixie but the inventory says bookworm: "
        f"set boxes[{index}].os: trixie",
        f"core-1 is aarch64 but the inventory says amd64: set boxes[{index}].arch: arm64"]
    ubuntu = BoxFacts("core-1", "6.8", "riscv64", 2, 1024, "ubuntu", "noble", "")
    problems = fact_problems(fleet, "core-1", ubuntu)
    assert "dnabox supports bookworm, trixie" in problems[0]
    assert "dnabox supports amd64 and arm64" in problems[1]


def test_preflight_command_runs_in_a_posix_shell_and_parses(repo_root: Path,
                                                            tmp_path: Path) -> None:
    plan = plan_fleet(load_fleet(repo_root / "inventory/lab.yaml"),
                      fake_project(tmp_path))["core-1"]
    output = subprocess.run(["sh", "-c", preflight_command(plan)], capture_output=True,
                            text=True, check=True).stdout
    state = parse_preflight(output, "core-1")
    assert state.facts.hostname == socket.gethostname()
    assert state.facts.kernel == platform.release()
    assert state.facts.arch == platform.machine()
    assert state.facts.cpus >= 1 and state.facts.memory_kb > 0


def test_fingerprints_do_not_depend_on_where_dnabox_or_its_state_lives(tmp_path: Path) -> None:
    """An installed dnabox (assets in site-packages), another checkout or another state dir
    plans the same fingerprints: converged boxes stay converged."""
    import shutil

    from dnabox.locations import ASSETS

    root = Path(__file__).resolve().parents[3]
    fleet = load_fleet(root / "inventory" / "smartx-playground.yaml")
    here = Locations(project=root, state=root / ".dnabox")
    shutil.copytree(ASSETS, tmp_path / "site-packages" / "dnabox" / "assets")
    elsewhere = Locations(project=tmp_path / "repo", state=tmp_path / "state",
                          assets=tmp_path / "site-packages" / "dnabox" / "assets")
    first, second = plan_fleet(fleet, here), plan_fleet(fleet, elsewhere)
    assert {b: p.fingerprints for b, p in first.items()} == {
        b: p.fingerprints for b, p in second.items()}
