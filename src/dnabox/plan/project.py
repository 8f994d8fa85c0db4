"""Where the project's playbooks and templates live (the repo, or an installed copy)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPaths:
    root: Path

    @property
    def playbooks(self) -> Path:
        return self.root / "playbooks"

    @property
    def roles(self) -> Path:
        return self.playbooks / "roles"

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def site_playbook(self) -> Path:
        return self.playbooks / "site.yml"


def find_project(start: Path | None = None) -> ProjectPaths:
    """``$DNABOX_PROJECT``, else the nearest parent of the package holding playbooks/."""
    if env := os.environ.get("DNABOX_PROJECT"):
        return ProjectPaths(Path(env).resolve())
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "playbooks").is_dir() and (candidate / "templates").is_dir():
            return ProjectPaths(candidate)
    return ProjectPaths(Path.cwd())
