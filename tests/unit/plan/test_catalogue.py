"""The role catalogue is the one home of a role: every other table is a view of it."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml

from dnabox.inventory import load_fleet
from dnabox.inventory.model import BootstrapRole, Distribution
from dnabox.locations import ASSETS, Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.artifacts import required_artifacts
from dnabox.plan.catalogue import CATALOGUE, ROLE_ORDER, RoleSpec, all_packages, role_spec
from dnabox.plan.direct_program import DIRECT_ROLES
from dnabox.plan.roles import roles_for
from dnabox.provision.runbooks import ROLE_CHECKS

ROOT = Path(__file__).resolve().parents[3]


def test_names_are_unique_and_the_inventory_accepts_exactly_them() -> None:
    assert len(set(ROLE_ORDER)) == len(CATALOGUE)
    # The inventory model sits below the planner, so it spells the names out itself.
    assert get_args(BootstrapRole) == ROLE_ORDER


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.name)
def test_each_role_has_its_ansible_role_and_its_managed_files(spec: RoleSpec) -> None:
    name = spec.name
    assert role_spec(name) is spec
    assert (ASSETS / "playbooks" / "roles" / name / "tasks" / "main.yml").is_file()
    table = yaml.safe_load((ASSETS / "templates" / "files.yml").read_text())
    dests = [e["dest"] for e in table if e["role"] == name]
    if spec.apply_script is not None:
        assert spec.apply_script in dests, f"{name}: its apply script is not a managed file"


def test_the_tables_are_views_of_the_catalogue() -> None:
    assert {s.name: s.apply_script for s in CATALOGUE if s.direct} == DIRECT_ROLES
    assert {s.name: s.health_check for s in CATALOGUE} == ROLE_CHECKS
    assert all_packages() == sorted({p for s in CATALOGUE for p in s.packages})
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    variables = render_ansible_inventory(fleet, Locations.discover(ROOT))["all"]["vars"]
    for spec in CATALOGUE:
        if spec.packages:
            assert variables[f"{spec.name}_packages"] == list(spec.packages)
        else:
            assert f"{spec.name}_packages" not in variables


@pytest.mark.parametrize("sample", ["lab", "smartx-playground"])
def test_roles_for_a_box_follow_the_catalogue_order_and_leave_out_skipped_roles(
        sample: str) -> None:
    fleet = load_fleet(ROOT / "inventory" / f"{sample}.yaml")
    for box in fleet.boxes:
        roles = roles_for(fleet, box)
        assert roles == [r for r in ROLE_ORDER if r in roles]
        assert not set(roles) & set(fleet.bootstrap.skip_roles)
        expected = [s.name for s in CATALOGUE if s.applies(fleet, box)
                    and s.name not in fleet.bootstrap.skip_roles]
        assert roles == expected


def test_the_lab_skips_roles_the_planner_would_otherwise_run() -> None:
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    assert fleet.bootstrap.skip_roles
    unskipped = fleet.model_copy(update={"bootstrap": fleet.bootstrap.model_copy(
        update={"skip_roles": []})})
    for box in fleet.boxes:
        assert set(roles_for(unskipped, box)) > set(roles_for(fleet, box))


def test_every_distribution_names_the_artifacts_of_each_formation_role() -> None:
    for spec in CATALOGUE:
        if spec.formation:
            assert set(spec.artifacts_by_distribution) == set(get_args(Distribution))


def test_required_artifacts_come_from_the_catalogue() -> None:
    fleet = load_fleet(ROOT / "inventory" / "smartx-playground.yaml")
    for box in fleet.boxes:
        needed = required_artifacts(fleet, box)
        for role in roles_for(fleet, box):
            names = role_spec(role).artifacts_for(fleet, box)
            assert needed.get(role, []) == list(names)
