"""What every command group shares: option types, output, and error-to-exit-code mapping."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from dnabox.errors import DnaboxError, InventoryError
from dnabox.inventory import Fleet, load_fleet
from dnabox.locations import Locations

DEFAULT_INVENTORY = Path("inventory/lab.yaml")
INVENTORY_ENV = "DNABOX_INVENTORY"

InventoryOption = Annotated[
    Path,
    typer.Option("--inventory", "-i", help="Fleet description (YAML).", show_default=True,
                 envvar=INVENTORY_ENV),
]


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
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn dnabox errors into a message and an exit code; never a traceback."""
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
        raise typer.Exit(exc.exit_code) from None
    except DnaboxError as exc:
        err = stderr()
        # The message may quote what a user wrote (a path, a name): never read it as markup.
        err.print(f"[red]error:[/] {escape(exc.message)}", markup=True, highlight=False)
        if exc.hint:
            err.print(f"  hint: {exc.hint}", markup=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        stderr().print("interrupted")
        raise typer.Exit(130) from None


def fleet_from(path: Path) -> Fleet:
    return load_fleet(path)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=None, sort_keys=False, default=str) + "\n")


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run ``func`` inside :func:`user_errors`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with user_errors():
            return func(*args, **kwargs)

    return wrapper
