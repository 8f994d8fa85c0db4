"""V-I-P road-side sensor samples: what an end device at the road measures each minute.

A loop detector reports its occupancy (the share of the minute a vehicle stood over it), the
flow (vehicles per hour and lane), whether it rains, and the mean speed. The relation is the
textbook one (Greenshields: speed falls linearly with density from the free-flow speed), with
rush hours, rain slowing traffic and measurement noise, so a model has something real to
learn and cannot learn it exactly.

The sensor's clock is compressed: sample ``seq`` covers the ``seq``-th minute of its road's
day, so a few hundred samples span every hour; ``ts`` stays the wall-clock publish time, which
is what end-to-lake latency is measured with.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

FEATURES = ("hour", "occupancy", "flow", "rain")
LABEL = "speed"
SCHEMA_VERSION = 1
# Vehicle length plus detector length in km: density (veh/km) = occupancy / this.
EFFECTIVE_LENGTH_KM = 0.0075
JAM_OCCUPANCY = 0.75
MIN_SPEED = 5.0


def _stable_unit(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` (Python's hash() changes every run)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


class Sensor:
    """One road-side sensor: its road's free-flow speed is fixed by the box's name."""

    def __init__(self, site: str, box: str, dataset: str, seed: int | None = None) -> None:
        self.site, self.box, self.dataset = site, box, dataset
        self.free_flow = 85.0 + 20.0 * _stable_unit(f"{site}/{box}")
        self.start_minute = int(24 * 60 * _stable_unit(f"{box}/start"))
        self.random = random.Random(seed if seed is not None else _stable_unit(box))

    def sample(self, seq: int, ts: float) -> dict[str, Any]:
        rnd = self.random
        hour = ((self.start_minute + seq) % (24 * 60)) / 60.0
        rain = 1 if rnd.random() < 0.2 else 0
        rush = 0.30 * math.exp(-((hour - 8.0) ** 2) / 2.0) + \
            0.35 * math.exp(-((hour - 18.0) ** 2) / 3.0)
        occupancy = 0.08 + rush + 0.05 * rain + rnd.gauss(0.0, 0.03)
        occupancy = min(max(occupancy, 0.01), 0.95)
        free_flow = self.free_flow * (0.88 if rain else 1.0)
        speed = free_flow * (1.0 - occupancy / JAM_OCCUPANCY) + rnd.gauss(0.0, 3.0)
        speed = max(speed, MIN_SPEED)
        flow = (occupancy / EFFECTIVE_LENGTH_KM) * speed * (1.0 + rnd.gauss(0.0, 0.05))
        return {
            "id": sample_id(self.box, seq),
            "ts": ts,
            "site": self.site,
            "box": self.box,
            "dataset": self.dataset,
            "schema_version": SCHEMA_VERSION,
            "features": {"hour": round(hour, 4), "occupancy": round(occupancy, 5),
                         "flow": round(max(flow, 0.0), 2), "rain": rain},
            "label": {LABEL: round(speed, 3)},
        }


def sample_id(box: str, seq: int) -> str:
    return f"{box}:{seq}"


def seq_of(sample_id_text: str) -> int:
    return int(sample_id_text.rpartition(":")[2])


def check_features(features: object) -> dict[str, float]:
    """The features of a request or sample as numbers; ValueError names the bad field."""
    if not isinstance(features, dict):
        raise ValueError("features: expected an object with " + ", ".join(FEATURES))
    values: dict[str, float] = {}
    for name in FEATURES:
        value = features.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"features.{name}: expected a number")
        if not math.isfinite(value):
            raise ValueError(f"features.{name}: expected a finite number")
        values[name] = float(value)
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ValueError(f"features.{unknown[0]}: unknown feature")
    return values
