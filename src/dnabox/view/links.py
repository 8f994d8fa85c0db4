"""Measure each site-to-site overlay link: latency and loss, from the first box of a site.

One SSH command per source site pings every peer site's first overlay address at once,
so a refresh costs one round trip per site, not per link.
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict

from dnabox.adapters.ssh import ConnectionPool
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Box, Fleet
from dnabox.view.snapshot import LinkReading, site_links

_LOSS = re.compile(r"([\d.]+)% packet loss")
_RTT = re.compile(r"= [\d.]+/([\d.]+)/")


def overlay_address(box: Box) -> str | None:
    for address in box.overlay_addresses.values():
        return str(address).split("/")[0]
    return None


def ping_script(targets: list[str]) -> str:
    """Ping every target in parallel (3 probes each); one `@ADDRESS <summary>` line each."""
    jobs = [f"(echo \"@{t} $(ping -n -q -c 3 -i 0.2 -W 1 {shlex.quote(t)} 2>&1 | tail -n 2 "
            f"| tr '\\n' ' ')\") &" for t in targets]
    return "\n".join([*jobs, "wait"])


def parse_pings(output: str) -> dict[str, tuple[float | None, float]]:
    """``address -> (average rtt in ms or None, loss 0..1)``; an unparsable line is a cut."""
    found: dict[str, tuple[float | None, float]] = {}
    for line in output.splitlines():
        if not line.startswith("@"):
            continue
        address, _, summary = line[1:].partition(" ")
        loss = _LOSS.search(summary)
        rtt = _RTT.search(summary)
        found[address] = (float(rtt.group(1)) if rtt else None,
                          float(loss.group(1)) / 100 if loss else 1.0)
    return found


def measure(fleet: Fleet, pool: ConnectionPool) -> dict[tuple[str, str], LinkReading]:
    first: dict[str, Box] = {}
    for box in fleet.boxes:
        if overlay_address(box) is not None:
            first.setdefault(box.site, box)
    wanted: dict[str, list[tuple[str, str]]] = defaultdict(list)  # source site -> (peer, ip)
    for a, b in site_links(fleet):
        if a in first and b in first:
            wanted[a].append((b, overlay_address(first[b]) or ""))
    result: dict[tuple[str, str], LinkReading] = {}
    for site, peers in wanted.items():
        source = first[site]
        try:
            output = pool.get(source.name, fleet.ssh_for(source)).run(
                ping_script([ip for _, ip in peers]), timeout=30).stdout
        except DnaboxError:
            output = ""  # the source is unreachable: its links read as cut
        pings = parse_pings(output)
        for peer, ip in peers:
            latency, loss = pings.get(ip, (None, 1.0))
            result[(site, peer)] = LinkReading(site, peer, latency, loss)
    return result
