"""`dnabox lab partition`: which traffic the lab's router drops for a site."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnabox.errors import DnaboxError
from dnabox.inventory import load_fleet
from dnabox.lab.partition import partition_pairs, rules, tag


def test_edge_site_is_cut_from_the_core_but_keeps_its_end_devices(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    pairs = partition_pairs(fleet, "edge-a")
    # edge-a and its uplinked end site end-a (D plane) against core and edge-b (D plane).
    assert sorted(pairs) == sorted([
        ("10.203.2.0/24", "10.203.1.0/24"), ("10.203.2.0/24", "10.203.3.0/24"),
        ("10.203.4.0/24", "10.203.1.0/24"), ("10.203.4.0/24", "10.203.3.0/24")])
    # The management plane (10.201/16) is never cut: SSH keeps reaching every box.
    assert not any(cidr.startswith("10.201.") for pair in pairs for cidr in pair)


def test_rules_drop_both_ways_and_carry_the_site_tag(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    found = rules(fleet, "core")
    assert len(found) == 2 * len(partition_pairs(fleet, "core"))
    assert all(rule[-4:] == ["--comment", tag("core"), "-j", "DROP"] for rule in found)
    assert ["-s", "10.203.1.0/24", "-d", "10.203.2.0/24"] in [r[:4] for r in found]
    assert ["-s", "10.203.2.0/24", "-d", "10.203.1.0/24"] in [r[:4] for r in found]


def test_unknown_site_is_refused_with_the_valid_ones(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    with pytest.raises(DnaboxError, match="no site edge-z") as caught:
        partition_pairs(fleet, "edge-z")
    assert "edge-a" in caught.value.hint


def test_a_wan_cut_takes_the_sites_management_plane_from_everyone(repo_root: Path) -> None:
    fleet = load_fleet(repo_root / "inventory/lab.yaml")
    plain = rules(fleet, "edge-b")
    wan = rules(fleet, "edge-b", wan=True)
    extra = [rule[:2] for rule in wan if rule not in plain]
    # edge-b's management subnet, both directions, against anything (the controller too).
    management = [str(n.cidr) for s in fleet.sites if s.name == "edge-b"
                  for p, n in s.subnets.items() if p == fleet.management_plane().name]
    assert management and all(cidr.startswith("10.201.") for cidr in management)
    assert sorted(extra) == sorted([flag, cidr] for cidr in management for flag in ("-s", "-d"))
    assert plain == wan[:len(plain)], "a WAN cut is the plain cut plus management"
