"""The role catalogue: every bootstrap role once, with everything dnabox knows about it.

The planner's order, the packages the roles, the lab repository and the offline bundle
install, the direct path's scripts, the health checks between upgrade batches, the roles the
cluster formation runs and the artifacts each role needs are all views of ``CATALOGUE``.
Adding a role is one entry here, its Ansible role directory (``playbooks/roles/<name>``), its
managed files in ``templates/files.yml`` and its line in ``playbooks/site.yml`` (the tests
name each missing piece: they iterate this catalogue). See docs/DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dnabox.inventory.model import Box, Fleet
from dnabox.locations import ON_BOX_STATE_DIR
from dnabox.plan.accelerators import TOOLKIT_ARTIFACT, has_nvidia
from dnabox.plan.containerd import STATIC_ARTIFACT, containerd_for
from dnabox.plan.runtimes import runtimes_for

# Whether a role applies to a box of a fleet (before the fleet's skip_roles).
AppliesTo = Callable[[Fleet, Box], bool]


def every_box(fleet: Fleet, box: Box) -> bool:
    return True


def with_runtime(name: str) -> AppliesTo:
    def applies(fleet: Fleet, box: Box) -> bool:
        return any(r.name == name for r in runtimes_for(fleet, box))
    return applies


def in_a_cluster(fleet: Fleet, box: Box) -> bool:
    return fleet.cluster_of(box.name) is not None


def in_the_dna_layer(fleet: Fleet, box: Box) -> bool:
    # Imported here: plan.dna_vars builds the whole D-N-A topology, only fleets with a
    # dna: section pay for it.
    from dnabox.plan.dna_vars import in_dna_layer
    return fleet.dna is not None and in_dna_layer(fleet, box)


def runs_dna_services(fleet: Fleet, box: Box) -> bool:
    from dnabox.plan.dna_vars import runs_services
    return fleet.dna is not None and runs_services(fleet, box)


@dataclass(frozen=True)
class GeneratedFile:
    """A file a role ships that is no template: made in Python from the plan (program code,
    JSON). The planner fingerprints it like a rendered one; Ansible copies it."""

    dest: str
    mode: str
    content: str


def dna_service_files(fleet: Fleet, box: Box) -> tuple[GeneratedFile, ...]:
    from dnabox.plan.dna import build_topology
    from dnabox.plan.dna_container import box_files
    topology = build_topology(fleet)
    if topology is None:
        return ()
    return tuple(GeneratedFile(dest, mode, content)
                 for dest, (mode, content) in box_files(topology, box.name).items())


@dataclass(frozen=True)
class RoleSpec:
    """One bootstrap role. Its place in ``CATALOGUE`` is its order on a box."""

    name: str
    applies: AppliesTo = every_box
    # Debian packages the role installs (the inventory hands them over as <name>_packages).
    packages: tuple[str, ...] = ()
    # The managed script on the box holding the steps that are neither packages nor files
    # (its --reload is what the role's handlers run); None: packages and files are the role.
    apply_script: str | None = None
    # Whether the direct path (dnabox.plan.direct_program) may run it instead of Ansible.
    direct: bool = False
    # What "healthy after an upgrade" means, checked over SSH between upgrade batches.
    health_check: str = "true"
    # A cheap command that exits 0 while the role's daemons run: `dnabox up` runs it in its
    # preflight and re-runs the role where it fails (a daemon that died is repaired).
    liveness: str | None = None
    # Run by the control_plane/join units, in order, not by the per-site bootstrap.
    formation: bool = False
    # Binary artifacts (what Debian does not ship) the role needs on every box it applies to.
    artifacts: tuple[str, ...] = ()
    # ... or, for a formation role, per Kubernetes distribution of the box's cluster.
    artifacts_by_distribution: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # ... or because of what the box is (its containerd, its GPUs).
    artifacts_by_box: Callable[[Fleet, Box], tuple[str, ...]] | None = None
    # Files the role ships besides its templates (templates/files.yml), made in Python per
    # box; fingerprinted, diffed and shipped like the rendered ones (both paths).
    generated: Callable[[Fleet, Box], tuple[GeneratedFile, ...]] | None = None

    def artifacts_for(self, fleet: Fleet, box: Box) -> tuple[str, ...]:
        extra = self.artifacts_by_box(fleet, box) if self.artifacts_by_box else ()
        cluster = fleet.cluster_of(box.name)
        if cluster is not None and self.artifacts_by_distribution:
            return self.artifacts + self.artifacts_by_distribution[cluster.distribution] + extra
        return self.artifacts + extra


def runtime_artifacts(fleet: Fleet, box: Box) -> tuple[str, ...]:
    """containerd 2's static release where the fleet asks for it (Debian ships 1.x), the
    NVIDIA container toolkit on boxes with NVIDIA GPUs."""
    static = (STATIC_ARTIFACT,) if containerd_for(fleet, box).source == "static" else ()
    return static + ((TOOLKIT_ARTIFACT,) if has_nvidia(box) else ())


NODE_READY_CHECK = (
    "systemctl is-active --quiet dnabox-kubernetes.service && "
    "for c in /etc/kubernetes/kubelet.conf /var/lib/rancher/k3s/agent/kubelet.kubeconfig; do "
    "[ -f $c ] && k=$c; done; "
    "for b in /usr/local/bin/kubectl '/usr/local/bin/k3s kubectl'; do "
    "[ -x ${b%% *} ] && cmd=$b; done; "
    "[ \"$($cmd --kubeconfig $k get node \"$(hostname)\" "
    "-o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
)

# Order matters: the runtime before its extra handlers, OVS before the CNI that uses it,
# Kubernetes last.
CATALOGUE: tuple[RoleSpec, ...] = (
    RoleSpec(
        "base",
        # python3-apt: Ansible's apt module needs it on the box; iputils-ping: first aid.
        packages=("ca-certificates", "kmod", "procps", "iptables", "chrony", "openssh-server",
                  "python3-apt", "iputils-ping"),
        apply_script="/usr/local/sbin/dnabox-base-apply", direct=True,
        health_check=f"test -d {ON_BOX_STATE_DIR}",
    ),
    RoleSpec(
        "container_runtime", packages=("containerd", "runc", "crun"),
        apply_script="/usr/local/sbin/dnabox-containerd-apply", direct=True,
        artifacts_by_box=runtime_artifacts,
        health_check="ctr version >/dev/null",
    ),
    RoleSpec("kata", applies=with_runtime("kata"), artifacts=("kata-static",),
             health_check="command -v kata-runtime >/dev/null"),
    RoleSpec("apptainer", applies=with_runtime("apptainer"), artifacts=("apptainer",),
             health_check="command -v apptainer >/dev/null"),
    RoleSpec(
        "ovs", packages=("openvswitch-switch",),
        apply_script="/usr/local/sbin/dnabox-ovs-apply", direct=True,
        health_check="ovs-vsctl show >/dev/null",
    ),
    # ovs-cni (secondary networks on the OVS planes) is installed when declared, never
    # required: a declared artifact keeps the role off the direct path.
    RoleSpec("cni", packages=("containernetworking-plugins",), direct=True,
             health_check="test -d /etc/cni/net.d"),
    # D-N-A: nats-server (hub at the lake's site, a leaf per edge site) and its streams,
    # on the overlay/data plane; its clients' credentials on every box of the layer.
    RoleSpec(
        "dna", applies=in_the_dna_layer, packages=("nats-server", "python3"),
        apply_script="/usr/local/sbin/dnabox-dna-apply", direct=True,
        health_check="/usr/local/sbin/dnabox-dna-apply --probe",
        liveness="/usr/local/sbin/dnabox-dna-apply --probe",
    ),
    # The reference X+AI services of the box (trainer at the core, inference at serving
    # edges, the collector's code and config on end devices) as containerd containers:
    # after containerd and the dna role (the services' passwords, the NATS servers).
    RoleSpec(
        "dna_services", applies=runs_dna_services, packages=("python3", "python3-numpy"),
        apply_script="/usr/local/sbin/dnabox-dna-services-apply", direct=True,
        health_check="/usr/local/sbin/dnabox-dna-services-apply --probe",
        liveness="/usr/local/sbin/dnabox-dna-services-apply --probe",
        generated=dna_service_files,
    ),
    RoleSpec(
        "kubernetes", applies=in_a_cluster, formation=True,
        artifacts_by_distribution={"kubeadm": ("kubeadm", "kubelet", "kubectl"),
                                   "k3s": ("k3s",)},
        # The node agent runs and the API server sees this node Ready (kubelet's own
        # credentials may read its node: kubeadm's kubelet.conf, k3s's kubelet.kubeconfig).
        health_check=NODE_READY_CHECK,
    ),
)

ROLE_ORDER: tuple[str, ...] = tuple(spec.name for spec in CATALOGUE)
_BY_NAME: dict[str, RoleSpec] = {spec.name: spec for spec in CATALOGUE}


def role_spec(name: str) -> RoleSpec:
    return _BY_NAME[name]


def formation_roles() -> frozenset[str]:
    return frozenset(spec.name for spec in CATALOGUE if spec.formation)


def all_packages() -> list[str]:
    """Every package of every role: the lab's repository and `dnabox bundle build` carry them,
    so an air-gapped box never lacks one."""
    return sorted({pkg for spec in CATALOGUE for pkg in spec.packages})
