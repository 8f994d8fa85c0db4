"""An append-only journal of finished work units, so `dnabox up --resume` skips them.

One JSON object per line; a line is written only after its unit finished, and flushed
and fsynced, so a crash or Ctrl-C loses at most the unit that was running.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "journal.jsonl"

    def start_run(self, plan_id: str) -> str:
        run_id = uuid.uuid4().hex[:12]
        self._append({"event": "run_started", "run": run_id, "plan": plan_id})
        return run_id

    def unit_done(self, run_id: str, unit: str, status: str) -> None:
        self._append({"event": "unit", "run": run_id, "unit": unit, "status": status})

    def finish_run(self, run_id: str, ok: bool) -> None:
        self._append({"event": "run_finished", "run": run_id, "ok": ok})

    def resumable(self, plan_id: str) -> set[str]:
        """Units finished by the last run, if it was interrupted or failed and planned the
        same thing (a changed plan means the finished units may be stale)."""
        records = self._records()
        starts = [r for r in records if r.get("event") == "run_started"]
        if not starts:
            return set()
        last = starts[-1]
        run = last["run"]
        if last.get("plan") != plan_id or any(
            r.get("event") == "run_finished" and r.get("run") == run and r.get("ok")
            for r in records
        ):
            return set()
        return {r["unit"] for r in records if r.get("event") == "unit" and r.get("run") == run
                and r.get("status") in {"ok", "changed", "skipped"}}

    def _records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash
        return out

    def _append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record["at"] = time.time()
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
