"""Cross-checks: rules that relate several objects of the fleet.

Each check returns problems located at the YAML path that breaks the rule, so the
message names the file and line the user has to edit.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network

from dnabox.errors import Problem
from dnabox.inventory.dna_checks import dna_sound, uplinks_sound
from dnabox.inventory.model import Fleet
from dnabox.inventory.platforms import (
    KUBELET_MAX_SKEW,
    KUBERNETES_MINORS,
    LAST_KUBERNETES_ON_CONTAINERD_1,
    RELEASES,
    minor_number,
)
from dnabox.inventory.yaml_source import PathKey, SourceDoc, format_path
from dnabox.redact import shown

Finding = tuple[PathKey, str]
VXLAN_OVERHEAD = 50


def cross_check(fleet: Fleet, doc: SourceDoc) -> list[Problem]:
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(fleet))
    return [doc.problem(path, message) for path, message in findings]


def _unique(items: Iterable[tuple[PathKey, object]], what: str) -> Iterator[Finding]:
    first: dict[object, PathKey] = {}
    for path, value in items:
        if value in first:
            yield path, f"duplicate {what} {value}: already used at {format_path(first[value])}"
        else:
            first[value] = path


def unique_names(fleet: Fleet) -> Iterator[Finding]:
    """Planes, sites, boxes, overlays and clusters each have unique names."""
    for section in ("planes", "sites", "boxes", "overlays", "clusters"):
        items = getattr(fleet, section)
        yield from _unique(
            (((section, i, "name"), item.name) for i, item in enumerate(items)),
            f"{section[:-1] if section != 'boxes' else 'box'} name",
        )


def unique_addresses(fleet: Fleet) -> Iterator[Finding]:
    """No address is used twice: box management, interface and overlay addresses and the
    sites' gateways. Every overlay has its own VNI."""

    def addresses() -> Iterator[tuple[PathKey, IPv4Address]]:
        # Gateways first, so a box that takes a gateway's address is the one reported.
        for i, site in enumerate(fleet.sites):
            for plane, subnet in site.subnets.items():
                if subnet.gateway is not None:
                    yield ("sites", i, "subnets", plane, "gateway"), subnet.gateway
        for i, box in enumerate(fleet.boxes):
            yield ("boxes", i, "address"), box.address
            for plane, iface in box.interfaces.items():
                if iface.address.ip != box.address:
                    yield ("boxes", i, "interfaces", plane, "address"), iface.address.ip
            for overlay, addr in box.overlay_addresses.items():
                yield ("boxes", i, "overlay_addresses", overlay), addr.ip

    yield from _unique(addresses(), "address")
    yield from _unique(
        (((("overlays", i, "vni")), o.vni) for i, o in enumerate(fleet.overlays)), "VNI"
    )


def references(fleet: Fleet) -> Iterator[Finding]:
    """Every name refers to something defined: a box's site, planes and overlays, a site
    subnet's plane, an overlay's plane and hub, a cluster's boxes. A box belongs to at most
    one cluster."""
    sites = {s.name for s in fleet.sites}
    planes = {p.name for p in fleet.planes}
    boxes = {b.name for b in fleet.boxes}
    overlays = {o.name for o in fleet.overlays}
    for i, site in enumerate(fleet.sites):
        for plane in site.subnets:
            if plane not in planes:
                yield ("sites", i, "subnets", plane), _unknown("plane", plane, planes)
    for i, box in enumerate(fleet.boxes):
        if box.site not in sites:
            yield ("boxes", i, "site"), _unknown("site", box.site, sites)
        for plane in box.interfaces:
            if plane not in planes:
                yield ("boxes", i, "interfaces", plane), _unknown("plane", plane, planes)
        for overlay_name in box.overlay_addresses:
            if overlay_name not in overlays:
                yield (("boxes", i, "overlay_addresses", overlay_name),
                       _unknown("overlay", overlay_name, overlays))
    for i, overlay in enumerate(fleet.overlays):
        if overlay.plane not in planes:
            yield ("overlays", i, "plane"), _unknown("plane", overlay.plane, planes)
        if overlay.hub is not None and overlay.hub not in boxes:
            yield ("overlays", i, "hub"), _unknown("box", overlay.hub, boxes)
    owner: dict[str, str] = {}
    for i, cluster in enumerate(fleet.clusters):
        for field in ("control_planes", "workers"):
            for j, name in enumerate(getattr(cluster, field)):
                path = ("clusters", i, field, j)
                if name not in boxes:
                    yield path, _unknown("box", name, boxes)
                elif owner.setdefault(name, cluster.name) != cluster.name:
                    # Twice in the same cluster is reported by clusters_sound.
                    yield path, f"box {name} is already a member of cluster {owner[name]}"


_LISTED = 12  # more choices than this are summarised, or a 1,000-box fleet floods the line


def _unknown(kind: str, name: str, known: set[str]) -> str:
    choices = ", ".join(sorted(known)) or "none defined"
    if len(known) > _LISTED:
        close = difflib.get_close_matches(name, sorted(known), n=3)
        choices = (f"{', '.join(close)} or " if close else "") + (
            f"one of the {len(known):,} defined")
    return f"unknown {kind} {shown(name)}; valid: {choices}"


def planes_sound(fleet: Fleet) -> Iterator[Finding]:
    """Exactly one plane is the management plane. Plane and overlay CIDRs do not overlap.
    An overlay's bridge is not also a plane's bridge."""
    management = [i for i, p in enumerate(fleet.planes) if p.purpose == "management"]
    if not management:
        yield ("planes",), (
            "no plane has purpose 'management'; exactly one must: it carries SSH to the boxes"
        )
    for i in management[1:]:
        yield ("planes", i, "purpose"), (
            f"plane {fleet.planes[management[0]].name} is already the management plane; "
            "exactly one plane may be (use 'control' or 'data')"
        )
    bridges: dict[str, PathKey] = {}
    for i, plane in enumerate(fleet.planes):
        if plane.bridge:
            bridges.setdefault(plane.bridge, ("planes", i, "bridge"))
    for i, overlay in enumerate(fleet.overlays):
        if overlay.bridge in bridges:
            yield ("overlays", i, "bridge"), (
                f"bridge {overlay.bridge} is already the bridge of a plane; "
                "give the overlay a bridge of its own"
            )
    nets: list[tuple[PathKey, IPv4Network, str]] = [
        (("planes", i, "cidr"), p.cidr, f"plane {p.name}") for i, p in enumerate(fleet.planes)
    ]
    nets += [(("overlays", i, "cidr"), o.cidr, f"overlay {o.name}")
             for i, o in enumerate(fleet.overlays) if o.cidr is not None]
    yield from _overlaps(nets)


def _overlaps(nets: Sequence[tuple[PathKey, IPv4Network, str]]) -> Iterator[Finding]:
    for k, (path, net, _label) in enumerate(nets):
        for _, other, other_label in nets[:k]:
            if net.overlaps(other):
                yield path, f"{net} overlaps {other} of {other_label}"
                break


def subnets_sound(fleet: Fleet) -> Iterator[Finding]:
    """A site's subnet lies inside its plane's CIDR and holds its gateway; the sites'
    subnets on one plane do not overlap."""
    per_plane: dict[str, list[tuple[PathKey, IPv4Network, str]]] = {}
    planes = {p.name: p for p in fleet.planes}
    for i, site in enumerate(fleet.sites):
        for plane_name, subnet in site.subnets.items():
            path: PathKey = ("sites", i, "subnets", plane_name)
            plane = planes.get(plane_name)
            if plane is None:
                continue
            if not subnet.cidr.subnet_of(plane.cidr):
                yield (*path, "cidr"), f"{subnet.cidr} is outside plane {plane.name} ({plane.cidr})"
            if subnet.gateway is not None and subnet.gateway not in subnet.cidr:
                yield (*path, "gateway"), f"gateway {subnet.gateway} is outside {subnet.cidr}"
            per_plane.setdefault(plane_name, []).append(
                ((*path, "cidr"), subnet.cidr, f"site {site.name}")
            )
    for nets in per_plane.values():
        yield from _overlaps(nets)


def addresses_in_cidrs(fleet: Fleet) -> Iterator[Finding]:
    """Each box address lies in its plane's CIDR and in its site's subnet on that plane;
    the management address is the box's `address`; overlay addresses lie in the overlay's
    CIDR."""
    planes = {p.name: p for p in fleet.planes}
    sites = {s.name: s for s in fleet.sites}
    overlays = {o.name: o for o in fleet.overlays}
    management = next((p for p in fleet.planes if p.purpose == "management"), None)
    for i, box in enumerate(fleet.boxes):
        site = sites.get(box.site)
        if management is not None:
            where = _placement(box.address, management.name, management.cidr, site)
            if where:
                yield ("boxes", i, "address"), where
            iface = box.interfaces.get(management.name)
            if iface is not None and iface.address.ip != box.address:
                yield (("boxes", i, "interfaces", management.name, "address"),
                       f"{iface.address.ip} differs from the management address {box.address}")
        for plane_name, iface in box.interfaces.items():
            plane = planes.get(plane_name)
            if plane is None or plane is management:
                continue
            where = _placement(iface.address.ip, plane.name, plane.cidr, site)
            if where:
                yield ("boxes", i, "interfaces", plane_name, "address"), where
        for overlay_name, addr in box.overlay_addresses.items():
            overlay = overlays.get(overlay_name)
            if overlay is not None and overlay.cidr is not None and addr.ip not in overlay.cidr:
                yield (("boxes", i, "overlay_addresses", overlay_name),
                       f"{addr.ip} is outside overlay {overlay.name} ({overlay.cidr})")


def _placement(ip: IPv4Address, plane: str, cidr: IPv4Network, site: object) -> str:
    if ip not in cidr:
        return f"{ip} is outside plane {plane} ({cidr})"
    subnets = getattr(site, "subnets", {})
    if plane in subnets and ip not in subnets[plane].cidr:
        name = getattr(site, "name", "?")
        return f"{ip} is outside site {name}'s {plane} subnet ({subnets[plane].cidr})"
    return ""


def overlays_sound(fleet: Fleet) -> Iterator[Finding]:
    """Topology `hub` names a hub that is a member; `mesh` names none. The overlay MTU
    leaves room for the 50-byte VXLAN header on its plane. Members have an interface on
    the underlay plane."""
    planes = {p.name: p for p in fleet.planes}
    for i, overlay in enumerate(fleet.overlays):
        if overlay.topology == "hub" and overlay.hub is None:
            yield ("overlays", i, "hub"), "topology 'hub' needs a hub box"
        if overlay.topology == "mesh" and overlay.hub is not None:
            yield ("overlays", i, "hub"), "a hub is only valid with topology 'hub'"
        plane = planes.get(overlay.plane)
        if plane is not None and overlay.mtu > plane.mtu - VXLAN_OVERHEAD:
            yield ("overlays", i, "mtu"), (
                f"mtu {overlay.mtu} leaves no room for the {VXLAN_OVERHEAD}-byte VXLAN header "
                f"on plane {plane.name} (mtu {plane.mtu}); use at most {plane.mtu - VXLAN_OVERHEAD}"
            )
        members = [b for b in fleet.boxes if overlay.name in b.overlay_addresses]
        if overlay.hub is not None and overlay.hub not in {b.name for b in members}:
            yield ("overlays", i, "hub"), f"hub {overlay.hub} has no address on this overlay"
        for box in members:
            if plane is not None and plane.purpose != "management" and (
                plane.name not in box.interfaces
            ):
                j = fleet.boxes.index(box)
                yield (("boxes", j, "overlay_addresses", overlay.name),
                       f"box {box.name} joins overlay {overlay.name} but has no interface on "
                       f"its underlay plane {plane.name}")


def clusters_sound(fleet: Fleet) -> Iterator[Finding]:
    """A cluster has an odd number (at least one) of control planes and lists each box
    once. Pod and service CIDRs overlap neither each other nor a plane or overlay. runc
    stays enabled (the default RuntimeClass) and each runtime is listed once. A cluster of
    end-tier devices only gets neither kata (no hardware virtualisation) nor istio (its
    control plane does not fit); apptainer needs core-tier boxes (training runs there)."""
    tiers = {b.name: fleet.site(b.site).tier for b in fleet.boxes
             if b.site in {s.name for s in fleet.sites}}
    for i, cluster in enumerate(fleet.clusters):
        path: PathKey = ("clusters", i)
        count = len(cluster.control_planes)
        if count == 0:
            yield (*path, "control_planes"), "a cluster needs at least one control-plane box"
        elif count % 2 == 0:
            yield (*path, "control_planes"), (
                f"{count} control planes cannot keep etcd quorum through a failure; "
                "use an odd count (1, 3, 5)"
            )
        yield from _member_duplicates(cluster.members, path, len(cluster.control_planes))
        if cluster.pod_cidr.overlaps(cluster.service_cidr):
            # Blame the range the user wrote: the other one may be a default.
            field, net, other, other_net = "service_cidr", cluster.service_cidr, "pod_cidr", (
                cluster.pod_cidr)
            if "service_cidr" not in cluster.model_fields_set:
                field, net, other, other_net = other, other_net, field, cluster.service_cidr
            yield (*path, field), f"{net} overlaps this cluster's {other} {other_net}"
        taken = [(f"plane {p.name}", p.cidr) for p in fleet.planes]
        taken += [(f"overlay {o.name}", o.cidr) for o in fleet.overlays if o.cidr is not None]
        for field, net in (("pod_cidr", cluster.pod_cidr), ("service_cidr", cluster.service_cidr)):
            for label, cidr in taken:
                if net.overlaps(cidr):
                    yield (*path, field), f"{net} overlaps {label} ({cidr})"
        yield from _runtime_rules(cluster.runtimes, cluster.mesh,
                                  {tiers[m] for m in cluster.members if m in tiers}, path)


def _member_duplicates(members: list[str], path: PathKey, control: int) -> Iterator[Finding]:
    seen: set[str] = set()
    for k, name in enumerate(members):
        if name in seen:
            where = ("control_planes", k) if k < control else ("workers", k - control)
            yield (*path, *where), f"box {name} is listed twice in this cluster"
        seen.add(name)


def _runtime_rules(
    runtimes: Sequence[str], mesh: str, tiers: set[str], path: PathKey
) -> Iterator[Finding]:
    if "runc" not in runtimes:
        yield (*path, "runtimes"), "runc must stay enabled: it is the default RuntimeClass"
    if len(set(runtimes)) != len(runtimes):
        yield (*path, "runtimes"), "each runtime may be listed once"
    if tiers and tiers <= {"end"}:
        if "kata" in runtimes:
            yield (*path, "runtimes"), (
                "kata needs hardware virtualisation, which end-tier devices lack; "
                "enable it on a cluster with core or edge boxes"
            )
        if mesh == "istio":
            yield (*path, "mesh"), (
                "istio's control plane does not fit end-tier devices; use linkerd or none"
            )
    if "apptainer" in runtimes and tiers and "core" not in tiers:
        yield (*path, "runtimes"), (
            "apptainer serves HPC/AI training, which runs in the core; "
            "enable it on a cluster with core-tier boxes"
        )


def artifacts_sound(fleet: Fleet) -> Iterator[Finding]:
    """Source `offline` names a bundle_dir; an artifact name is declared once per
    architecture (or once for every architecture, without `arch`)."""
    if fleet.artifacts.source == "offline" and not fleet.artifacts.bundle_dir:
        yield ("artifacts", "bundle_dir"), (
            "source 'offline' needs bundle_dir (build one with `dnabox bundle build`)"
        )
    yield from _unique(
        ((("artifacts", "files", i, "name"), f"{a.name} ({a.arch or 'any architecture'})")
         for i, a in enumerate(fleet.artifacts.files)),
        "artifact",
    )
    any_arch = {a.name for a in fleet.artifacts.files if a.arch is None}
    for i, artifact in enumerate(fleet.artifacts.files):
        if artifact.arch is not None and artifact.name in any_arch:
            yield ("artifacts", "files", i, "arch"), (
                f"artifact {artifact.name} is also declared without arch (for every "
                "architecture); declare it either once without arch or once per architecture"
            )


def kubernetes_versions_sound(fleet: Fleet) -> Iterator[Finding]:
    """A cluster runs a Kubernetes minor upstream supports (1.35, 1.36, 1.37). A box's
    kubelet is never newer than its cluster's API server and at most three minors older.
    Kubernetes after 1.35 needs containerd 2 on every member: Debian's containerd is 1.x,
    so such a fleet sets `containerd.version`."""
    supported = ", ".join(KUBERNETES_MINORS)
    index = {b.name: i for i, b in enumerate(fleet.boxes)}
    for i, cluster in enumerate(fleet.clusters):
        path: PathKey = ("clusters", i, "kubernetes_version")
        if cluster.kubernetes_version not in KUBERNETES_MINORS:
            yield path, (
                f"Kubernetes {cluster.kubernetes_version} is not supported; use one of "
                f"{supported} (upstream supports the three newest minors)"
            )
        api = minor_number(cluster.kubernetes_version)
        for name in cluster.members:
            if name not in index:
                continue
            box = fleet.boxes[index[name]]
            kubelet = minor_number(fleet.kubelet_version_of(box, cluster))
            where: PathKey = ("boxes", index[name], "kubelet_version")
            if box.kubelet_version is not None and name in cluster.control_planes and (
                    kubelet != api):
                yield where, (
                    f"{name} is a control plane of {cluster.name}: its kubelet runs the "
                    f"cluster's version {cluster.kubernetes_version}"
                )
            elif kubelet > api:
                yield where, (
                    f"kubelet 1.{kubelet} would be newer than the API server of "
                    f"{cluster.name} (1.{api}); the skew policy forbids it"
                )
            elif api - kubelet > KUBELET_MAX_SKEW:
                yield where, (
                    f"kubelet 1.{kubelet} is {api - kubelet} minors older than the API server "
                    f"of {cluster.name} (1.{api}); at most {KUBELET_MAX_SKEW} are allowed"
                )
        if fleet.containerd.version is None and api > minor_number(
                LAST_KUBERNETES_ON_CONTAINERD_1):
            releases = sorted({fleet.os_of(fleet.boxes[index[n]]) for n in cluster.members
                               if n in index})
            shipped = ", ".join(f"{r} ships {RELEASES[r].containerd}" for r in releases)
            yield path, (
                f"Kubernetes {cluster.kubernetes_version} needs containerd 2 on every node "
                f"(1.x runs up to Kubernetes {LAST_KUBERNETES_ON_CONTAINERD_1}) and {shipped}; "
                "set containerd.version (e.g. 2.1.4) and declare artifact containerd-static, "
                f"or use Kubernetes {LAST_KUBERNETES_ON_CONTAINERD_1}"
            )


CHECKS: tuple[Callable[[Fleet], Iterator[Finding]], ...] = (
    unique_names,
    unique_addresses,
    references,
    planes_sound,
    subnets_sound,
    addresses_in_cidrs,
    overlays_sound,
    clusters_sound,
    artifacts_sound,
    kubernetes_versions_sound,
    uplinks_sound,
    dna_sound,
)
