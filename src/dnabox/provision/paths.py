"""Where dnabox keeps a fleet's controller-side state (journal, lock, ansible runs)."""

from __future__ import annotations

import os
from pathlib import Path

from dnabox.inventory.model import Fleet


def state_dir(fleet: Fleet) -> Path:
    """``$DNABOX_STATE_DIR/<fleet>`` or ``./.dnabox/<fleet>``; created 0700 (it holds runs)."""
    base = Path(os.environ.get("DNABOX_STATE_DIR", ".dnabox"))
    path = (base / fleet.name).resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
