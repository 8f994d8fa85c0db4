"""Render the provisioner's event stream: progress bars per site, or JSON lines."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from dnabox.cli import envelope
from dnabox.cli.common import command_name
from dnabox.provision.events import Event

FINAL = {"ok", "changed", "skipped", "failed", "blocked"}
STYLE = {"ok": "green", "changed": "yellow", "skipped": "dim", "failed": "red",
         "blocked": "red", "retry": "magenta"}


class JsonLines:
    """``--json``: one event per line on stdout, for scripts (schema dnabox/v1)."""

    def __init__(self, command: str | None = None) -> None:
        # Named now: events arrive on worker threads, where no click context is current.
        self.command = command or command_name()

    def __call__(self, event: Event) -> None:
        envelope.write(self.command, event.as_json())

    def __enter__(self) -> JsonLines:
        return self

    def __exit__(self, *_: object) -> None:
        return None


class SiteProgress:
    """A bar per site (units done / units of the site) plus a line per notable event."""

    def __init__(self, console: Console, verbosity: int = 0) -> None:
        self.console = console
        # -v: every task line too; -q: no bars and no notes, only what failed.
        self.verbosity = verbosity
        self.progress = Progress(
            TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=console,
            transient=False, disable=verbosity < 0,
        )
        self.tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def _bar(self, site: str) -> TaskID:
        name = site or "fleet"
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=0, last="")
        return self.tasks[name]

    def __call__(self, event: Event) -> None:
        with self._lock:
            if event.kind == "run" and event.status == "started":
                totals: dict[str, int] = {}
                for unit in event.data.get("units", []):
                    totals[unit["site"]] = totals.get(unit["site"], 0) + 1
                for site, total in totals.items():
                    self.progress.update(self._bar(site), total=total)
                return
            if event.kind == "unit" and event.status in FINAL:
                bar = self._bar(event.site)
                self.progress.update(bar, advance=1, last=f"{event.unit} {event.status}")
                if event.status in {"failed", "blocked"}:
                    self.console.print(f"[red]{event.unit}: {event.status}[/] {event.message}",
                                       markup=True, highlight=False)
            elif event.kind == "box" and event.status in {"info", "retry"} and (
                    self.verbosity >= 0):
                style = STYLE.get(event.status, "")
                text = f"  {event.box}: {event.message}"
                self.console.print(f"[{style}]{text}[/]" if style else text, highlight=False)
            elif event.kind == "task" and event.status == "failed":
                self.console.print(f"[red]  {event.box}: {event.message}[/]", highlight=False)
            elif event.kind == "task" and self.verbosity > 0:
                self.console.print(f"[dim]  {event.box}: {event.message}[/]", highlight=False)

    def __enter__(self) -> SiteProgress:
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.stop()


def renderer_for(json_output: bool, verbosity: int, console: Console) -> JsonLines | SiteProgress:
    """--json: JSON lines; else bars and notes at the session's verbosity (-q / -v)."""
    return JsonLines() if json_output else SiteProgress(console, verbosity)
