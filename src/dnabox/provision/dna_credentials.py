"""The D-N-A layer's NATS credentials: one password per user, kept in the fleet state dir.

Generated on first use (0600 files in a 0700 directory), never printed or logged; each box
receives only the secrets it needs (``dnabox.plan.dna.secret_files``), written 0600.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from dnabox.inventory.model import Fleet
from dnabox.plan.dna import ADMIN_USER, DnaTopology, build_topology, secret_files


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
    """user -> password for every NATS user of the topology (created when missing)."""
    directory = credentials_dir(state)
    return {user: _password(directory, user) for user in (*topology.users, ADMIN_USER)}


def box_secrets(fleet: Fleet, state: Path, boxes: list[str]) -> dict[str, dict[str, str]]:
    """box -> {path: content} of the D-N-A secrets of each of ``boxes`` that has some."""
    topology = build_topology(fleet)
    if topology is None:
        return {}
    known = passwords(state, topology)
    found = {box: secret_files(topology, box, known) for box in boxes}
    return {box: files for box, files in found.items() if files}
