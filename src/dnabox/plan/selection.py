"""Which boxes a command works on: --box, --site and --tier, for every command alike."""

from __future__ import annotations

from collections.abc import Sequence

from dnabox.errors import DnaboxError
from dnabox.inventory.model import Box, Fleet


def select_boxes(fleet: Fleet, *, boxes: Sequence[str] | None = None,
                 sites: Sequence[str] | None = None,
                 tiers: Sequence[str] | None = None) -> list[Box]:
    """Boxes matching every given filter (no filter: the whole fleet), in fleet order."""
    unknown = [b for b in boxes or [] if b not in {box.name for box in fleet.boxes}]
    unknown += [s for s in sites or [] if s not in {site.name for site in fleet.sites}]
    unknown += [t for t in tiers or [] if t not in {"core", "edge", "end"}]
    if unknown:
        raise DnaboxError(f"not in fleet {fleet.name}: {', '.join(unknown)}",
                          hint="`dnabox inventory show -i FILE` lists boxes, sites and tiers")
    chosen = [
        b for b in fleet.boxes
        if (not boxes or b.name in boxes) and (not sites or b.site in sites)
        and (not tiers or fleet.tier_of(b) in tiers)
    ]
    if not chosen:
        raise DnaboxError("no box matches the given --box/--site/--tier",
                          hint="`dnabox inventory show -i FILE` lists boxes, sites and tiers")
    return chosen
