"""The demo's D-N-A loop, with the layer faked: its order, its proofs, and a cut always healed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dnabox.errors import DnaboxError
from dnabox.inventory import load_fleet
from dnabox.lab import dna_loop

ROOT = Path(__file__).resolve().parents[3]


class FakeLayer:
    """A lake that takes published samples unless the pond's site is cut off."""

    def __init__(self, fail_predict_while_cut: bool = False) -> None:
        self.lake = 0
        self.backlog = 0
        self.cut = False
        self.version = 0
        self.calls: list[str] = []
        self.fail_predict_while_cut = fail_predict_while_cut

    def publish(self, fleet: Any, box: str, count: int) -> Any:
        self.calls.append(f"publish {box} {count}")
        if self.cut:
            self.backlog += count
        else:
            self.lake += count
        return SimpleNamespace(rate=5000.0, published=count)

    def read_status(self, fleet: Any) -> Any:
        return SimpleNamespace(lake_samples=self.lake, ponds=[
            SimpleNamespace(site="edge-a", samples=None if self.cut else self.lake)])

    def train(self, fleet: Any, model: str, pool: Any) -> Any:
        self.version += 1
        self.calls.append(f"train v{self.version}")
        return SimpleNamespace(version=self.version,
                               metric={"rmse": 3.0 / self.version, "r2": 0.9, "held_out": 200})

    def predict(self, fleet: Any, site: str, model: str, features: Any, pool: Any) -> Any:
        if self.cut and self.fail_predict_while_cut:
            raise DnaboxError("no answer")
        return SimpleNamespace(version=self.version, prediction=42.0, seconds=0.01)

    def partition(self, fleet: Any, site: str) -> None:
        self.calls.append(f"partition {site}")
        self.cut = True

    def heal(self, fleet: Any, site: str) -> None:
        self.calls.append(f"heal {site}")
        self.cut = False
        self.lake += self.backlog
        self.backlog = 0


@pytest.fixture
def layer(monkeypatch: pytest.MonkeyPatch) -> FakeLayer:
    fake = FakeLayer()
    for name in ("publish", "read_status", "train", "predict"):
        monkeypatch.setattr(dna_loop, name, getattr(fake, name))
    monkeypatch.setattr(dna_loop.partition, "partition", fake.partition)
    monkeypatch.setattr(dna_loop.partition, "heal", fake.heal)
    return fake


def test_the_lab_fleet_loop_publishes_at_its_end_device_and_serves_at_its_edge() -> None:
    plan = dna_loop.loop_plan(load_fleet(ROOT / "inventory/lab.yaml"))
    assert plan is not None
    assert (plan.producer, plan.pond_site) == ("end-a-1", "edge-a")
    assert "edge-a" in plan.serving_sites


def test_the_loop_cuts_heals_and_retrains_in_order(layer: FakeLayer) -> None:
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    plan = dna_loop.loop_plan(fleet)
    assert plan is not None
    proofs = dna_loop.run_loop(fleet, plan, lambda text: None, samples=20, while_cut=10)
    assert all(p.ok for p in proofs), proofs
    assert layer.calls == ["publish end-a-1 20", "train v1", "partition edge-a",
                           "publish end-a-1 10", "heal edge-a", "train v2"]
    assert any("v2" in p.what for p in proofs)


def test_a_failure_while_cut_off_still_heals_and_fails_the_loop(
        layer: FakeLayer) -> None:
    layer.fail_predict_while_cut = True
    fleet = load_fleet(ROOT / "inventory/lab.yaml")
    plan = dna_loop.loop_plan(fleet)
    assert plan is not None
    proofs = dna_loop.run_loop(fleet, plan, lambda text: None, samples=20, while_cut=10)
    assert layer.calls[-1] == "heal edge-a" and not layer.cut
    assert not proofs[-1].ok and "no answer" in proofs[-1].detail
