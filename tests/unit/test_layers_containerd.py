"""RuntimeClass handlers against the containerd config the bootstrap renders.

Pods of a RuntimeClass land on the nodes its nodeSelector picks; each of those nodes'
containerd must have a runtime table named after the class's handler (peers' users saw Kata
pods silently run on runc when the two drifted apart).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import pytest
import yaml

from dnabox.inventory import load_fleet
from dnabox.layers import baseline, runtimes
from dnabox.locations import ASSETS, Locations
from dnabox.plan.ansible_inventory import render_inventory
from dnabox.plan.desired import box_variables, template_environment
from dnabox.plan.runtimes import RUNTIMES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "containerd/config.toml.j2"
ROLE_DEFAULTS = ASSETS / "playbooks" / "roles" / "container_runtime" / "defaults" / "main.yml"
SAMPLES = ("inventory/lab.yaml", "inventory/smartx-playground.yaml")

pytestmark = pytest.mark.skipif(not (ASSETS / "templates" / TEMPLATE).is_file(),
                                reason="the containerd template is not in this checkout")


def rendered_runtimes(inventory: dict[str, Any], box: str) -> dict[str, Any]:
    """The runtime tables of ``box``'s rendered containerd config.toml."""
    project = Locations.discover(ROOT)
    env = template_environment(project.templates)
    context: dict[str, Any] = {}
    if ROLE_DEFAULTS.is_file():
        context.update(yaml.safe_load(ROLE_DEFAULTS.read_text()) or {})
    context.update(box_variables(inventory, box))
    # Role settings unrelated to runtimes (paths, sandbox image) may not exist yet in this
    # checkout; stand-ins keep the file parseable without touching the runtime tables.
    source = (project.templates / TEMPLATE).read_text()
    for name in jinja2.meta.find_undeclared_variables(env.parse(source)):
        context.setdefault(name, True)
    config = tomllib.loads(env.get_template(TEMPLATE).render(context))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    tables: dict[str, Any] = cri["containerd"]["runtimes"]
    return tables


@pytest.mark.parametrize("path", SAMPLES)
def test_every_runtime_class_handler_is_a_runtime_table_on_its_nodes(path: str) -> None:
    fleet = load_fleet(ROOT / path)
    inventory = render_inventory(fleet, Locations.discover(ROOT))
    checked = 0
    for cluster in fleet.clusters:
        patches = baseline.node_patches(fleet, cluster)
        for rc in runtimes.runtime_classes(fleet, cluster):
            ((label, value),) = rc["scheduling"]["nodeSelector"].items()
            nodes = [p["metadata"]["name"] for p in patches
                     if p["metadata"]["labels"].get(label) == value]
            assert nodes
            for node in nodes:
                tables = rendered_runtimes(inventory, node)
                assert rc["handler"] in tables, f"{node}: no containerd runtime {rc['handler']}"
                spec = RUNTIMES[rc["metadata"]["name"]]
                assert tables[rc["handler"]]["runtime_type"] == spec.runtime_type
                checked += 1
    assert checked >= len(fleet.clusters)
