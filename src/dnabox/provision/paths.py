"""Where dnabox keeps a fleet's controller-side state (journal, lock, ansible runs)."""

from __future__ import annotations

from pathlib import Path

from dnabox.inventory.model import Fleet
from dnabox.provision.agent_protocol import state_dir_for


def state_dir(fleet: Fleet) -> Path:
    """``$DNABOX_STATE_DIR/<fleet>`` or ``./.dnabox/<fleet>``; created 0700 (it holds runs).

    The rule lives in :func:`state_dir_for` so the fast exec client finds the agent's socket
    without loading the inventory model.
    """
    path = Path(state_dir_for(fleet.name))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
