"""What `dnabox up` is asked to do: apart from the engine, so the CLI can name the choices
in its signature without loading the engine (SSH, Ansible, the plan) at every start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum


class Engine(StrEnum):
    """How roles run: ``auto`` takes the direct path where it can, ``ansible`` never."""

    AUTO = "auto"
    ANSIBLE = "ansible"


@dataclass(frozen=True)
class UpOptions:
    max_parallel: int = 16
    per_site: int = 8
    forks: int = 50
    resume: bool = False
    only_boxes: frozenset[str] = frozenset()
    # auto: the direct path where a box's pending roles allow it, Ansible elsewhere.
    engine: Engine = Engine.AUTO
    ansible_slots: int = field(default_factory=lambda: os.cpu_count() or 2)
