"""Load a fleet file: YAML with line tracking -> typed model -> cross-checks."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from dnabox.errors import InventoryError, Problem
from dnabox.inventory.checks import cross_check
from dnabox.inventory.model import Fleet
from dnabox.inventory.yaml_source import SourceDoc, read_yaml


def load_fleet(path: str | Path) -> Fleet:
    """Read and validate ``path``; raise InventoryError listing every problem with its line."""
    doc = read_yaml(Path(path))
    if not isinstance(doc.data, dict):
        raise InventoryError(
            [doc.problem((), "the top level must be a mapping (name, sites, boxes, ...)")]
        )
    try:
        fleet = Fleet.model_validate(doc.data)
    except ValidationError as exc:
        raise InventoryError(_from_pydantic(exc, doc)) from None
    problems = cross_check(fleet, doc)
    if problems:
        raise InventoryError(problems)
    fleet._source = str(path)
    return fleet


def _from_pydantic(exc: ValidationError, doc: SourceDoc) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        # Pydantic appends the tag of a union/literal branch to the location; keep only
        # the parts that exist in the document so the path matches what the user wrote.
        loc = tuple(part for part in err["loc"] if isinstance(part, int | str))
        loc = _trim_to_document(loc, doc)
        problems.append(doc.problem(loc, _describe(err)))
    return problems


def _trim_to_document(loc: tuple[str | int, ...], doc: SourceDoc) -> tuple[str | int, ...]:
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in doc.lines:
            # Keep a missing key's own name in the path, so "boxes[2].address" is reported.
            return loc[: min(cut + 1, len(loc))]
    return loc


def _describe(err: ErrorDetails) -> str:
    kind = str(err["type"])
    given = err.get("input")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see docs/inventory.md for the valid keys)"
    if kind == "missing":
        return "required field is missing"
    message = str(err["msg"])
    if kind == "literal_error":
        message = message.replace("Input should be", "must be one of")
    if kind == "string_pattern_mismatch":
        message = "not a valid name: use lower-case letters, digits and '-' (DNS label)"
    if given is not None and not isinstance(given, dict | list):
        return f"{message} (got {given!r})"
    return message
