"""Cut and restore one site's links to every other site in the lab's router.

The router namespace forwards between the sites' subnets; a partition drops what it would
forward between the site's subnets and every other site's, on every plane but the
management plane, so dnabox still reaches every box over SSH while the site's data plane
(and the VXLAN overlay riding it) is cut off. ``wan=True`` cuts the management plane too,
the controller included (the host reaches the boxes through the router): the site's WAN
link is down, as a run in progress meets it. Rules carry a comment naming the site, so
heal removes exactly them, and both are idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.lab.layout import router_netns_name
from dnabox.lab.network import netns_exists
from dnabox.lab.run import run

CHAIN = "FORWARD"


def tag(site: str) -> str:
    return f"dnabox-partition-{site}"


@dataclass(frozen=True)
class PartitionReport:
    site: str
    cut: bool  # True: the site is now partitioned; False: healed
    changed: int  # rules added or removed
    pairs: tuple[tuple[str, str], ...]  # (site subnet, other subnet) cut both ways

    def as_json(self) -> dict[str, object]:
        return {"site": self.site, "partitioned": self.cut, "changed": self.changed,
                "pairs": [list(p) for p in self.pairs]}


def cut_off(fleet: Fleet, site: str) -> set[str]:
    """The sites that go with ``site``: itself and the end sites whose uplink it is (their
    devices hang off the site's own network, which a WAN cut leaves alone)."""
    if site not in {s.name for s in fleet.sites}:
        raise DnaboxError(f"no site {site} in fleet {fleet.name}",
                          hint="valid sites: " + ", ".join(s.name for s in fleet.sites))
    return {site} | {s.name for s in fleet.sites if s.uplink == site}


def partition_pairs(fleet: Fleet, site: str) -> list[tuple[str, str]]:
    """(a subnet inside the cut, a subnet outside it) for every non-management plane."""
    inside = cut_off(fleet, site)
    management = fleet.management_plane().name

    def subnets(keep: bool) -> list[str]:
        return [str(n.cidr) for s in fleet.sites if (s.name in inside) == keep
                for p, n in s.subnets.items() if p != management]

    return [(mine, theirs) for mine in subnets(True) for theirs in subnets(False)]


def management_subnets(fleet: Fleet, site: str) -> list[str]:
    """The management subnets a WAN cut of ``site`` takes away from everyone."""
    inside = cut_off(fleet, site)
    management = fleet.management_plane().name
    return [str(n.cidr) for s in fleet.sites if s.name in inside
            for p, n in s.subnets.items() if p == management]


def rules(fleet: Fleet, site: str, *, wan: bool = False) -> list[list[str]]:
    """iptables rule specifications (without -A/-D) dropping the site's traffic."""
    comment = ["-m", "comment", "--comment", tag(site), "-j", "DROP"]
    found = []
    for mine, theirs in partition_pairs(fleet, site):
        found.append(["-s", mine, "-d", theirs, *comment])
        found.append(["-s", theirs, "-d", mine, *comment])
    if wan:
        for mine in management_subnets(fleet, site):
            found.append(["-s", mine, *comment])
            found.append(["-d", mine, *comment])
    return found


def _iptables(router: str, *args: str, check: bool = True) -> bool:
    result = run(["ip", "netns", "exec", router, "iptables", "-w", *args], check=check)
    return result.returncode == 0


def _router(fleet: Fleet) -> str:
    router = router_netns_name(fleet.name)
    if not netns_exists(router):
        raise DnaboxError(f"the lab of fleet {fleet.name} is not up",
                          hint="sudo dnabox lab up -i FILE")
    return router


def partition(fleet: Fleet, site: str, *, wan: bool = False) -> PartitionReport:
    router = _router(fleet)
    changed = 0
    for rule in rules(fleet, site, wan=wan):
        if not _iptables(router, "-C", CHAIN, *rule, check=False):
            _iptables(router, "-I", CHAIN, *rule)
            changed += 1
    return PartitionReport(site, True, changed, tuple(partition_pairs(fleet, site)))


def heal(fleet: Fleet, site: str) -> PartitionReport:
    router = _router(fleet)
    changed = 0
    for rule in rules(fleet, site, wan=True):  # whichever cut it was
        while _iptables(router, "-C", CHAIN, *rule, check=False):
            _iptables(router, "-D", CHAIN, *rule)
            changed += 1
    return PartitionReport(site, False, changed, tuple(partition_pairs(fleet, site)))
