"""Which boxes a command works on: the same selectors for every command that touches boxes.

``--box``, ``--site``, ``--tier`` and ``--cluster`` are repeatable and take shell-style globs
(``--box 'edge-*'``); values of one selector are alternatives, different selectors must all
hold. ``--limit`` takes Ansible's pattern syntax for people who think in it: terms separated
by ``,`` or ``:``, each a box or group name (glob, or ``~regex``), ``&term`` to intersect,
``!term`` to exclude. Groups are those of the rendered Ansible inventory: ``all``,
``tier_<tier>``, ``site_<site>``, ``cluster_<cluster>``, ``role_control_plane``, ``role_worker``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from dnabox.errors import DnaboxError

if TYPE_CHECKING:
    from dnabox.inventory.model import Box, Fleet

HINT = "`dnabox inventory show -i FILE` lists boxes, sites, tiers and clusters"
TIERS = ("core", "edge", "end")


class NoMatch(DnaboxError):
    """A selector names nothing in the fleet (a usage error: nothing was touched)."""


@dataclass(frozen=True)
class Selection:
    boxes: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    limit: str = ""

    @property
    def everything(self) -> bool:
        return not (self.boxes or self.sites or self.tiers or self.clusters or self.limit)


def _matching(patterns: Sequence[str], names: Sequence[str], what: str) -> set[str]:
    """Names matched by any pattern; a pattern matching nothing is an error naming it."""
    chosen: set[str] = set()
    for pattern in patterns:
        hits = {n for n in names if fnmatchcase(n, pattern)}
        if not hits:
            raise NoMatch(f"--{what} {pattern}: no {what} of that name in the fleet", hint=HINT)
        chosen |= hits
    return chosen


def _group_name(kind: str, name: str) -> str:
    return f"{kind}_{name.replace('-', '_')}"


def groups_of(fleet: Fleet, box: Box) -> set[str]:
    """The Ansible groups ``box`` belongs to (as dnabox renders them)."""
    groups = {"all", _group_name("tier", fleet.tier_of(box)), _group_name("site", box.site)}
    cluster = fleet.cluster_of(box.name)
    if cluster is not None:
        groups.add(_group_name("cluster", cluster.name))
        groups.add("role_control_plane" if box.name in cluster.control_planes
                   else "role_worker")
    return groups


def _term_matches(term: str, box: Box, groups: set[str]) -> bool:
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise DnaboxError(f"--limit {term}: not a regular expression: {exc}",
                              hint="Ansible patterns: name, glob, ~regex, &and, !not") from None
        return any(regex.search(n) for n in (box.name, *groups))
    return any(fnmatchcase(n, term) for n in (box.name, *groups))


def limit_boxes(fleet: Fleet, pattern: str) -> set[str]:
    """Box names an Ansible ``--limit`` pattern selects."""
    terms = [t.strip() for t in re.split(r"[,:]", pattern) if t.strip()]
    if not terms:
        raise DnaboxError("--limit is empty", hint="e.g. --limit 'site_edge_a:!edge-a-2'")
    memberships = {b.name: (b, groups_of(fleet, b)) for b in fleet.boxes}
    chosen: set[str] = set()
    plain = [t for t in terms if not t.startswith(("&", "!"))]
    for term in plain:
        hits = {n for n, (b, g) in memberships.items() if _term_matches(term, b, g)}
        if not hits:
            raise NoMatch(f"--limit: {term} matches no box or group", hint=HINT)
        chosen |= hits
    if not plain:  # only &/! terms: Ansible starts from all hosts
        chosen = set(memberships)
    for term in terms:
        if term.startswith("&"):
            chosen &= {n for n, (b, g) in memberships.items() if _term_matches(term[1:], b, g)}
        elif term.startswith("!"):
            chosen -= {n for n, (b, g) in memberships.items() if _term_matches(term[1:], b, g)}
    return chosen


def select(fleet: Fleet, selection: Selection) -> list[Box]:
    """Boxes matching every given selector (none given: the whole fleet), in fleet order."""
    if selection.everything:
        return list(fleet.boxes)
    boxes = _matching(selection.boxes, [b.name for b in fleet.boxes], "box")
    sites = _matching(selection.sites, [s.name for s in fleet.sites], "site")
    tiers = _matching(selection.tiers, TIERS, "tier")
    clusters = _matching(selection.clusters, [c.name for c in fleet.clusters], "cluster")
    limited = limit_boxes(fleet, selection.limit) if selection.limit else None

    def wanted(box: Box) -> bool:
        cluster = fleet.cluster_of(box.name)
        return ((not selection.boxes or box.name in boxes)
                and (not selection.sites or box.site in sites)
                and (not selection.tiers or fleet.tier_of(box) in tiers)
                and (not selection.clusters or (cluster is not None and cluster.name in clusters))
                and (limited is None or box.name in limited))

    chosen = [b for b in fleet.boxes if wanted(b)]
    if not chosen:
        raise NoMatch("no box matches all of the given selectors together", hint=HINT)
    return chosen


def select_boxes(fleet: Fleet, *, boxes: Sequence[str] | None = None,
                 sites: Sequence[str] | None = None,
                 tiers: Sequence[str] | None = None) -> list[Box]:
    """:func:`select` for callers holding only --box/--site/--tier (the connection agent)."""
    return select(fleet, Selection(tuple(boxes or ()), tuple(sites or ()), tuple(tiers or ())))
