"""NATS plumbing shared by the services: connecting, the model registry and the catalogue.

The registry is read with plain stream reads (last message by subject, next message by
subject) rather than nats-py's ObjectStore/KeyValue helpers: those find streams by subject,
and the read-only mirror of the registry at an edge site has no subjects of its own. The same
reader therefore works on the hub's buckets and on every edge's mirror.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import DEFAULT_INBOX_PREFIX, Client
from nats.js import JetStreamContext
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
    ObjectNotFoundError,
)
from nats.js.object_store import ObjectStore

from dnabox.dna.service.config import ServiceConfig

log = logging.getLogger("dnabox.dna")


async def connect(config: ServiceConfig, name: str) -> tuple[Client, JetStreamContext]:
    """Connect to the site's NATS server, retrying until it answers (it may start later)."""
    delay = 0.2
    while True:
        try:
            client = await nats.connect(
                servers=list(config.nats_urls), name=name, user=config.user or None,
                password=config.password(), connect_timeout=2, reconnect_time_wait=1,
                max_reconnect_attempts=-1, allow_reconnect=True,
                inbox_prefix=config.inbox_prefix or DEFAULT_INBOX_PREFIX,
                error_cb=_log_error, disconnected_cb=_note("disconnected"),
                reconnected_cb=_note("reconnected"))
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            # The URL names a server, never a credential.
            log.warning("cannot connect to %s: %s; retrying", ",".join(config.nats_urls),
                        type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        return client, client.jetstream(domain=config.domain or None, timeout=5)


async def _log_error(exc: Exception) -> None:
    log.warning("nats: %s", type(exc).__name__)


def _note(what: str) -> Callable[[], Awaitable[None]]:
    async def callback() -> None:
        log.info("nats %s", what)
    return callback


def object_stream(bucket: str) -> str:
    return f"OBJ_{bucket}"


def kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


def object_name(model: str, version: int) -> str:
    return f"{model}/v{version}"


@dataclass(frozen=True)
class ModelEntry:
    """What the registry's meta bucket says about a model's newest version."""

    model: str
    version: int
    meta: dict[str, Any]


class RegistryReader:
    """Reads the registry from the hub's buckets or from an edge's mirror of them."""

    def __init__(self, js: JetStreamContext, models_bucket: str, meta_bucket: str) -> None:
        self.js, self.models_bucket, self.meta_bucket = js, models_bucket, meta_bucket

    def meta_subject(self, model: str) -> str:
        return f"$KV.{self.meta_bucket}.{model}"

    async def latest(self, model: str) -> ModelEntry | None:
        try:
            msg = await self.js.get_last_msg(kv_stream(self.meta_bucket), self.meta_subject(model))
        except NotFoundError:
            return None
        if (msg.headers or {}).get("KV-Operation") in {"DEL", "PURGE"} or not msg.data:
            return None
        meta = json.loads(msg.data)
        return ModelEntry(model, int(meta["version"]), meta)

    async def read_object(self, name: str) -> bytes:
        """The object's bytes, checked against the digest its meta records."""
        stream = object_stream(self.models_bucket)
        encoded = base64.urlsafe_b64encode(name.encode()).decode()
        msg = await self.js.get_last_msg(stream, f"$O.{self.models_bucket}.M.{encoded}")
        info = json.loads(msg.data or b"{}")
        if info.get("deleted"):
            raise NotFoundError
        subject = f"$O.{self.models_bucket}.C.{info['nuid']}"
        data, seq = bytearray(), 1
        for _ in range(int(info.get("chunks", 0))):
            chunk = await self.js.get_msg(stream, seq=seq, subject=subject, next=True)
            data += chunk.data or b""
            seq = (chunk.seq or seq) + 1
        digest = "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
        if info.get("digest") and info["digest"].upper() != digest.upper():
            raise ValueError(f"object {name}: digest mismatch")
        return bytes(data)


class VersionTaken(Exception):
    """Another writer published the version this trainer allocated."""


async def publish_model(js: JetStreamContext, models_bucket: str, meta_bucket: str,
                        model: str, body: Callable[[int], tuple[bytes, dict[str, Any]]]) -> int:
    """Publish the next version of ``model``: the object first, then its meta.

    ``body(version)`` returns the object's bytes and the meta value. Readers follow the meta
    key, so they never see a version whose object is not stored yet. One trainer per model
    writes (``dnabox dna train`` asks the running trainer rather than starting a second one);
    the meta key is still written with a compare-and-set on its revision, and an object name
    already taken is skipped, so a second writer fails loudly instead of overwriting.
    """
    store = await js.object_store(models_bucket)
    kv = await js.key_value(meta_bucket)
    try:
        entry = await kv.get(model)
        revision: int | None = entry.revision
        version = int(json.loads(entry.value or b"{}").get("version", 0)) + 1
    except KeyNotFoundError:
        revision, version = None, 1
    while await _object_exists(store, object_name(model, version)):
        version += 1  # left by a trainer that died between object and meta
    blob, meta = body(version)
    name = object_name(model, version)
    await store.put(name, blob)
    value = json.dumps({**meta, "model": model, "object": name, "version": version}).encode()
    try:
        if revision is None:
            await kv.create(model, value)
        else:
            await kv.update(model, value, last=revision)
    except (KeyWrongLastSequenceError, BadRequestError) as exc:
        raise VersionTaken(f"{model}: another writer changed the registry meanwhile") from exc
    return version


async def _object_exists(store: ObjectStore, name: str) -> bool:
    try:
        await store.get_info(name)
    except ObjectNotFoundError:
        return False
    return True


def now() -> float:
    return time.time()
