"""templates/files.yml as plain data: the table of every config file a box receives.

The inventory hands it to the roles as ``dnabox_managed_files``; the planner reads the same
table (``dnabox.plan.desired``) to render and fingerprint the same files in Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TABLE = "files.yml"
FIELDS = ("role", "src", "dest", "mode")


def read_table(templates: Path) -> list[dict[str, str]]:
    """Entries as ``{role, src, dest, mode}`` dicts, in file order; [] when there is no table."""
    table = templates / TABLE
    if not table.exists():
        return []
    loaded: Any = yaml.safe_load(table.read_text(encoding="utf-8")) or []
    entries = []
    for entry in loaded:
        # The mode stays a string: YAML would read 0644 as an octal int, Ansible wants "0644".
        entries.append({"role": str(entry["role"]), "src": str(entry["src"]),
                        "dest": str(entry["dest"]), "mode": str(entry.get("mode", "0644"))})
    return entries
