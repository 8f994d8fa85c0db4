"""The speed model: least squares on engineered features, evaluated on held-out samples.

Speed falls linearly with occupancy (Greenshields) from a free-flow speed that rain lowers,
so occupancy, its square (the floor at jam speed bends the line) and rain-occupancy
interaction carry most of it; the hour enters as a point on the daily circle. The held-out
set is chosen by a hash of the sample id, so a sample never moves between train and test as
the lake grows, and successive versions are compared on comparable data.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dnabox.dna.service.samples import FEATURES, LABEL

TERMS = ("1", "occupancy", "occupancy^2", "rain", "rain*occupancy", "sin(hour)", "cos(hour)",
         "flow/1000")
HELD_OUT_PERCENT = 20
# Below this many training samples the least-squares fit is not worth publishing.
MIN_TRAIN_SAMPLES = len(TERMS) * 2

Matrix = npt.NDArray[np.float64]


def design_row(features: dict[str, float]) -> list[float]:
    occ, rain = features["occupancy"], features["rain"]
    angle = 2.0 * math.pi * features["hour"] / 24.0
    return [1.0, occ, occ * occ, rain, rain * occ, math.sin(angle), math.cos(angle),
            features["flow"] / 1000.0]


def held_out(sample_id: str) -> bool:
    digest = hashlib.sha256(sample_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


@dataclass(frozen=True)
class Metric:
    rmse: float
    mae: float
    r2: float
    held_out: int

    def as_dict(self) -> dict[str, float | int]:
        return {"rmse": round(self.rmse, 4), "mae": round(self.mae, 4), "r2": round(self.r2, 4),
                "held_out": self.held_out}


@dataclass(frozen=True)
class SpeedModel:
    coefficients: tuple[float, ...]

    def predict(self, features: dict[str, float]) -> float:
        return float(np.dot(np.asarray(design_row(features)), np.asarray(self.coefficients)))

    def to_json(self, extra: dict[str, Any]) -> bytes:
        body = {"kind": "linear-least-squares", "terms": list(TERMS), "features": list(FEATURES),
                "label": LABEL, "coefficients": list(self.coefficients), **extra}
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SpeedModel:
        body = json.loads(data)
        if body.get("terms") != list(TERMS):
            raise ValueError("model terms differ from this server's: " + str(body.get("terms")))
        coefficients = tuple(float(c) for c in body["coefficients"])
        if len(coefficients) != len(TERMS) or not all(math.isfinite(c) for c in coefficients):
            raise ValueError("model coefficients are not finite numbers, one per term")
        return cls(coefficients)


class NotEnoughData(Exception):
    pass


def _matrices(samples: list[dict[str, Any]]) -> tuple[Matrix, Matrix]:
    x = np.asarray([design_row(s["features"]) for s in samples], dtype=np.float64)
    y = np.asarray([float(s["label"][LABEL]) for s in samples], dtype=np.float64)
    return x, y


def evaluate(model: SpeedModel, samples: list[dict[str, Any]]) -> Metric:
    x, y = _matrices(samples)
    error = x @ np.asarray(model.coefficients) - y
    spread = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / spread if spread > 0 else 0.0
    return Metric(float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error))), r2, len(y))


def train(samples: list[dict[str, Any]]) -> tuple[SpeedModel, Metric]:
    """Fit on the training share, evaluate on the held-out share."""
    training = [s for s in samples if not held_out(s["id"])]
    testing = [s for s in samples if held_out(s["id"])]
    if len(training) < MIN_TRAIN_SAMPLES or not testing:
        raise NotEnoughData(
            f"{len(samples)} samples ({len(training)} to train, {len(testing)} held out); "
            f"need at least {MIN_TRAIN_SAMPLES} to train and 1 held out")
    x, y = _matrices(training)
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    model = SpeedModel(tuple(float(c) for c in coefficients))
    return model, evaluate(model, testing)
