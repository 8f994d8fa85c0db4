"""What every command shares: the options of the CLI contract (docs/CLI.md), the session the
root builds, JSON output, and the error-to-exit-code mapping."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.globals import get_current_context

from dnabox.cli import envelope
from dnabox.errors import EXIT_CODES, EXIT_INTERRUPTED, DnaboxError, InventoryError
from dnabox.locations import Locations
from dnabox.plan.selection import Selection

if TYPE_CHECKING:
    from dnabox.inventory import Fleet

DEFAULT_INVENTORY = Path("inventory/lab.yaml")
INVENTORY_ENV = "DNABOX_INVENTORY"

InventoryOption = Annotated[
    Path,
    typer.Option("--inventory", "-i", help="Fleet description (YAML).", show_default=True,
                 envvar=INVENTORY_ENV),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON "
                                          "(schema dnabox/v1, docs/json/).")]

# The selectors of every command that touches boxes (plan.selection has the rules).
BoxOption = Annotated[list[str] | None, typer.Option(
    "--box", help="Only these boxes (repeatable, shell globs: 'edge-*').")]
SiteOption = Annotated[list[str] | None, typer.Option(
    "--site", help="Only boxes of these sites (repeatable, globs).")]
TierOption = Annotated[list[str] | None, typer.Option(
    "--tier", help="Only boxes of these tiers: core, edge, end (repeatable, globs).")]
ClusterOption = Annotated[list[str] | None, typer.Option(
    "--cluster", "-c", help="Only boxes of these clusters (repeatable, globs).")]
LimitOption = Annotated[str | None, typer.Option(
    "--limit", "-l", help="Ansible pattern over boxes and groups: 'site_edge_a:!edge-a-2', "
                          "'tier_edge:&cluster_edge', '~^edge-'.")]


def selection(box: list[str] | None, site: list[str] | None, tier: list[str] | None,
              cluster: list[str] | None, limit: str | None) -> Selection:
    return Selection(tuple(box or ()), tuple(site or ()), tuple(tier or ()),
                     tuple(cluster or ()), limit or "")


def exit_code_epilog() -> str:
    """The exit-code table, as every --help ends."""
    rows = "\n".join(f"{code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    return f"Exit codes (the same for every command; docs/CLI.md):\n{rows}"


@dataclass(frozen=True)
class Session:
    """What the CLI root decides once per invocation and every command reads."""

    locations: Locations
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose


def session(ctx: typer.Context) -> Session:
    """The root's :class:`Session`; a fresh one when a command runs without the root."""
    root = ctx.find_root()
    if not isinstance(root.obj, Session):
        root.obj = Session(Locations.discover())
    return root.obj


def locations(ctx: typer.Context) -> Locations:
    return session(ctx).locations


def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def command_name() -> str:
    """The running command as the JSON envelope names it: ``stack.config``, ``up``."""
    # Typer runs on its own copy of click, so its context stack, not the click package's.
    context = get_current_context(silent=True)
    names = []
    while context is not None and context.parent is not None:
        names.append(context.info_name or "")
        context = context.parent
    return ".".join(reversed(names)) or "dnabox"


PRINTED = "dnabox.json_printed"


def print_json(value: dict[str, Any]) -> None:
    """One versioned JSON document on stdout (see :mod:`dnabox.cli.envelope`)."""
    envelope.write(command_name(), value)
    context = get_current_context(silent=True)
    if context is not None:
        # A failure after the report was printed keeps stdout one document (the report).
        context.meta[PRINTED] = True


def _already_printed() -> bool:
    context = get_current_context(silent=True)
    return context is not None and bool(context.meta.get(PRINTED))


def error_document(exc: DnaboxError) -> dict[str, Any]:
    problems = [{"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                for p in getattr(exc, "problems", [])]
    return {"ok": False, "error": {"message": exc.message, "hint": exc.hint or None,
                                   "exit_code": exc.exit_code, "problems": problems}}


@contextmanager
def user_errors(json_output: bool = False) -> Iterator[None]:
    """Turn dnabox errors into a message and an exit code; never a traceback. Under --json
    the error is also a JSON document on stdout."""
    try:
        yield
    except InventoryError as exc:
        err = stderr()
        count = len(exc.problems)
        err.print(f"[red]error:[/] {count} problem{'s' if count != 1 else ''} in the inventory")
        for problem in exc.problems:
            # Never wrapped: editors and grep read `file:line: field:` from one line.
            err.print(f"  {problem}", markup=False, soft_wrap=True)
        err.print(f"  hint: {exc.hint}", markup=False)
        if json_output and not _already_printed():
            print_json(error_document(exc))
        raise typer.Exit(exc.exit_code) from None
    except DnaboxError as exc:
        err = stderr()
        # The message may quote what a user wrote (a path, a name): never read it as markup.
        err.print(f"[red]error:[/] {escape(exc.message)}", markup=True, highlight=False)
        if exc.hint:
            err.print(f"  hint: {exc.hint}", markup=False)
        if json_output and not _already_printed():
            print_json(error_document(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        stderr().print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def fleet_from(path: Path) -> Fleet:
    # deferred: the fleet model (pydantic) is ~0.4 s at every CLI start, --help included.
    from dnabox.inventory import load_fleet

    return load_fleet(path)


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run ``func`` inside :func:`user_errors` (JSON errors when --json)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with user_errors(bool(kwargs.get("json_output"))):
            return func(*args, **kwargs)

    return wrapper
