"""The D-N-A layer's NATS credentials: one password per user, kept in the fleet state dir.

Generated on first use (0600 files in a 0700 directory), never printed or logged; each box
receives only the secrets it needs (``dnabox.plan.dna.secret_files``), written 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from collections import defaultdict
from pathlib import Path

from dnabox.inventory.model import Fleet
from dnabox.plan.dna import DnaTopology, build_topology, secret_files


def credentials_dir(state: Path) -> Path:
    """Under the fleet's state dir (``Locations.ensure_fleet_state``)."""
    path = state / "dna" / "credentials"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _password(directory: Path, user: str) -> str:
    """The user's password, created once. Site shards ask at the same time on a fresh state
    dir: the value is written whole to a private temporary file, then linked into place,
    which only one writer can do; every caller then reads the one that won."""
    path = directory / f"{user}.password"
    if not path.exists():
        # mkstemp creates 0600: the secret is never readable by others, even briefly.
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".new-")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(24) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text(encoding="utf-8").strip()


def passwords(state: Path, topology: DnaTopology) -> dict[str, str]:
    """credential -> password for every password of the topology (created when missing):
    per site user, and the admin's per JetStream domain."""
    directory = credentials_dir(state)
    return {name: _password(directory, name) for name in topology.credentials}


def _existing_passwords(state: Path, topology: DnaTopology) -> dict[str, str] | None:
    """Like ``passwords`` but creating nothing: None when any is missing."""
    directory = state / "dna" / "credentials"
    found = {}
    for name in topology.credentials:
        path = directory / f"{name}.password"
        if not path.is_file():
            return None
        found[name] = path.read_text(encoding="utf-8").strip()
    return found


def box_secrets(fleet: Fleet, state: Path, boxes: list[str]) -> dict[str, dict[str, str]]:
    """box -> {path: content} of the D-N-A secrets of each of ``boxes`` that has some."""
    topology = build_topology(fleet)
    if topology is None:
        return {}
    known = passwords(state, topology)
    found = {box: secret_files(topology, box, known) for box in boxes}
    return {box: files for box, files in found.items() if files}


# The digest stands in for credentials a plan made before they exist: `up` creates them, so
# the role is due on every box that will receive them.
NOT_CREATED = "not created yet"


def secret_digests(fleet: Fleet, state: Path, *, create: bool) -> dict[str, dict[str, str]]:
    """box -> {"dna": digest of the box's D-N-A secrets}, for ``plan_fleet``.

    The digest is SHA-256 over the box's secret files; each password is 144 random bits, so
    the digest (stored on the box inside the role's fingerprint) reveals nothing of them.
    ``create``: make missing credentials (``up``), or read only (``plan``, ``status``).
    """
    topology = build_topology(fleet)
    if topology is None:
        return {}
    known = passwords(state, topology) if create else _existing_passwords(state, topology)
    digests: dict[str, dict[str, str]] = {}
    for box in fleet.boxes:
        files = secret_files(topology, box.name, known or defaultdict(str))
        if not files:
            continue
        if known is None:
            digests[box.name] = {"dna": NOT_CREATED}
            continue
        digest = hashlib.sha256()
        for path, content in sorted(files.items()):
            digest.update(f"{path}\0{content}\0".encode())
        digests[box.name] = {"dna": digest.hexdigest()}
    return digests
