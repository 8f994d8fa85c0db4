"""Read YAML while remembering where every value came from.

Validation errors must name the file, the line and the field, so the loader keeps
an index from each value's path (``("boxes", 3, "site")``) to its 1-based line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dnabox.errors import InventoryError, Problem

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceDoc:
    """A parsed YAML document plus the line of every path in it."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int:
        """The line of ``path``, or of its nearest ancestor that exists (a missing key)."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), 1)

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: PathKey) -> str:
    """``("boxes", 3, "site")`` -> ``boxes[3].site``; the form users see in errors."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def read_yaml(path: Path) -> SourceDoc:
    """Parse ``path``; raise InventoryError with the line for syntax errors and duplicate keys."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError([Problem(name, 0, "(file)", f"cannot read: {exc.strerror}")]) from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InventoryError([Problem(name, 1, "(document)", "the file is empty")])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise InventoryError([_syntax_problem(name, exc, len(text.splitlines()))]) from exc
    finally:
        loader.dispose()
    lines: dict[PathKey, int] = {}
    problems: list[Problem] = []
    _index(node, (), lines, problems, name)
    if problems:
        raise InventoryError(problems)
    return SourceDoc(name, data, lines)


def _syntax_problem(name: str, exc: yaml.MarkedYAMLError, last_line: int) -> Problem:
    """Locate a syntax error where the parser gave up, and say where the construct began."""
    mark = exc.problem_mark or exc.context_mark
    if mark is not None and mark.line + 1 > last_line and exc.context_mark is not None:
        # The parser ran off the end of the file (an unclosed quote or bracket): the
        # line that opened the construct is the one to edit.
        mark = exc.context_mark
    line = mark.line + 1 if mark else 1
    reason = exc.problem or "not valid YAML"
    if "'\\t'" in reason:
        reason += " (YAML indents with spaces, never tabs)"
    if exc.context and exc.context_mark is not None:
        start = exc.context_mark.line + 1
        reason += f" ({exc.context} " + (
            "on this line)" if start == line else f"that starts on line {start})"
        )
    return Problem(name, line, "(syntax)", f"invalid YAML: {reason}")


def _index(
    node: yaml.Node, path: PathKey, lines: dict[PathKey, int], problems: list[Problem], name: str
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                problems.append(
                    Problem(name, key_node.start_mark.line + 1, format_path(child),
                            "duplicate key: each key may appear once per mapping")
                )
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _index(value_node, child, lines, problems, name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*path, index), lines, problems, name)
