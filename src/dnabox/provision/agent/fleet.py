"""The connection agent's fleet and kept SSH connections, reloaded when the inventory changes.

A kept connection was verified against the host keys and SSH settings in force when it was
opened. So whenever the inventory or a known_hosts file changes in a way that touches a box
already connected, every kept connection is dropped and the next command reconnects under
the new rules: a key removed from known_hosts is refused at once, never honoured by an old
session. Adding boxes keeps the others' connections.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dnabox.adapters.ssh import ConnectionPool
from dnabox.errors import DnaboxError
from dnabox.inventory import Fleet, load_fleet
from dnabox.provision.agent.requests import Fallback
from dnabox.provision.fanout import FANOUT_RETRY


def _digest(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return ""


def trust_of(fleet: Fleet) -> dict[str, tuple[object, ...]]:
    """Per box, everything its connection was verified with: SSH settings, known_hosts."""
    digests: dict[str, str] = {}
    trust: dict[str, tuple[object, ...]] = {}
    for box in fleet.boxes:
        ssh = fleet.ssh_for(box)
        known_hosts = os.path.expanduser(ssh.known_hosts or "~/.ssh/known_hosts")
        if known_hosts not in digests:
            digests[known_hosts] = _digest(known_hosts)
        trust[box.name] = (ssh.host, ssh.port, ssh.user, ssh.key, ssh.host_key, known_hosts,
                           digests[known_hosts])
    return trust


@dataclass
class _PoolUse:
    pool: ConnectionPool
    trust: dict[str, tuple[object, ...]]
    users: int = 0
    retired: bool = False


@dataclass
class _Loaded:
    fleet: Fleet
    inventory: str
    digest: str


@dataclass
class FleetConnections:
    """The fleet named ``name`` as the inventory currently says, and its kept connections."""

    name: str
    _loaded: _Loaded | None = None
    _current: _PoolUse | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _retired_handshakes: int = 0

    def _fleet(self, inventory: str) -> Fleet:
        try:
            with open(inventory, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        except OSError as exc:
            raise Fallback(f"cannot read the inventory: {exc.strerror}") from None
        loaded = self._loaded
        if loaded and loaded.inventory == inventory and loaded.digest == digest:
            return loaded.fleet
        try:
            fleet = load_fleet(inventory)
        except DnaboxError:
            raise Fallback("the inventory does not validate") from None
        if fleet.name != self.name:
            raise Fallback(f"this agent serves fleet {self.name}, not {fleet.name}")
        self._loaded = _Loaded(fleet, inventory, digest)
        return fleet

    @contextmanager
    def lease(self, inventory: str) -> Iterator[tuple[Fleet, ConnectionPool]]:
        """The current fleet and pool; a pool replaced meanwhile closes when its last user ends."""
        with self._lock:
            fleet = self._fleet(inventory)
            use = self._pool_for(trust_of(fleet))
            use.users += 1
        try:
            yield fleet, use.pool
        finally:
            with self._lock:
                use.users -= 1
                if use.retired and use.users == 0:
                    use.pool.close()

    def _pool_for(self, trust: dict[str, tuple[object, ...]]) -> _PoolUse:
        current = self._current
        if current is not None and all(trust.get(box) == kept
                                       for box, kept in current.trust.items()):
            current.trust = trust  # only boxes were added: keep every connection
            return current
        if current is not None:
            self._retire(current)
        self._current = _PoolUse(ConnectionPool(retry=FANOUT_RETRY), trust)
        return self._current

    def _retire(self, use: _PoolUse) -> None:
        use.retired = True
        self._retired_handshakes += sum(c.handshakes for c in use.pool.connections())
        if use.users == 0:
            use.pool.close()

    def counts(self) -> dict[str, int]:
        """Open connections now, SSH handshakes since the agent started, and commands the
        boxes' current kept shells answered."""
        with self._lock:
            kept = self._current.pool.connections() if self._current else []
            return {"connections": sum(1 for c in kept if c.is_open),
                    "handshakes": self._retired_handshakes + sum(c.handshakes for c in kept),
                    "kept_shell_commands": sum(c.kept_shell_commands for c in kept)}

    def close(self) -> None:
        with self._lock:
            if self._current is not None:
                self._retire(self._current)
                self._current = None
