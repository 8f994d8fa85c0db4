"""The typed fleet model: sites, boxes, network planes, overlays, clusters, artifacts.

Field-level rules live here (types, ranges, name patterns, unknown keys refused);
rules that relate several objects live in ``checks.py`` so each message can point
at the exact line that breaks them. The docstring under each field is its user-facing
description: ``python -m dnabox.inventory.reference`` turns them into docs/inventory.md.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr
from pydantic_core import PydanticCustomError

from dnabox.inventory.platforms import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_KUBERNETES,
    DEFAULT_RELEASE,
    Architecture,
    DebianRelease,
)
from dnabox.redact import key_material

Tier = Literal["core", "edge", "end"]
Size = Literal["large", "medium", "small"]
Runtime = Literal["runc", "kata", "apptainer"]
Mesh = Literal["istio", "linkerd", "none"]
Distribution = Literal["kubeadm", "k3s"]
Topology = Literal["mesh", "hub"]
PlanePurpose = Literal["management", "control", "data"]
AcceleratorVendor = Literal["nvidia"]
GpuStack = Literal["device-plugin", "gpu-operator"]


class TextFormat(NamedTuple):
    """A constrained kind of text: what error messages and the reference call it."""

    label: str
    rule: str
    example: str


NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
IFNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$"
PLANE_NAME_PATTERN = r"^[A-Za-z0-9+_-]{1,16}$"
HOST_KEY_PATTERN = r"^SHA256:[A-Za-z0-9+/]{43}=?$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
K8S_VERSION_PATTERN = r"^1\.\d{2}$"
CONTAINERD_VERSION_PATTERN = r"^2\.\d+\.\d+$"
DATASET_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
BYTES_PATTERN = r"^[1-9][0-9]*(B|KiB|MiB|GiB|TiB)$"
DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h|d)$"

# Keyed by pattern: a pydantic pattern error carries only the pattern, and the message
# must say which kind of text was expected.
TEXT_FORMATS: dict[str, TextFormat] = {
    NAME_PATTERN: TextFormat(
        "name", "1-63 lower-case letters, digits and '-', starting and ending with a letter "
        "or digit (a DNS label)", "edge-a-1"),
    IFNAME_PATTERN: TextFormat(
        "interface name", "at most 15 letters, digits, '_', '.' or '-', starting with a letter "
        "or digit (the kernel's IFNAMSIZ limit)", "eth1"),
    PLANE_NAME_PATTERN: TextFormat(
        "plane name", "1-16 letters, digits, '+', '_' or '-'", "P+M"),
    HOST_KEY_PATTERN: TextFormat(
        "host-key fingerprint", "'SHA256:' and 43 base64 characters, as `ssh-keygen -lf` "
        "prints it", "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"),
    SHA256_PATTERN: TextFormat(
        "sha256 digest", "64 lower-case hex digits, as `sha256sum` prints them",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    K8S_VERSION_PATTERN: TextFormat(
        "Kubernetes version", "a minor version, 1.NN", "1.36"),
    CONTAINERD_VERSION_PATTERN: TextFormat(
        "containerd release", "a containerd 2 release, 2.N.N", "2.1.4"),
    DATASET_PATTERN: TextFormat(
        "dataset name", "1-31 lower-case letters, digits and '-', starting with a letter "
        "(it becomes part of NATS subjects and stream names)", "traffic"),
    BYTES_PATTERN: TextFormat(
        "size", "a whole number and a unit: B, KiB, MiB, GiB or TiB (powers of 1024)", "64MiB"),
    DURATION_PATTERN: TextFormat(
        "duration", "a whole number and a unit: s, m, h or d", "24h"),
}

# DNS-label names: they become hostnames, Kubernetes label values and Pulumi stack names.
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# Linux interface names are limited to 15 bytes (IFNAMSIZ - 1).
IfName = Annotated[str, Field(pattern=IFNAME_PATTERN)]
PlaneName = Annotated[str, Field(pattern=PLANE_NAME_PATTERN)]
HostKeyFingerprint = Annotated[str, Field(pattern=HOST_KEY_PATTERN)]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]
KubernetesVersion = Annotated[str, Field(pattern=K8S_VERSION_PATTERN)]
ContainerdRelease = Annotated[str, Field(pattern=CONTAINERD_VERSION_PATTERN)]
DatasetName = Annotated[str, Field(pattern=DATASET_PATTERN)]
Bytes = Annotated[str, Field(pattern=BYTES_PATTERN)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]

_BYTE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def bytes_of(size: str) -> int:
    """``64MiB`` -> 67108864 (a size the model accepted)."""
    number = size.rstrip("BKMGTi")
    return int(number) * _BYTE_UNITS[size[len(number):]]


def seconds_of(duration: str) -> int:
    """``24h`` -> 86400 (a duration the model accepted)."""
    return int(duration[:-1]) * _SECONDS[duration[-1]]

# Numbers are strict: YAML reads `vni: yes` as true and pydantic would take it for 1,
# and a quoted "22" is a string the author did not mean as a number.
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
VlanId = Annotated[int, Field(strict=True, ge=1, le=4094)]
Vni = Annotated[int, Field(strict=True, ge=1, le=16_777_215)]


def _written_as_text(example: str) -> Callable[[object], object]:
    """Refuse numbers: ipaddress accepts ``address: 12`` as 0.0.0.12, never what was meant."""

    def check(value: object) -> object:
        if isinstance(value, int | float):
            raise PydanticCustomError(
                "ip_not_text", "must be written as text like {example}, not a number",
                {"example": example},
            )
        return value

    return check


class PathField(NamedTuple):
    """Marks a field as a file path: resolved against the fleet file's directory on load."""

    what: str


# A path longer than PATH_MAX cannot be opened; one that long was pasted, not typed.
_PATH_MAX = 4096


def _a_path(what: str) -> Callable[[object], object]:
    """Refuse what cannot be a path, above all the key itself pasted where its path goes."""

    def check(value: object) -> object:
        if not isinstance(value, str):
            return value
        kind = key_material(value)
        if kind is not None:
            raise PydanticCustomError(
                "inline_key_material",
                "must be the path to {what}, never the key itself: save the key in a file "
                "readable only by you and write that file's path here", {"what": what})
        if not value.strip() or "\n" in value or "\x00" in value or len(value) > _PATH_MAX:
            raise PydanticCustomError(
                "not_a_path", "must be the path to {what}: one line, at most 4096 characters",
                {"what": what})
        return value

    return check


PrivateKeyPath = Annotated[str, BeforeValidator(_a_path("a private key file")),
                           PathField("a private key file")]
KnownHostsPath = Annotated[str, BeforeValidator(_a_path("a known_hosts file")),
                           PathField("a known_hosts file")]
DirectoryPath = Annotated[str, BeforeValidator(_a_path("a directory")), PathField("a directory")]

Address = Annotated[IPv4Address, BeforeValidator(_written_as_text("10.1.2.3"))]
AddressWithPrefix = Annotated[IPv4Interface, BeforeValidator(_written_as_text("10.1.2.3/24"))]
Network = Annotated[IPv4Network, BeforeValidator(_written_as_text("10.1.2.0/24"))]


class Strict(BaseModel):
    """Unknown keys are refused: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Plane(Strict):
    """A network plane (SmartX: P+M power/management, C control, D data)."""

    name: PlaneName
    """The plane's name; boxes, sites and overlays refer to it (P+M, C, D)."""
    purpose: PlanePurpose
    """What the plane carries; exactly one plane is `management` (SSH goes there)."""
    cidr: Network
    """The plane's whole address range; site subnets and box addresses lie inside it."""
    vlan: VlanId | None = None
    """802.1Q VLAN id of the plane on the wire, when it is tagged."""
    mtu: Annotated[int, Field(strict=True, ge=576, le=9216)] = 1500
    """MTU of the plane's links (9000 for jumbo frames on a 10G data plane)."""
    bridge: IfName | None = None
    """OVS bridge holding the plane on each box. Unset keeps the plane on the host NIC,
    the safe choice for management: moving the SSH address under OVS can lock the
    operator out of the box."""


def default_planes() -> list[Plane]:
    return [
        Plane(name="P+M", purpose="management", cidr=IPv4Network("10.10.0.0/16")),
        Plane(name="C", purpose="control", cidr=IPv4Network("10.20.0.0/16"), bridge="br-ctl"),
        Plane(name="D", purpose="data", cidr=IPv4Network("10.30.0.0/16"), bridge="br-data",
              mtu=9000),
    ]


class Subnet(Strict):
    """A site's slice of a plane; boxes of the site take addresses from it."""

    cidr: Network
    """The slice; it must lie inside the plane's cidr and not overlap another site's."""
    gateway: Address | None = None
    """The site's router on this plane; it must lie inside `cidr`."""


class Site(Strict):
    """A place boxes live in: the core datacenter, an edge (MEC) site, or an end site."""

    name: Name
    """The site's name; boxes refer to it."""
    tier: Tier
    """`core` trains models and holds the data lake, `edge` runs inference near users,
    `end` holds small devices on site."""
    region: str = ""
    """Free text shown in tables and pictures (e.g. kr-daejeon)."""
    subnets: dict[PlaneName, Subnet] = Field(default_factory=dict)
    """Plane name -> the site's subnet on that plane."""
    uplink: Name | None = None
    """For an `end` site: the edge site its devices reach the network through; their
    D-N-A samples go to that edge site's data pond."""


class SshAccess(Strict):
    """How to reach a box. ``key`` is a path to a private key file, never key material."""

    user: str = "root"
    """The login user."""
    port: Port = 22
    """The SSH port."""
    key: PrivateKeyPath | None = None
    """Path to the private key file, never the key itself. A relative path is relative to
    the fleet file's directory; `~` is the home directory."""
    known_hosts: KnownHostsPath | None = None
    """Path to the known_hosts file holding the boxes' host keys (checked strictly);
    relative to the fleet file's directory."""


class SshOverride(Strict):
    """Per-box SSH settings; unset fields fall back to ``defaults.ssh``."""

    user: str | None = None
    """The login user for this box."""
    port: Port | None = None
    """The SSH port of this box."""
    key: PrivateKeyPath | None = None
    """Path to the private key file for this box, never the key itself."""
    known_hosts: KnownHostsPath | None = None
    """Path to a known_hosts file for this box."""
    host_key: HostKeyFingerprint | None = None
    """A pinned host-key fingerprint (`ssh-keygen -lf`), checked on every connection."""


class Interface(Strict):
    """A box's attachment to one plane."""

    nic: IfName
    """The host NIC (or VLAN interface) carrying the plane."""
    address: AddressWithPrefix
    """The box's address on the plane, with prefix (10.30.1.11/24)."""


class Accelerator(Strict):
    """A kind of GPU in a box."""

    vendor: AcceleratorVendor
    """Who makes it (dnabox sets up NVIDIA GPUs)."""
    count: Annotated[int, Field(strict=True, ge=1, le=64)] = 1
    """How many the box holds."""
    model: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")] = ""
    """The model (e.g. A100-80GB), shown as a node label; letters, digits, '.', '_', '-'."""


class Box(Strict):
    """A hyper-converged server: compute, storage and OVS networking in one box."""

    name: Name
    """The box's name; it becomes its hostname and Kubernetes node name."""
    site: Name
    """The site the box belongs to; its tier is the site's tier."""
    size: Size = "medium"
    """Big in the core, medium at the edge, small at the end (NUC / Pi-class)."""
    smartx_type: str | None = None
    """The SmartX box type, informative (e.g. Type-B)."""
    address: Address
    """The management address: SSH goes here. It lies in the management plane's cidr and
    the site's management subnet."""
    ssh: SshOverride = Field(default_factory=SshOverride)
    """SSH settings that differ from `defaults.ssh` for this box."""
    interfaces: dict[PlaneName, Interface] = Field(default_factory=dict)
    """Plane name -> the box's NIC and address on that plane."""
    overlay_addresses: dict[Name, AddressWithPrefix] = Field(default_factory=dict)
    """Overlay name -> the box's address/prefix on that overlay; listing an overlay here
    makes the box a member of it."""
    os: DebianRelease | None = None
    """The box's Debian release; unset: `defaults.os`. Preflight reads the real one and
    stops the box when they differ."""
    arch: Architecture | None = None
    """The box's CPU architecture; unset: `defaults.arch`. Preflight reads the real one and
    stops the box when they differ; artifacts are picked per architecture."""
    accelerators: list[Accelerator] = Field(default_factory=list)
    """GPUs in the box. An NVIDIA one gives the box the NVIDIA container toolkit, the
    `nvidia` runtime handler and CDI, and its node the GPU labels."""
    kubelet_version: KubernetesVersion | None = None
    """This box's kubelet minor when it lags its cluster (a device not yet upgraded);
    unset: the cluster's `kubernetes_version`. Checked against the version skew policy."""
    disk: Bytes | None = None
    """Disk space the box can give to data (D-N-A ponds and the lake); when set, the
    retention limits of what it stores are checked against it."""


class Overlay(Strict):
    """A VXLAN overlay joining boxes across sites over one plane's addresses."""

    name: Name
    """The overlay's name; boxes refer to it in `overlay_addresses`."""
    vni: Vni
    """The VXLAN network identifier, unique in the fleet."""
    plane: PlaneName
    """The plane whose box addresses are the tunnel endpoints (the underlay)."""
    bridge: IfName = "br-vxlan"
    """The OVS bridge holding the VXLAN ports and the overlay address; not a plane's bridge."""
    cidr: Network | None = None
    """The overlay's address range; box overlay addresses must lie inside it."""
    mtu: Annotated[int, Field(strict=True, ge=576, le=9000)] = 1450
    """MTU inside the overlay. VXLAN adds 50 bytes; without a lower MTU than the underlay
    plane's, TCP stalls."""
    topology: Topology = "mesh"
    """`mesh` tunnels every pair of members; `hub` tunnels each member to the hub only."""
    hub: Name | None = None
    """The hub box; required with topology `hub`, refused with `mesh`."""


def _default_runtimes() -> list[Runtime]:
    return ["runc"]


class Cluster(Strict):
    """A Kubernetes cluster formed from boxes; a box belongs to at most one cluster."""

    name: Name
    """The cluster's name; it names the Pulumi stack."""
    distribution: Distribution = "kubeadm"
    """How Kubernetes is installed."""
    kubernetes_version: KubernetesVersion = DEFAULT_KUBERNETES
    """The Kubernetes minor the control plane runs; one of the minors upstream supports
    (see the cross-checks). Minors after 1.35 need containerd 2 (`containerd.version`)."""
    control_planes: list[Name]
    """Boxes running the control plane: at least one, an odd count (etcd quorum)."""
    workers: list[Name] = Field(default_factory=list)
    """Boxes joining as workers."""
    pod_cidr: Network = IPv4Network("10.244.0.0/16")
    """Pod address range; it must not overlap the service range or any plane."""
    service_cidr: Network = IPv4Network("10.96.0.0/12")
    """Service address range; it must not overlap the pod range or any plane."""
    runtimes: list[Runtime] = Field(default_factory=_default_runtimes)
    """Container runtimes, each a RuntimeClass. `runc` is always on; `kata` needs core or
    edge boxes; `apptainer` needs core boxes."""
    mesh: Mesh = "none"
    """The service mesh; `istio` does not fit a cluster of end-tier devices only."""
    gpu_stack: GpuStack = "device-plugin"
    """How GPUs are offered to pods where members hold NVIDIA GPUs: the NVIDIA device plugin
    DaemonSet, or the GPU Operator's Helm release (its driver and toolkit left to dnabox)."""

    @property
    def members(self) -> list[str]:
        return [*self.control_planes, *self.workers]


class Artifact(Strict):
    """A binary the fleet needs that Debian does not ship (kubeadm, kata, apptainer...)."""

    name: Name
    """The artifact's name, unique among artifacts."""
    url: str
    """Where to download it when `source` is online."""
    sha256: Sha256
    """Its sha256 digest, checked after every download and bundle copy."""
    role: str
    """The bootstrap role that consumes it; lets the bundle report what is missing per role."""
    arch: Architecture | None = None
    """The CPU architecture the file is built for; unset: any (scripts, data). One entry per
    architecture the fleet's boxes have, all with the same name."""


class Containerd(Strict):
    """Which containerd the boxes run."""

    version: ContainerdRelease | None = None
    """Unset: each box's Debian package (1.6 on bookworm, 1.7 on trixie). A containerd 2
    release (2.1.4): the static release tarball from artifact `containerd-static` (one entry
    per architecture), needed for Kubernetes after 1.35."""


class Artifacts(Strict):
    """Where packages and binaries come from: the network, or an offline bundle directory."""

    source: Literal["online", "offline"] = "online"
    """`online` downloads; `offline` installs from `bundle_dir` only (air-gapped sites)."""
    bundle_dir: DirectoryPath | None = None
    """The offline bundle directory, relative to the fleet file's directory; required when
    `source` is offline."""
    files: list[Artifact] = Field(default_factory=list)
    """The binaries the fleet needs beyond Debian packages."""


BootstrapRole = Literal[
    "base", "container_runtime", "kata", "apptainer", "ovs", "cni", "dna", "dna_services",
    "kubernetes"
]


class Bootstrap(Strict):
    """Which bootstrap roles run. The lab skips what this machine cannot host."""

    skip_roles: list[BootstrapRole] = Field(default_factory=list)
    """Bootstrap roles never run on this fleet."""


class Retention(Strict):
    """How much of a stream is kept: the oldest samples go first once either limit is hit."""

    max_bytes: Bytes
    """The most the stream holds (e.g. 64MiB); it must fit the disk of the box keeping it."""
    max_age: Duration
    """The oldest sample kept (e.g. 24h, 30d)."""


class Producers(Strict):
    """Who publishes a dataset's samples: every box of the listed tiers and sites."""

    tiers: list[Literal["edge", "end"]] = Field(default_factory=list)
    """Tiers whose boxes publish (end devices publish to their site's uplink edge pond)."""
    sites: list[Name] = Field(default_factory=list)
    """Sites (edge or end) whose boxes publish."""


class Dataset(Strict):
    """A kind of sample produced at the end and edge tiers, kept in the edge ponds and
    joined into the core lake."""

    name: DatasetName
    """The dataset's name; models refer to it and it names the NATS subjects and streams."""
    producers: Producers
    """Who publishes it; at least one box must."""
    retention: Retention
    """What each edge pond keeps of it (the lake keeps `lake.retention`)."""
    schema_version: Annotated[int, Field(strict=True, ge=1)] = 1
    """Version of the sample schema, recorded in the catalogue."""


def _default_lake_retention() -> Retention:
    return Retention(max_bytes="1GiB", max_age="30d")


class Lake(Strict):
    """The connected data lake at the core: one stream per dataset sourcing every pond."""

    site: Name
    """The core site holding the lake, the catalogue and the model registry."""
    retention: Retention = Field(default_factory=_default_lake_retention)
    """What the lake keeps of each dataset."""


class Retrain(Strict):
    """When a model is trained again (like KubeEdge Sedna's IncrementalLearningJob)."""

    every_samples: Annotated[int, Field(strict=True, ge=0)] = 0
    """Retrain once this many new samples reached the lake (0: off)."""
    every_seconds: Annotated[int, Field(strict=True, ge=0)] = 0
    """Retrain this often (0: off). At least one trigger is on."""


class ModelSpec(Strict):
    """A model trained at the core on the lake and served for inference at the edge."""

    name: Name
    """The model's name; it names the objects in the model registry."""
    dataset: DatasetName
    """The dataset it is trained on."""
    train_at: Name
    """The core site that trains it (reads the lake, publishes to the registry)."""
    serve_at: list[Name]
    """Edge sites that serve it; each keeps a mirror of the registry."""
    retrain: Retrain = Field(default_factory=Retrain)
    """When it is trained again."""


class Dna(Strict):
    """The D-N-A (Data-Network-AI) layer: data ponds at the edge, a lake at the core, models
    trained at the core and served at the edge, over NATS JetStream on the data plane."""

    datasets: list[Dataset]
    """The datasets; at least one."""
    lake: Lake
    """The data lake at the core."""
    models: list[ModelSpec] = Field(default_factory=list)
    """The models trained on the datasets."""


class Defaults(Strict):
    """Settings every box inherits unless it overrides them."""

    ssh: SshAccess = Field(default_factory=SshAccess)
    """How to reach the boxes over SSH."""
    os: DebianRelease = DEFAULT_RELEASE
    """The Debian release of boxes that do not name theirs."""
    arch: Architecture = DEFAULT_ARCHITECTURE
    """The CPU architecture of boxes that do not name theirs."""


class Fleet(Strict):
    """The whole fleet: the single source of truth every other layer derives from."""

    name: Name
    """The fleet's name."""
    description: str = ""
    """Free text."""
    defaults: Defaults = Field(default_factory=Defaults)
    """Settings every box inherits."""
    planes: list[Plane] = Field(default_factory=default_planes)
    """The network planes; unset gives the SmartX P+M, C and D planes."""
    sites: list[Site]
    """The sites, each in one tier."""
    boxes: list[Box]
    """The boxes, each in one site."""
    overlays: list[Overlay] = Field(default_factory=list)
    """VXLAN overlays joining boxes across sites."""
    clusters: list[Cluster] = Field(default_factory=list)
    """Kubernetes clusters formed from the boxes."""
    artifacts: Artifacts = Field(default_factory=Artifacts)
    """Where binaries come from."""
    containerd: Containerd = Field(default_factory=Containerd)
    """Which containerd the boxes run."""
    bootstrap: Bootstrap = Field(default_factory=Bootstrap)
    """Which bootstrap roles run."""
    dna: Dna | None = None
    """The D-N-A data layer (ponds, lake, models); unset provisions none."""

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

    def os_of(self, box: Box) -> DebianRelease:
        return box.os or self.defaults.os

    def arch_of(self, box: Box) -> Architecture:
        return box.arch or self.defaults.arch

    def kubelet_version_of(self, box: Box, cluster: Cluster) -> str:
        return box.kubelet_version or cluster.kubernetes_version

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
