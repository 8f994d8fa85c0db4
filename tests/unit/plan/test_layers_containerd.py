"""RuntimeClass handlers against the containerd config the bootstrap writes, in both formats.

Pods of a RuntimeClass land on the nodes its nodeSelector picks; each of those nodes'
containerd must have a runtime table named after the class's handler (peers' users saw Kata
pods silently run on runc when the two drifted apart). The config each node gets is the
real one: its dnabox.toml merged by its dnabox-containerd-config, as containerd 1.7 (config
v2) and 2.1 (config v3) would have it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from containerd_merge import box_containerd, runtimes_of

from dnabox.inventory import load_fleet
from dnabox.layers import baseline, runtimes
from dnabox.plan.runtimes import RUNTIMES

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ("inventory/lab.yaml", "inventory/smartx-playground.yaml")


@pytest.mark.parametrize("version", ["1.7.24", "2.1.4"])
@pytest.mark.parametrize("path", SAMPLES)
def test_every_runtime_class_handler_is_a_runtime_table_on_its_nodes(
        path: str, version: str, tmp_path: Path) -> None:
    fleet = load_fleet(ROOT / path)
    checked = 0
    for cluster in fleet.clusters:
        patches = baseline.node_patches(fleet, cluster)
        for rc in runtimes.runtime_classes(fleet, cluster):
            ((label, value),) = rc["scheduling"]["nodeSelector"].items()
            nodes = [p["metadata"]["name"] for p in patches
                     if p["metadata"]["labels"].get(label) == value]
            assert nodes
            for node in nodes:
                files = box_containerd(fleet, node, tmp_path / f"{rc['handler']}-{node}")
                files.merge(version)
                tables = runtimes_of(files.parsed())
                assert rc["handler"] in tables, f"{node}: no containerd runtime {rc['handler']}"
                spec = RUNTIMES[rc["metadata"]["name"]]
                assert tables[rc["handler"]]["runtime_type"] == spec.runtime_type
                checked += 1
    assert checked >= len(fleet.clusters)
