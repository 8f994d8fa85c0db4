"""Load a fleet file: YAML with line tracking -> typed model -> cross-checks."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dnabox.errors import InventoryError, Problem
from dnabox.inventory.checks import cross_check
from dnabox.inventory.model import TEXT_FORMATS, Fleet
from dnabox.inventory.paths import resolve_paths
from dnabox.inventory.yaml_source import SourceDoc, read_yaml
from dnabox.redact import shown

Loc = tuple[str | int, ...]


# A file can hold millions of mistakes (a list repeated by aliases, a generated file gone
# wrong); the first ones are what the reader can act on.
MAX_PROBLEMS = 100


def load_fleet(path: str | Path) -> Fleet:
    """Read and validate ``path``; raise InventoryError listing every problem with its line.

    Path fields (``ssh.key``, ``known_hosts``, ``bundle_dir``) come back absolute,
    resolved against the file's directory.
    """
    doc = read_yaml(Path(path))
    if not isinstance(doc.data, dict):
        raise InventoryError(
            [doc.problem((), "the top level must be a mapping (name, sites, boxes, ...)")]
        )
    try:
        fleet = Fleet.model_validate(_without_extensions(doc.data))
    except ValidationError as exc:
        raise InventoryError(_by_line(_from_pydantic(exc, doc))) from None
    problems = cross_check(fleet, doc)
    if problems:
        raise InventoryError(_by_line(problems))
    fleet = resolve_paths(fleet, Path(path).absolute().parent)
    fleet._source = str(path)
    return fleet


def _without_extensions(data: dict[object, object]) -> dict[object, object]:
    """Top-level ``x-...`` keys hold what the fleet does not read: anchors for box
    templates (``x-edge-box: &edge {...}``, merged with ``<<: *edge``), as in Compose."""
    return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}


def _by_line(problems: list[Problem]) -> list[Problem]:
    # Read top to bottom, the list matches the order in which the user fixes the file.
    ordered = sorted(problems, key=lambda p: p.line)
    if len(ordered) <= MAX_PROBLEMS:
        return ordered
    rest = ordered[MAX_PROBLEMS]
    return [*ordered[:MAX_PROBLEMS],
            Problem(rest.file, rest.line, "(more)",
                    f"{len(ordered) - MAX_PROBLEMS:,} more problems from this line on, not "
                    "listed; fix the ones above first")]


def _from_pydantic(exc: ValidationError, doc: SourceDoc) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if isinstance(part, int | str))
        loc = _trim_to_document(loc, doc, missing=err["type"] == "missing")
        problems.append(doc.problem(loc, _describe(err, loc)))
    return problems


def _trim_to_document(loc: Loc, doc: SourceDoc, missing: bool) -> Loc:
    """Cut the tags pydantic appends (``[key]``, union branches) so the path is what the
    user wrote; a missing key keeps its own name, so ``boxes[2].address`` is reported."""
    for cut in range(len(loc), 0, -1):
        if doc.has(loc[:cut]):
            return loc[: cut + 1] if missing and cut < len(loc) else loc[:cut]
    return loc


def _describe(err: ErrorDetails, loc: Loc) -> str:
    kind = str(err["type"])
    given = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        fmt = TEXT_FORMATS.get(str(ctx.get("pattern")))
        if fmt is None:
            message = f"must match the pattern {ctx.get('pattern')}"
        else:
            message = f"not a valid {fmt.label}: {fmt.rule} (e.g. {fmt.example})"
    elif kind == "string_type" and isinstance(given, int | float | bool):
        # YAML turned the value into a number or a boolean (yes, 0123, 1e3, 000...).
        message = "must be text; quote the value so YAML keeps it as text"
    elif kind == "int_type" and isinstance(given, str) and given.strip().isdigit():
        message = "must be a number, not text: remove the quotes"
    elif kind in _PLAIN:
        message = _PLAIN[kind]
    elif kind == "literal_error":
        message = str(err["msg"]).replace("Input should be", "must be one of")
    else:
        message = str(err["msg"]).replace("Input should be", "must be")
    if given is None:
        return f"{message} (the value is empty)"
    if isinstance(given, dict | list):
        return f"{message} (got a {'mapping' if isinstance(given, dict) else 'list'})"
    return f"{message} (got {shown(given)})"


_PLAIN = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "list_type": "must be a list ([a, b] or one '- item' per line)",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "ip_v4_address": "not a valid IPv4 address; write it like 10.1.2.3",
    "ip_v4_interface": "not a valid IPv4 address with prefix; write it like 10.1.2.3/24",
    "ip_v4_network": (
        "not a valid IPv4 network; write it like 10.1.2.0/24, with no bits set after the prefix"
    ),
}


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1]) if loc else ""
    valid = sorted(_model_at(loc[:-1]).model_fields) if loc else []
    close = difflib.get_close_matches(key, valid, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    extension = " (or x-anything at the top level, for templates)" if len(loc) == 1 else ""
    return (f"unknown key {shown(key)}; {guess}valid keys here: {', '.join(valid)}"
            f"{extension}")


def _model_at(loc: Loc) -> type[BaseModel]:
    """The model class that validates the mapping at ``loc`` (walked from Fleet's types)."""
    model: type[BaseModel] = Fleet
    annotation: object = Fleet
    for part in loc:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            field = model.model_fields.get(str(part))
            if field is None:
                return model
            annotation = _unwrap(field.annotation)
        else:
            # A list item or a dict value: the element type is the last type argument.
            args = typing.get_args(annotation)
            annotation = _unwrap(args[-1]) if args else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return model


def _unwrap(annotation: object) -> object:
    """Drop ``Annotated`` and ``| None`` so only the shape (model, list, dict) is left."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is (
            typing.Union
        ):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = rest[0]
        else:
            return annotation
