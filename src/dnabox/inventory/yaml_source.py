"""Read YAML while remembering where every value came from.

Validation errors must name the file, the line and the field, so the parsed document
keeps its node graph and answers the line of any value's path (``("boxes", 3, "site")``)
by walking it. The graph is walked, never expanded: a path through an alias or a merge
key (``<<: *box_template``) lands on the line where the value is written, an
overriding key on its own line.

The file is hostile until read: its bytes must be UTF-8 text (``file_text``), its
nesting and alias expansion are bounded (``yaml_bounds``), and a private key pasted
anywhere in it is refused before any value can be echoed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dnabox.errors import InventoryError, Problem
from dnabox.inventory.file_text import read_text
from dnabox.inventory.yaml_bounds import BadScalar, BoundedLoader, TooDeep, check_bounds
from dnabox.redact import key_material, shown

PathKey = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class SourceDoc:
    """A parsed YAML document plus its node graph, to find the line of every path in it."""

    file: str
    data: Any
    root: yaml.Node | None = None
    # Per mapping node, its keys -> (line of the key, value node); built on first use so
    # thousands of problems in a big mapping cost one pass over it, not one each.
    _keys: dict[int, dict[str, tuple[int, yaml.Node]]] = field(default_factory=dict)

    def has(self, path: PathKey) -> bool:
        return self._walk(path)[1] == len(path)

    def line_of(self, path: PathKey) -> int:
        """The line of ``path``, or of its nearest ancestor that exists (a missing key).

        A mapping entry's line is its key's line, a list item's line is where it starts.
        """
        return self._walk(path)[0]

    def _walk(self, path: PathKey) -> tuple[int, int]:
        """The line reached and how many parts of ``path`` were found."""
        node = self.root
        if node is None:
            return 1, 0
        line = node.start_mark.line + 1
        for depth, part in enumerate(path):
            found = self._child(node, part)
            if found is None:
                return line, depth
            line, node = found
        return line, len(path)

    def _child(self, node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode):
            keys = self._keys.get(id(node))
            if keys is None:
                # After construction the merge keys are flattened into the mapping, merged
                # entries first: the last entry with a key is the one the data holds.
                keys = {str(k.value): (k.start_mark.line + 1, v) for k, v in node.value
                        if isinstance(k, yaml.ScalarNode)}
                self._keys[id(node)] = keys
            return keys.get(str(part))
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and (
            0 <= part < len(node.value)
        ):
            item = node.value[part]
            return item.start_mark.line + 1, item
        return None

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: PathKey) -> str:
    """``("boxes", 3, "site")`` -> ``boxes[3].site``; the form users see in errors."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = shown(part, quote=False)
            out += f".{key}" if out else key
    return out or "(document)"


def read_yaml(path: Path) -> SourceDoc:
    """Parse ``path``; InventoryError with the line for every way the file can be unreadable:
    bytes that are not text, syntax errors, unbounded nesting or aliases, duplicate keys,
    private keys pasted into it."""
    name = str(path)
    text = read_text(path)
    try:
        return _parse(name, text)
    except (TooDeep, BadScalar) as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        field = "(nesting)" if isinstance(exc, TooDeep) else "(value)"
        raise InventoryError([Problem(name, line, field, str(exc.problem))]) from None
    except yaml.MarkedYAMLError as exc:
        raise InventoryError([_syntax_problem(name, exc, text)]) from None
    except yaml.reader.ReaderError as exc:
        raise InventoryError([_reader_problem(name, exc, text)]) from None
    except yaml.YAMLError as exc:  # any other parser complaint, never a traceback
        raise InventoryError([Problem(name, 1, "(syntax)", "invalid YAML: "
                                      + _quoted_safely(str(exc)))]) from None


def _parse(name: str, text: str) -> SourceDoc:
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InventoryError([Problem(name, 1, "(document)", "the file is empty")])
        overrun = check_bounds(node, loader.alias_uses)
        if overrun is not None:
            raise InventoryError([Problem(name, overrun.line, overrun.field, overrun.message)])
        problems = _structure_problems(node, name)
        if problems:
            raise InventoryError(problems)
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return SourceDoc(name, data, node)


def _structure_problems(root: yaml.Node, name: str) -> list[Problem]:
    """Duplicate keys and private keys, each distinct node looked at once."""
    problems: list[Problem] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            control = _CONTROL.search(str(node.value))
            if control:
                # Written as a YAML escape ("\e[31m"): it would reach terminals and logs.
                problems.append(Problem(
                    name, node.start_mark.line + 1, format_path(path),
                    f"holds control character U+{ord(control.group()):04X} (written as an "
                    "escape); a fleet file holds printable text only"))
            value = str(node.value)
            # The substrings first: this runs on every value of a 1,000-box fleet.
            private = ("PRIVATE KEY" in value or "PuTTY-User-Key-File" in value) and (
                key_material(value) or "")
            if private and ("PRIVATE KEY" in private or private == "PuTTY key"):
                problems.append(Problem(
                    name, node.start_mark.line + 1, format_path(path),
                    f"a private key ({shown(node.value)}) has no place in a fleet file: save "
                    "it in a file of its own, readable only by you, and give that file's "
                    "path (ssh.key is a path, never the key itself)"))
        elif isinstance(node, yaml.MappingNode):
            seen_keys: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                child = (*path, key)
                if key in seen_keys and key_node.tag != _MERGE_TAG:
                    problems.append(Problem(
                        name, key_node.start_mark.line + 1, format_path(child),
                        "duplicate key: each key may appear once per mapping"))
                seen_keys.add(key)
                stack += [(key_node, child), (value_node, child)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, i)) for i, item in enumerate(node.value)]
    return sorted(problems, key=lambda p: p.line)


def _syntax_problem(name: str, exc: yaml.MarkedYAMLError, text: str) -> Problem:
    """Locate a syntax error where its cause is, and say where the parser gave up."""
    mark = exc.problem_mark or exc.context_mark
    last_line = len(text.splitlines())
    line = mark.line + 1 if mark else 1
    reason = _quoted_safely(exc.problem or "not valid YAML")
    if "'\\t'" in reason:
        reason += " (YAML indents with spaces, never tabs)"
    opened = _open_quote_before(text, line)
    if opened is not None and opened < line:
        # The scanner read a quoted value across lines until some later quote closed it;
        # the parser trips over what follows. The missing quote is on the opening line.
        where = "the end of the file" if line > last_line else f"line {line}"
        return Problem(name, opened, "(syntax)",
                       f"invalid YAML: the quoted value that starts on this line runs on to "
                       f"{where}, where the parser stopped ({reason}); is its closing quote "
                       "missing?")
    if mark is not None and line > last_line and exc.context_mark is not None:
        # The parser ran off the end of the file (an unclosed bracket): the line that
        # opened the construct is the one to edit.
        line = exc.context_mark.line + 1
    if exc.context and exc.context_mark is not None:
        start = exc.context_mark.line + 1
        reason += f" ({exc.context} " + (
            "on this line)" if start == line else f"that starts on line {start})"
        )
    return Problem(name, line, "(syntax)", f"invalid YAML: {reason}")


def _open_quote_before(text: str, line: int) -> int | None:
    """The line where a quoted value that reaches ``line`` started, when it spans lines.

    The text is scanned again (tokens only) up to the error: quoted values that span
    lines are legal but rare in a fleet file, so one ending where the parser failed is
    the likeliest cause.
    """
    scanner = BoundedLoader(text)  # bounded too: brackets after the error are read ahead
    start: int | None = None
    try:
        while scanner.check_token():
            token = scanner.get_token()  # type: ignore[no-untyped-call]
            if token.start_mark.line + 1 > line:
                break
            if isinstance(token, yaml.ScalarToken) and token.style in ('"', "'"):
                first, last = token.start_mark.line + 1, token.end_mark.line + 1
                start = first if first < last and last >= line - 1 else None
    except yaml.MarkedYAMLError as exc:
        # The scanner itself failed: inside a quoted value that never closes?
        if exc.context_mark is not None and "quoted scalar" in str(exc.context):
            start = exc.context_mark.line + 1
    finally:
        scanner.dispose()
    return start


_QUOTED = re.compile(r"'([^']*)'")
# C0 controls but tab and line breaks, DEL and C1 controls: YAML refuses them written
# raw (see _reader_problem) but lets escapes like "\e" or "\x9b" produce them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _quoted_safely(reason: str) -> str:
    """PyYAML quotes the text it tripped over (a tag, a character); show it redacted."""

    def redacted(match: re.Match[str]) -> str:
        text = match.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"'{text}'" if shown(text, quote=False) == text else shown(text)

    reason = _QUOTED.sub(redacted, reason)
    if "could not determine a constructor" in reason:
        reason += "; a fleet file holds plain YAML values only (no language-specific tags)"
    return reason


def _reader_problem(name: str, exc: yaml.reader.ReaderError, text: str) -> Problem:
    line = text.count("\n", 0, exc.position) + 1
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return Problem(name, line, "(encoding)",
                   f"character U+{ord(char):04X} is a control character, which YAML does not "
                   "allow in a file; remove it")
