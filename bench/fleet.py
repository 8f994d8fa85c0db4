"""Generate a lab fleet of N boxes for the benchmark (same layout as inventory/lab.yaml)."""

from __future__ import annotations

from typing import Any

SITES = [("core", "core", 1), ("edge-a", "edge", 2), ("edge-b", "edge", 3), ("end-a", "end", 4)]


def bench_fleet(boxes: int, name: str = "bench", extra: int = 0) -> dict[str, Any]:
    """``boxes`` boxes spread over four sites, plus ``extra`` late boxes (scenario c)."""
    state = f"/var/lib/dnabox/lab/{name}"
    fleet: dict[str, Any] = {
        "name": name,
        "description": f"benchmark fleet of {boxes} boxes",
        "defaults": {"ssh": {"user": "root", "key": f"{state}/id_ed25519",
                             "known_hosts": f"{state}/known_hosts"}},
        "bootstrap": {"skip_roles": ["kata", "apptainer", "kubernetes"]},
        "planes": [
            {"name": "P+M", "purpose": "management", "cidr": "10.201.0.0/16"},
            {"name": "C", "purpose": "control", "cidr": "10.202.0.0/16", "bridge": "br-ctl"},
            {"name": "D", "purpose": "data", "cidr": "10.203.0.0/16", "bridge": "br-data"},
        ],
        "sites": [
            {"name": site, "tier": tier, "subnets": {
                "P+M": {"cidr": f"10.201.{n}.0/24", "gateway": f"10.201.{n}.1"},
                "D": {"cidr": f"10.203.{n}.0/24", "gateway": f"10.203.{n}.1"}}}
            for site, tier, n in SITES
        ],
        "boxes": [],
        "overlays": [{"name": "dataplane", "vni": 1001, "plane": "D", "bridge": "br-vxlan",
                      "cidr": "10.250.0.0/16", "mtu": 1450}],
    }
    for index in range(boxes + extra):
        site, _, n = SITES[index % len(SITES)]
        host = 11 + index // len(SITES)
        fleet["boxes"].append({
            "name": f"{site}-{host - 10}", "site": site, "size": "small",
            "address": f"10.201.{n}.{host}",
            "interfaces": {"D": {"nic": "eth1", "address": f"10.203.{n}.{host}/24"}},
            "overlay_addresses": {"dataplane": f"10.250.{n}.{host}/16"},
        })
    return fleet


# Every role but base: a light box (`dnabox lab up --light`) already holds base's packages.
LIGHT_SKIP = ["container_runtime", "kata", "apptainer", "ovs", "cni", "kubernetes"]


def light_fleet(sites: int = 20, per_site: int = 50, name: str = "scale") -> dict[str, Any]:
    """``sites`` edge sites of ``per_site`` light boxes each: management plane only."""
    if not 1 <= sites <= 250 or not 1 <= per_site <= 240:
        raise ValueError("sites must be 1-250 and per_site 1-240 (one /24 per site)")
    state = f"/var/lib/dnabox/lab/{name}"
    fleet: dict[str, Any] = {
        "name": name,
        "description": f"scale fleet: {sites} sites of {per_site} light boxes",
        "defaults": {"ssh": {"user": "root", "key": f"{state}/id_ed25519",
                             "known_hosts": f"{state}/known_hosts"}},
        "bootstrap": {"skip_roles": LIGHT_SKIP},
        "planes": [{"name": "P+M", "purpose": "management", "cidr": "10.201.0.0/16"}],
        "sites": [{"name": f"s{n:02d}", "tier": "edge", "subnets": {
            "P+M": {"cidr": f"10.201.{n}.0/24", "gateway": f"10.201.{n}.1"}}}
            for n in range(1, sites + 1)],
        "boxes": [{"name": f"s{n:02d}-{i:03d}", "site": f"s{n:02d}", "size": "small",
                   "address": f"10.201.{n}.{10 + i}"}
                  for n in range(1, sites + 1) for i in range(1, per_site + 1)],
    }
    return fleet
