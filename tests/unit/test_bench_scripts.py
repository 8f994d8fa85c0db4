"""The benchmark scripts keep up with the library they drive.

Nothing else runs `bench/` between measurements, and a refactor once left `bench/run`
calling `render_ansible_inventory` without its new argument: it crashed before measuring.
These tests load every script (so each import resolves) and run the parts that need no lab.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from dnabox.inventory import load_fleet
from dnabox.locations import Locations

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(f"bench_{name}", str(BENCH / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up while defining
    sys.path.insert(0, str(BENCH))
    try:
        loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


@pytest.mark.parametrize("name", ["run", "scale", "dna"])
def test_every_bench_script_loads(name: str) -> None:
    assert callable(load(name).main)


def test_bench_run_renders_the_ansible_inventory_of_its_fleets(tmp_path: Path) -> None:
    bench = load("run")
    fleet_file = bench.write_fleet(tmp_path, "bench", 4, 2)
    where = Locations(project=bench.ROOT, state=tmp_path / "state")
    rendered = yaml.safe_load(bench.ansible_inventory(fleet_file, where).read_text())
    assert len(rendered["all"]["hosts"]) == 6
    assert load_fleet(fleet_file).name == "bench"
