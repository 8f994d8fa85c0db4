"""Path fields of a fleet: found through the model's ``PathField`` marks, resolved once.

A fleet file is run from CI checkouts, other working directories and the connection
agent, so a relative ``ssh.key`` must mean the same file wherever the command starts:
the file next to the fleet description.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from dnabox.inventory.model import PathField
from dnabox.inventory.yaml_source import PathKey

M = TypeVar("M", bound=BaseModel)


def resolve_paths(model: M, base: Path) -> M:
    """``model`` with every path field absolute: ``~`` expanded, relative ones under ``base``."""
    update: dict[str, object] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, str) and _is_path(field.annotation):
            resolved = resolve(value, base)
            if resolved != value:
                update[name] = resolved
        elif isinstance(value, BaseModel):
            update[name] = resolve_paths(value, base)
        elif isinstance(value, list):
            update[name] = [resolve_paths(v, base) if isinstance(v, BaseModel) else v
                            for v in value]
        elif isinstance(value, dict):
            update[name] = {k: resolve_paths(v, base) if isinstance(v, BaseModel) else v
                            for k, v in value.items()}
    return model.model_copy(update=update) if update else model


def resolve(path: str, base: Path) -> str:
    return os.path.normpath(base / os.path.expanduser(path))


def path_fields(model: BaseModel, where: PathKey = ()) -> Iterator[tuple[PathKey, str, str]]:
    """Every path set in ``model``: its place, what it points to, and the path."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        here = (*where, name)
        mark = _mark(field.annotation)
        if isinstance(value, str) and mark is not None:
            yield here, mark.what, value
        elif isinstance(value, BaseModel):
            yield from path_fields(value, here)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from path_fields(item, (*here, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from path_fields(item, (*here, str(key)))


def _is_path(annotation: object) -> bool:
    return _mark(annotation) is not None


def _mark(annotation: object) -> PathField | None:
    """The PathField mark in ``annotation`` (looking inside ``X | None``), if any."""
    if typing.get_origin(annotation) is typing.Annotated:
        return next((m for m in typing.get_args(annotation)[1:] if isinstance(m, PathField)),
                    None)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next((m for a in typing.get_args(annotation) if (m := _mark(a)) is not None),
                    None)
    return None
