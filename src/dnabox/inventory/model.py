"""The typed fleet model: sites, boxes, network planes, overlays, clusters, artifacts.

Field-level rules live here (types, ranges, name patterns, unknown keys refused);
rules that relate several objects live in ``checks.py`` so each message can point
at the exact line that breaks them.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

Tier = Literal["core", "edge", "end"]
Size = Literal["large", "medium", "small"]
Runtime = Literal["runc", "kata", "apptainer"]
Mesh = Literal["istio", "linkerd", "none"]
Distribution = Literal["kubeadm", "k3s"]
Topology = Literal["mesh", "hub"]
PlanePurpose = Literal["management", "control", "data"]

# DNS-label names: they become hostnames, Kubernetes label values and Pulumi stack names.
Name = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
# Linux interface names are limited to 15 bytes (IFNAMSIZ - 1).
IfName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")]
PlaneName = Annotated[str, Field(pattern=r"^[A-Za-z0-9+_-]{1,16}$")]
HostKeyFingerprint = Annotated[str, Field(pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Strict(BaseModel):
    """Unknown keys are refused: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plane(Strict):
    """A network plane (SmartX: P+M power/management, C control, D data)."""

    name: PlaneName
    purpose: PlanePurpose
    cidr: IPv4Network
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    mtu: Annotated[int, Field(ge=576, le=9216)] = 1500
    # None keeps the plane on the host NIC. The management plane defaults to None:
    # moving the SSH address under OVS can lock the operator out of the box.
    bridge: IfName | None = None


def default_planes() -> list[Plane]:
    return [
        Plane(name="P+M", purpose="management", cidr=IPv4Network("10.10.0.0/16")),
        Plane(name="C", purpose="control", cidr=IPv4Network("10.20.0.0/16"), bridge="br-ctl"),
        Plane(name="D", purpose="data", cidr=IPv4Network("10.30.0.0/16"), bridge="br-data",
              mtu=9000),
    ]


class Subnet(Strict):
    """A site's slice of a plane; boxes of the site take addresses from it."""

    cidr: IPv4Network
    gateway: IPv4Address | None = None


class Site(Strict):
    name: Name
    tier: Tier
    region: str = ""
    subnets: dict[str, Subnet] = Field(default_factory=dict)


class SshAccess(Strict):
    """How to reach a box. ``key`` is a path to a private key file, never key material."""

    user: str = "root"
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    key: str | None = None
    known_hosts: str | None = None


class SshOverride(Strict):
    """Per-box SSH settings; unset fields fall back to ``defaults.ssh``."""

    user: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    key: str | None = None
    known_hosts: str | None = None
    # A pinned host-key fingerprint (``ssh-keygen -lf``), checked on every connection.
    host_key: HostKeyFingerprint | None = None


class Interface(Strict):
    nic: IfName
    address: IPv4Interface


class Box(Strict):
    """A hyper-converged server: compute, storage and OVS networking in one box."""

    name: Name
    site: Name
    size: Size = "medium"
    smartx_type: str | None = None
    # The management address: SSH goes here.
    address: IPv4Address
    ssh: SshOverride = Field(default_factory=SshOverride)
    interfaces: dict[str, Interface] = Field(default_factory=dict)
    # Address of this box on each overlay it joins (overlay name -> address/prefix).
    overlay_addresses: dict[str, IPv4Interface] = Field(default_factory=dict)


class Overlay(Strict):
    """A VXLAN overlay joining boxes across sites over one plane's addresses."""

    name: Name
    vni: Annotated[int, Field(ge=1, le=16_777_215)]
    # The plane whose box addresses are the tunnel endpoints (the underlay).
    plane: PlaneName
    # The OVS bridge holding the VXLAN ports and the overlay address.
    bridge: IfName = "br-vxlan"
    cidr: IPv4Network | None = None
    # VXLAN adds 50 bytes; without a lower MTU on the overlay, TCP stalls.
    mtu: Annotated[int, Field(ge=576, le=9000)] = 1450
    topology: Topology = "mesh"
    hub: Name | None = None


def _default_runtimes() -> list[Runtime]:
    return ["runc"]


class Cluster(Strict):
    name: Name
    distribution: Distribution = "kubeadm"
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.\d{2}$")] = "1.30"
    control_planes: list[Name]
    workers: list[Name] = Field(default_factory=list)
    pod_cidr: IPv4Network = IPv4Network("10.244.0.0/16")
    service_cidr: IPv4Network = IPv4Network("10.96.0.0/12")
    runtimes: list[Runtime] = Field(default_factory=_default_runtimes)
    mesh: Mesh = "none"

    @property
    def members(self) -> list[str]:
        return [*self.control_planes, *self.workers]


class Artifact(Strict):
    """A binary the fleet needs that Debian does not ship (kubeadm, kata, apptainer...)."""

    name: Name
    url: str
    sha256: Sha256
    # Which role consumes it; lets the bundle report what is missing per role.
    role: str


class Artifacts(Strict):
    """Where packages and binaries come from: the network, or an offline bundle directory."""

    source: Literal["online", "offline"] = "online"
    bundle_dir: str | None = None
    files: list[Artifact] = Field(default_factory=list)


BootstrapRole = Literal[
    "base", "container_runtime", "kata", "apptainer", "ovs", "cni", "kubernetes"
]


class Bootstrap(Strict):
    """Which bootstrap roles run. The lab skips what this machine cannot host."""

    skip_roles: list[BootstrapRole] = Field(default_factory=list)


class Defaults(Strict):
    ssh: SshAccess = Field(default_factory=SshAccess)


class Fleet(Strict):
    """The whole fleet: the single source of truth every other layer derives from."""

    name: Name
    description: str = ""
    defaults: Defaults = Field(default_factory=Defaults)
    planes: list[Plane] = Field(default_factory=default_planes)
    sites: list[Site]
    boxes: list[Box]
    overlays: list[Overlay] = Field(default_factory=list)
    clusters: list[Cluster] = Field(default_factory=list)
    artifacts: Artifacts = Field(default_factory=Artifacts)
    bootstrap: Bootstrap = Field(default_factory=Bootstrap)

    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The file this fleet was read from ('' when built in code)."""
        return self._source

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def box(self, name: str) -> Box:
        return next(b for b in self.boxes if b.name == name)

    def plane(self, name: str) -> Plane:
        return next(p for p in self.planes if p.name == name)

    def tier_of(self, box: Box) -> Tier:
        return self.site(box.site).tier

    def management_plane(self) -> Plane:
        return next(p for p in self.planes if p.purpose == "management")

    def cluster_of(self, box_name: str) -> Cluster | None:
        return next((c for c in self.clusters if box_name in c.members), None)

    def ssh_for(self, box: Box) -> ResolvedSsh:
        base, own = self.defaults.ssh, box.ssh
        return ResolvedSsh(
            host=str(box.address),
            user=own.user or base.user,
            port=own.port or base.port,
            key=own.key or base.key,
            known_hosts=own.known_hosts or base.known_hosts,
            host_key=own.host_key,
        )


class ResolvedSsh(Strict):
    """SSH settings of one box after defaults are applied."""

    host: str
    user: str
    port: int
    key: str | None
    known_hosts: str | None
    host_key: str | None
