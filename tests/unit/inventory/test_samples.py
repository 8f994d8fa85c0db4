"""The sample fleets are valid and render deterministic Ansible inventories."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dnabox.inventory import load_fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory

SAMPLES = ["inventory/lab.yaml", "inventory/smartx-playground.yaml"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_is_valid(repo_root: Path, sample: str) -> None:
    fleet = load_fleet(repo_root / sample)
    assert fleet.boxes
    assert {s.tier for s in fleet.sites} == {"core", "edge", "end"}


def test_playground_is_a_realistic_testbed(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/smartx-playground.yaml")
    core = [b for b in fleet.boxes if fleet.tier_of(b) == "core"]
    edge_sites = [s for s in fleet.sites if s.tier == "edge"]
    assert len(core) >= 3
    assert len(edge_sites) >= 3
    for site in edge_sites:
        assert sum(1 for b in fleet.boxes if b.site == site.name) >= 2
    assert {p.name for p in fleet.planes} == {"P+M", "C", "D"}
    assert fleet.overlays and any(c.name == "core" for c in fleet.clusters)


@pytest.mark.parametrize("sample", SAMPLES)
def test_ansible_inventory_is_deterministic(repo_root: Path, sample: str) -> None:
    first = yaml.safe_dump(render_ansible_inventory(load_fleet(repo_root / sample),
                                                    Locations.discover()))
    second = yaml.safe_dump(render_ansible_inventory(load_fleet(repo_root / sample),
                                                     Locations.discover()))
    assert first == second


def test_ansible_inventory_groups(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    inventory = render_ansible_inventory(fleet, Locations.discover())["all"]
    children = inventory["children"]
    assert set(children["tier_edge"]["hosts"]) == {"edge-a-1", "edge-b-1"}
    assert set(children["site_end_a"]["hosts"]) == {"end-a-1"}
    assert set(children["role_control_plane"]["hosts"]) == {"core-1", "edge-a-1"}
    assert set(children["cluster_edge"]["hosts"]) == {"edge-a-1", "edge-b-1", "end-a-1"}
    core = inventory["hosts"]["core-1"]
    assert core["ansible_host"] == "10.201.1.11"
    assert "StrictHostKeyChecking=yes" in core["ansible_ssh_common_args"]
    # End devices never get Kata or Apptainer, whatever their cluster enables.
    end = inventory["hosts"]["end-a-1"]
    assert [r["name"] for r in end["dnabox_runtimes"]] == ["runc"]
    tunnels = core["dnabox_overlays"][0]["tunnels"]
    assert {t["peer"] for t in tunnels} == {"edge-a-1", "edge-b-1", "end-a-1"}
