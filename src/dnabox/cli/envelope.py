"""The versioned envelope of every JSON document dnabox prints (standard library only).

Every ``--json`` output is one object (or one object per line for event streams) carrying
``"schema": "dnabox/v1"`` and ``"command"`` (``inventory.validate``, ``up``, ...); the fields
of each command are described by docs/json/dnabox-v1.schema.json. Additive changes keep the
version; a field removed or changing meaning makes it ``dnabox/v2``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

SCHEMA = "dnabox/v1"


def document(command: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA, "command": command, **payload}


def write(command: str, payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document(command, payload), default=str) + "\n")
    sys.stdout.flush()
