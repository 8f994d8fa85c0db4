"""Small file helpers that are careful about mounts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dnabox.lab.run import run


def mounts_under(path: Path, mountinfo: str | None = None) -> list[Path]:
    """Mount points at or below ``path`` in this mount namespace, deepest first."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    found = []
    for line in text.splitlines():
        point = Path(line.split()[4].replace("\\040", " "))
        if point == path or point.is_relative_to(path):
            found.append(point)
    return sorted(found, key=lambda p: -len(p.parts))


def remove_tree(path: Path) -> None:
    """Remove a directory tree, unmounting first whatever a crash left mounted in it.

    Deleting through a leftover bind mount of /dev or /proc would damage the host.
    """
    for point in mounts_under(path):
        run(["umount", "--lazy", str(point)], check=False)
    if mounts_under(path):
        raise OSError(f"{path} still has mounts; refusing to delete it")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
