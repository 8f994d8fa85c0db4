"""The JSON config file of a service: the one home of its keys.

dnabox renders it from the plan (``dnabox.plan.dna_services.render_config``); the service
reads it with ``load``. Errors name the file and the field, never a value that could be a
secret (passwords live in ``password_file``, never in this file).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ROLES = ("collector", "trainer", "inference")


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class ServiceConfig:
    role: str
    """collector | trainer | inference."""
    site: str
    box: str
    dataset: str
    nats_urls: tuple[str, ...]
    """The NATS servers to connect to (the site's leaf; the hub's members for the trainer)."""
    domain: str
    """The JetStream domain the service talks to: hub for the trainer, the site otherwise."""
    user: str = ""
    password_file: str = ""
    model: str = ""
    subject: str = ""
    """Collector: where its samples go, dna.<dataset>.<site>.<box>."""
    pond_stream: str = ""
    lake_stream: str = ""
    catalogue_bucket: str = "dna_catalogue"
    models_bucket: str = "dna_models"
    models_meta_bucket: str = "dna_models_meta"
    bind: str = ""
    """Inference: the data-plane address:port the HTTP server listens on."""
    registry_origin: str = ""
    """Inference: the JetStream domain of the registry the site's mirror copies (the hub's),
    read directly while the mirror lags behind it; empty: the mirror only."""
    inbox_prefix: str = ""
    """The prefix of the connection's reply subjects; empty: nats-py's ``_INBOX``. The
    hub's answers reach an edge's inference server only on its site's own prefix."""
    retrain_every_samples: int = 0
    retrain_every_seconds: float = 0.0
    state_dir: str = "/var/lib/dnabox/dna/state"
    rate: float = 0.0
    """Collector: samples per second; 0 publishes as fast as the pond acknowledges."""
    schema_version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    """Reserved for keys a newer dnabox adds; carried, never interpreted."""

    def to_json(self) -> str:
        data = asdict(self)
        data["nats_urls"] = list(self.nats_urls)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def password(self) -> str | None:
        if not self.password_file:
            return None
        try:
            return Path(self.password_file).read_text().strip()
        except OSError as exc:
            # The path is not secret; the file's content is never shown.
            raise ConfigError(f"password_file {self.password_file}: {exc.strerror}") from exc

    def bind_address(self) -> tuple[str, int]:
        host, _, port = self.bind.rpartition(":")
        return host or "0.0.0.0", int(port)


_REQUIRED = {
    "collector": ("subject", "pond_stream"),
    "trainer": ("model", "lake_stream"),
    "inference": ("model", "bind"),
}


def parse(data: object, source: str) -> ServiceConfig:
    """Check every key and type of ``data``; errors say ``source: field: why``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object")
    known = {f.name: f for f in fields(ServiceConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: unknown key")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        if name not in data:
            continue
        value = data[name]
        expected = _type_of(spec.type)
        if name == "nats_urls":
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                raise ConfigError(f"{source}: nats_urls: expected a non-empty list of URLs")
            value = tuple(value)
        elif expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{source}: {name}: expected {expected.__name__}")
        values[name] = value
    for name in ("role", "site", "box", "dataset", "nats_urls", "domain"):
        if name not in values:
            raise ConfigError(f"{source}: {name}: required")
    role = values["role"]
    if role not in ROLES:
        raise ConfigError(f"{source}: role: expected one of {', '.join(ROLES)}")
    for name in _REQUIRED[role]:
        if not values.get(name):
            raise ConfigError(f"{source}: {name}: required for the {role}")
    config = ServiceConfig(**values)
    _check_ranges(config, source)
    return config


def _check_ranges(config: ServiceConfig, source: str) -> None:
    for name in ("retrain_every_samples", "retrain_every_seconds", "rate"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{source}: {name}: must not be negative")
    if config.role == "inference":
        host, _, port = config.bind.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"{source}: bind: expected address:port, e.g. 10.30.1.11:8480")


def _type_of(annotation: object) -> type:
    return {"str": str, "int": int, "float": float, "dict[str, Any]": dict,
            "tuple[str, ...]": tuple}[str(annotation)]


def load(path: str | Path) -> ServiceConfig:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    return parse(data, str(path))
