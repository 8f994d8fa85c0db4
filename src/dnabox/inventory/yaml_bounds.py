"""Bounds on what a YAML document may cost to read: nesting depth and alias expansion.

YAML lets a few lines stand for an unbounded amount of data: aliases of aliases (the
"billion laughs"), an alias inside the value it names (a cycle), thousands of nested
brackets (PyYAML's composer recurses once per level). Every later stage (pydantic, the
line index, the checks) walks the data as if aliases were copies, so the bounds are
checked on the composed node graph, before anything expands it; the checks themselves
cost time linear in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import AliasEvent

# A fleet nests about 6 levels (boxes[i].interfaces.D.address); 64 is far beyond any
# fleet and far below Python's recursion limit (the composer uses ~3 frames per level).
MAX_DEPTH = 64
# Aliases and merge keys may expand a document to this many values (and characters of
# text), or to EXPANSION_RATIO times what is written in it, whichever is more: box
# templates stay cheap, a bomb is refused before it expands. 100,000 values validate in
# about a second.
MAX_EXPANDED = 100_000
MAX_EXPANDED_CHARS = 10_000_000
EXPANSION_RATIO = 10


class TooDeep(yaml.MarkedYAMLError):
    """A document nests deeper than MAX_DEPTH."""


class BadScalar(yaml.MarkedYAMLError):
    """A value YAML resolved to a date or a number that cannot be one."""


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting bound and readable errors for odd scalars.

    The pure-Python loader on purpose: libyaml's composer (CSafeLoader) recurses in C
    with no depth limit, so deep nesting would crash the process instead of raising.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0
        # Where each anchored node is used through an alias: node id -> (anchor, line).
        self.alias_uses: dict[int, list[tuple[str, int]]] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)
            self.alias_uses.setdefault(id(node), []).append(
                (str(event.anchor), event.start_mark.line + 1))
            return node
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise TooDeep(problem=f"values nest more than {MAX_DEPTH} levels deep here; "
                                      "a fleet needs about 6", problem_mark=event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's name)
        # The scanner reads ahead through every '[' or '{' that may start a key, before
        # the composer sees the first one: bound it here too, or a megabyte of brackets
        # is scanned whole.
        if self.flow_level >= MAX_DEPTH:
            raise TooDeep(problem=f"values nest more than {MAX_DEPTH} levels deep here; "
                                  "a fleet needs about 6",
                          problem_mark=self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def flatten_mapping(self, node: Any) -> None:
        """Merge keys as the YAML merge spec says, whatever PyYAML's version does: keys
        written in the mapping win, then earlier merged mappings over later ones.

        The merged pairs go first and the winners last (a dict keeps the last value for a
        key), which is also the order ``SourceDoc`` reads lines in.
        """
        merged: list[tuple[Any, Any]] = []
        own: list[tuple[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.tag == "tag:yaml.org,2002:value":
                    key_node.tag = "tag:yaml.org,2002:str"
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [
                value_node]
            for source in reversed(sources):
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"a merge key (<<) takes a mapping or a list of mappings, not a "
                        f"{source.id}", source.start_mark)
                self.flatten_mapping(source)
                merged.extend(source.value)
        node.value = merged + own

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # Scalars YAML resolves implicitly can still fail to convert: a date that does not
        # exist (2024-13-45), an integer of thousands of digits. Say which value it is.
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            if not isinstance(node, yaml.ScalarNode):
                raise
            what = "date or time" if node.tag.endswith(":timestamp") else "number"
            hint = str(exc) if what != "number" else "too long to be one"
            raise BadScalar(problem=f"YAML reads this value as a {what}, but it is not a valid "
                                    f"one ({hint}); quote it to keep it as text",
                            problem_mark=node.start_mark) from None


@dataclass(frozen=True)
class Overrun:
    """Where a bound is broken: the line and what to say about it."""

    line: int
    field: str
    message: str


@dataclass(frozen=True)
class _Measure:
    """One kind of size a value expands to, and its bound."""

    unit: str
    floor: int


# Values bound the work of every stage; characters bound what `inventory show --json`
# prints and what is kept in memory (one long text aliased a thousand times).
_VALUES = _Measure("values", MAX_EXPANDED)
_CHARACTERS = _Measure("characters of text", MAX_EXPANDED_CHARS)
_CAP = 10**15  # sizes are capped so a bomb's astronomic count stays a small integer


@dataclass
class _Walk:
    values: dict[int, int] = field(default_factory=dict)
    chars: dict[int, int] = field(default_factory=dict)
    depths: dict[int, int] = field(default_factory=dict)
    finished: list[yaml.Node] = field(default_factory=list)


def check_bounds(root: yaml.Node, alias_uses: dict[int, list[tuple[str, int]]]) -> Overrun | None:
    """The first bound ``root`` breaks (cycle, depth through aliases, expansion), or None.

    An iterative depth-first walk over distinct nodes, remembering each node's expanded
    size and depth, so shared nodes are measured once however often they are used.
    """
    if not alias_uses:
        # Without aliases every node is reached once: no cycle, no expansion, and the
        # depth is the written one, which the scanner and the composer bounded already.
        return None
    walk = _Walk()
    on_path: set[int] = set()  # the nodes from the root to the one being walked
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            on_path.discard(id(node))
            overrun = _measure(node, walk)
            if overrun is not None:
                return overrun
            continue
        if id(node) in walk.values:
            continue  # a shared node, measured already
        on_path.add(id(node))
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                return _cycle(child, alias_uses)
            if id(child) not in walk.values:
                stack.append((child, False))
    text = sum(len(n.value) for n in walk.finished if isinstance(n, yaml.ScalarNode))
    for measure, sizes, written in ((_VALUES, walk.values, len(walk.finished)),
                                    (_CHARACTERS, walk.chars, text)):
        limit = max(measure.floor, EXPANSION_RATIO * written)
        # The first node finished past the limit is the smallest: its line is the bomb's.
        for node in walk.finished:
            if sizes[id(node)] > limit:
                return _too_big(node, node is root, measure, sizes, limit, written, alias_uses)
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(node: yaml.Node, walk: _Walk) -> Overrun | None:
    children = _children(node)
    key = id(node)
    walk.values[key] = min(_CAP, 1 + sum(walk.values[id(c)] for c in children))
    own = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
    walk.chars[key] = min(_CAP, own + sum(walk.chars[id(c)] for c in children))
    walk.depths[key] = 1 + max((walk.depths[id(c)] for c in children), default=0)
    walk.finished.append(node)
    if walk.depths[key] > MAX_DEPTH:
        return Overrun(node.start_mark.line + 1, "(nesting)",
                       f"through aliases, values nest more than {MAX_DEPTH} levels deep here; "
                       "a fleet needs about 6")
    return None


def _too_big(node: yaml.Node, is_root: bool, measure: _Measure, sizes: dict[int, int],
             limit: int, written: int, alias_uses: dict[int, list[tuple[str, int]]]) -> Overrun:
    size = sizes[id(node)]
    amount = f"more than {_CAP:,}" if size >= _CAP else f"{size:,}"
    what = "the document" if is_root else "this value"
    line = node.start_mark.line + 1
    # The anchor whose aliases add the most is the one to look at.
    inside = alias_uses.keys() if is_root else {id(c) for c in _children(node)}
    weights = {key: sizes[key] * len(alias_uses[key]) for key in inside
               if key in sizes and key in alias_uses}
    source = ""
    if weights:
        top = max(weights, key=lambda key: weights[key])
        anchor, first_use = alias_uses[top][0]
        source = (f"; most of it is *{anchor} ({sizes[top]:,} {measure.unit}, used "
                  f"{len(alias_uses[top]):,} times, first on line {first_use})")
        if is_root:
            line = first_use
    return Overrun(
        line, "(aliases)",
        f"aliases and merge keys expand {what} to {amount} {measure.unit}, from "
        f"{written:,} written in the file; at most {limit:,} are read{source}",
    )


def _cycle(node: yaml.Node, alias_uses: dict[int, list[tuple[str, int]]]) -> Overrun:
    start, end = node.start_mark.line + 1, node.end_mark.line + 1
    uses = alias_uses.get(id(node), [])
    inside = [(anchor, line) for anchor, line in uses if start <= line <= end]
    anchor, line = (inside or uses or [("?", start)])[0]
    return Overrun(line, "(aliases)",
                   f"alias *{anchor} is used inside the value it names (anchored on line "
                   f"{start}): a fleet cannot contain itself")
