"""One typed event stream for every long operation; the CLI renders it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["started", "ok", "changed", "skipped", "failed", "blocked", "info", "retry"]
UnitStatus = Literal["ok", "changed", "skipped", "failed", "blocked"]


@dataclass(frozen=True)
class Event:
    kind: str  # run | unit | box | task | output
    status: Status
    unit: str = ""
    site: str = ""
    box: str = ""
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", {}, None)}


EventSink = Callable[[Event], None]
