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


def tier_layout(sites: int, per_site: int) -> list[tuple[str, int]]:
    """``sites`` sites of ``per_site`` boxes: a tenth core, four tenths end, the rest edge."""
    core = max(1, sites // 10)
    end = sites * 4 // 10
    edge = max(0, sites - core - end)
    return [("core", per_site)] * core + [("edge", per_site)] * edge + [("end", per_site)] * end


def tiered_fleet(layout: list[tuple[str, int]], name: str = "wall") -> dict[str, Any]:
    """A SmartX-shaped fleet of any size, for pictures and planners (not for the lab).

    ``layout`` lists each site as (tier, boxes). The core sites form one cluster (three
    control planes), each edge site its own cluster, and every end site's devices join an
    edge cluster as workers, as inventory/smartx-playground.yaml does. The overlay
    ``dataplane`` meshes every box; ``telemetry`` joins the end devices to a hub in the core.
    Up to 240 boxes per site and 250 sites (one /24 per site and plane).
    """
    counts = {tier: 0 for tier in ("core", "edge", "end")}
    fleet: dict[str, Any] = {
        "name": name,
        "description": f"generated fleet of {sum(n for _, n in layout)} boxes",
        "planes": [
            {"name": "P+M", "purpose": "management", "cidr": "10.10.0.0/16"},
            {"name": "C", "purpose": "control", "cidr": "10.20.0.0/16", "bridge": "br-ctl"},
            {"name": "D", "purpose": "data", "cidr": "10.30.0.0/16", "bridge": "br-data",
             "mtu": 9000},
        ],
        "sites": [], "boxes": [], "clusters": [],
        "overlays": [
            {"name": "dataplane", "vni": 1001, "plane": "D", "cidr": "10.250.0.0/16",
             "mtu": 8950},
        ],
    }
    members: dict[str, list[str]] = {}  # site -> its box names, in order
    for index, (tier, boxes) in enumerate(layout, start=1):
        counts[tier] += 1
        site = f"{tier}-{counts[tier]}"
        fleet["sites"].append({
            "name": site, "tier": tier, "region": f"region-{index}",
            "subnets": {plane: {"cidr": f"10.{base}.{index}.0/24",
                                "gateway": f"10.{base}.{index}.1"}
                        for plane, base in (("P+M", 10), ("C", 20), ("D", 30))},
        })
        members[site] = []
        for host in range(1, boxes + 1):
            box = f"{site}-{host}"
            members[site].append(box)
            last = 10 + host
            fleet["boxes"].append({
                "name": box, "site": site,
                "size": {"core": "large", "edge": "medium", "end": "small"}[tier],
                "address": f"10.10.{index}.{last}",
                "interfaces": {
                    "C": {"nic": "eno2", "address": f"10.20.{index}.{last}/24"},
                    "D": {"nic": "enp3s0f0", "address": f"10.30.{index}.{last}/24"},
                },
                "overlay_addresses": {"dataplane": f"10.250.{index}.{last}/16"},
            })
    _tiered_clusters(fleet, members)
    _telemetry_hub(fleet, members)
    return fleet


def _tiered_clusters(fleet: dict[str, Any], members: dict[str, list[str]]) -> None:
    tier = {s["name"]: s["tier"] for s in fleet["sites"]}
    core = [b for s, boxes in members.items() if tier[s] == "core" for b in boxes]
    if core:
        control = core[:3] if len(core) >= 3 else core[:1]
        fleet["clusters"].append({
            "name": "core", "control_planes": control,
            "workers": [b for b in core if b not in control],
            "runtimes": ["runc", "kata", "apptainer"], "mesh": "istio",
        })
    edges = [s for s in members if tier[s] == "edge"]
    clusters = {s: {"name": f"k8s-{s}", "distribution": "k3s",
                    "control_planes": members[s][:1], "workers": members[s][1:],
                    "runtimes": ["runc", "kata"], "mesh": "linkerd"} for s in edges}
    ends = [s for s in members if tier[s] == "end"]
    for index, site in enumerate(ends):
        if edges:
            clusters[edges[index % len(edges)]]["workers"].extend(members[site])
    for number, cluster in enumerate(clusters.values()):
        # Every cluster needs its own pod and service ranges away from the planes.
        cluster["pod_cidr"] = f"172.{16 + number // 16}.{number % 16 * 16}.0/20"
        cluster["service_cidr"] = f"192.168.{number}.0/24"
        fleet["clusters"].append(cluster)


def _telemetry_hub(fleet: dict[str, Any], members: dict[str, list[str]]) -> None:
    tier = {s["name"]: s["tier"] for s in fleet["sites"]}
    core = [boxes[0] for s, boxes in members.items() if tier[s] == "core" and boxes]
    ends = [b for s, boxes in members.items() if tier[s] == "end" for b in boxes]
    if not core or not ends:
        return
    hub = core[0]
    fleet["overlays"].append({"name": "telemetry", "vni": 2001, "plane": "D",
                              "cidr": "10.251.0.0/16", "topology": "hub", "hub": hub})
    for box in fleet["boxes"]:
        if box["name"] == hub or box["name"] in ends:
            last = box["address"].split(".", 2)[2]
            box["overlay_addresses"]["telemetry"] = f"10.251.{last}/16"


def main() -> None:
    import argparse
    import sys

    import yaml

    parser = argparse.ArgumentParser(description="Write a generated fleet as YAML to stdout.")
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--per-site", type=int, default=50)
    parser.add_argument("--layout", default="",
                        help="tier:boxes per site, comma-separated (core:12,edge:16,end:20); "
                             "overrides --sites and --per-site")
    parser.add_argument("--name", default="wall")
    args = parser.parse_args()
    layout = ([(tier, int(n)) for tier, n in (s.split(":") for s in args.layout.split(","))]
              if args.layout else tier_layout(args.sites, args.per_site))
    yaml.safe_dump(tiered_fleet(layout, args.name), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
