"""The reference service's pure parts: its config file, the sensor, the model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dnabox.dna.service import model as speed_model
from dnabox.dna.service.config import ConfigError, load, parse
from dnabox.dna.service.samples import FEATURES, Sensor, check_features

GOOD = {"role": "inference", "site": "edge-a", "box": "edge-a-1", "dataset": "traffic",
        "nats_urls": ["nats://10.30.1.11:4222"], "domain": "edge-a", "model": "speed",
        "bind": "10.30.1.11:8480"}


def test_config_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "inference.json"
    path.write_text(parse(GOOD, "x").to_json())
    loaded = load(path)
    assert loaded == parse(GOOD, "x")
    assert loaded.nats_urls == ("nats://10.30.1.11:4222",)
    assert loaded.bind_address() == ("10.30.1.11", 8480)


@pytest.mark.parametrize(("change", "message"), [
    ({"colour": "red"}, "f.json: colour: unknown key"),
    ({"role": "painter"}, "f.json: role: expected one of collector, trainer, inference"),
    ({"nats_urls": []}, "f.json: nats_urls: expected a non-empty list of URLs"),
    ({"bind": "8480"}, "f.json: bind: expected address:port"),
    ({"bind": ""}, "f.json: bind: required for the inference"),
    ({"retrain_every_samples": True}, "f.json: retrain_every_samples: expected int"),
    ({"rate": -1}, "f.json: rate: must not be negative"),
    ({"site": 3}, "f.json: site: expected str"),
])
def test_config_errors_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.")):
        parse({**GOOD, **change}, "f.json")


def test_config_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n  "role": "trainer",\n  oops\n}\n')
    with pytest.raises(ConfigError, match=rf"^{path}:3: not JSON"):
        load(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.json")


def test_password_comes_from_its_file_and_is_never_in_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-value\n")
    config = parse({**GOOD, "password_file": str(secret)}, "x")
    assert config.password() == "s3cret-value"
    assert "s3cret" not in config.to_json()
    missing = parse({**GOOD, "password_file": str(tmp_path / "nope")}, "x")
    with pytest.raises(ConfigError, match=r"password_file .*nope: No such file"):
        missing.password()


def test_sensor_is_deterministic_and_its_ids_count_up() -> None:
    a = Sensor("edge-a", "end-a-1", "traffic", seed=7)
    b = Sensor("edge-a", "end-a-1", "traffic", seed=7)
    first = [a.sample(n, 1.0) for n in range(1, 4)]
    assert first == [b.sample(n, 1.0) for n in range(1, 4)]
    assert [s["id"] for s in first] == ["end-a-1:1", "end-a-1:2", "end-a-1:3"]
    assert set(first[0]["features"]) == set(FEATURES)
    json.dumps(first)  # a sample is plain JSON


def test_speed_falls_with_occupancy_and_rain() -> None:
    sensor = Sensor("edge-a", "end-a-1", "traffic", seed=1)
    samples = [sensor.sample(n, 0.0) for n in range(1, 5001)]
    def mean_speed(selected: list[dict[str, object]]) -> float:
        return sum(s["label"]["speed"] for s in selected) / len(selected)  # type: ignore[index]
    light = [s for s in samples if s["features"]["occupancy"] < 0.15]
    heavy = [s for s in samples if s["features"]["occupancy"] > 0.35]
    assert mean_speed(light) > mean_speed(heavy) + 15
    dry = [s for s in light if s["features"]["rain"] == 0]
    wet = [s for s in light if s["features"]["rain"] == 1]
    assert mean_speed(dry) > mean_speed(wet)


def test_the_model_learns_the_relation_and_improves_with_data() -> None:
    sensors = [Sensor("edge-a", f"end-a-{n}", "traffic", seed=n) for n in range(1, 4)]
    samples = [s.sample(n, 0.0) for n in range(1, 2001) for s in sensors]
    random.Random(3).shuffle(samples)
    few, _ = speed_model.train(samples[:60])
    model, metric = speed_model.train(samples)
    # The noise alone is 3 km/h; roads differ in free-flow speed, which no feature names.
    assert metric.rmse < 8 and metric.r2 > 0.8
    assert speed_model.evaluate(few, samples).rmse > speed_model.evaluate(model, samples).rmse
    assert metric.held_out == sum(speed_model.held_out(s["id"]) for s in samples)
    again = speed_model.SpeedModel.from_json(model.to_json({"version": 1}))
    assert again == model


def test_too_little_data_is_refused() -> None:
    sensor = Sensor("edge-a", "end-a-1", "traffic", seed=1)
    with pytest.raises(speed_model.NotEnoughData, match="need at least"):
        speed_model.train([sensor.sample(n, 0.0) for n in range(1, 6)])


def test_a_model_of_other_terms_is_refused() -> None:
    with pytest.raises(ValueError, match="terms differ"):
        speed_model.SpeedModel.from_json(json.dumps({"terms": ["1"], "coefficients": [1]}).encode())


@pytest.mark.parametrize(("features", "message"), [
    (None, "features: expected an object"),
    ({"hour": 1, "occupancy": 0.1, "flow": 3}, "features.rain: expected a number"),
    ({"hour": 1, "occupancy": True, "flow": 3, "rain": 0}, "features.occupancy: expected a number"),
    ({"hour": 1, "occupancy": 0.1, "flow": float("nan"), "rain": 0},
     "features.flow: expected a finite"),
    ({"hour": 1, "occupancy": 0.1, "flow": 3, "rain": 0, "wind": 2}, "features.wind: unknown"),
])
def test_bad_features_name_the_field(features: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        check_features(features)


def test_the_inference_server_keeps_its_last_answers_newest_first() -> None:
    from http import HTTPStatus

    from dnabox.dna.service.inference import RECENT, Loaded, Serving

    serving = Serving(parse(GOOD, "x"))
    features = {"hour": 8, "occupancy": 0.3, "flow": 2400, "rain": 0}
    assert serving.predict({"features": features})[0] == HTTPStatus.SERVICE_UNAVAILABLE
    assert serving.recent()["recent"] == [], "no model: nothing answered"
    sensor = Sensor("end-a", "end-a-1", "traffic", seed=3)
    samples = [sensor.sample(i, 1_700_000_000.0 + i) for i in range(400)]
    fitted, _ = speed_model.train(samples)
    serving.swap(Loaded(fitted, 1, 0.0))
    serving.predict({"features": features})
    serving.swap(Loaded(fitted, 2, 0.0))
    for hour in range(RECENT + 5):
        status, answer = serving.predict({"features": {**features, "hour": hour % 24}})
        assert status == HTTPStatus.OK
    assert serving.predict({"features": {"hour": 1}})[0] == HTTPStatus.BAD_REQUEST
    recent = serving.recent()
    assert (recent["model"], recent["site"]) == ("speed", "edge-a")
    assert len(recent["recent"]) == RECENT, "bounded"
    newest = recent["recent"][0]
    assert newest["version"] == 2 and newest["prediction"] == answer["prediction"]
    assert newest["features"]["hour"] == float((RECENT + 4) % 24)
    assert [a["at"] for a in recent["recent"]] == sorted(
        (a["at"] for a in recent["recent"]), reverse=True)
