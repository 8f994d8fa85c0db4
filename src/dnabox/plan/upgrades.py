"""Kubernetes lifecycle runbooks as pure planners: a typed, ordered list of steps per run.

``plan_k8s_upgrade`` moves clusters one minor up the way upstream documents it: an etcd
snapshot first; kubeadm clusters upgrade the first control plane (``kubeadm upgrade plan``
then ``apply``), the other control planes (``kubeadm upgrade node``), then the workers in
batches of ``max_unavailable``: each node is cordoned, drained through the API (the eviction
API, so PodDisruptionBudgets hold, with a timeout), upgraded, checked Ready at the new
version and uncordoned. k3s clusters follow k3s's own procedure: a snapshot of the embedded
etcd, servers one at a time, then agents in batches, each with the same drain and check.
``plan_replace_control_plane`` removes a failed control plane from etcd and the API and
joins its replacement.

Steps carry stable ids: the executor (dnabox.provision.runbooks) journals each finished
step, so ``--resume`` continues after the last one that finished.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dnabox.errors import DnaboxError
from dnabox.inventory.model import Cluster, Fleet
from dnabox.inventory.platforms import (
    KUBELET_MAX_SKEW,
    KUBERNETES_MINORS,
    LAST_KUBERNETES_ON_CONTAINERD_1,
    minor_number,
)

StepKind = Literal[
    "etcd_snapshot",        # on a control plane: save etcd before anything moves
    "stage_binaries",       # on the node: fetch and install the new release's binaries
    "upgrade_plan",         # first kubeadm control plane: `kubeadm upgrade plan`
    "upgrade_apply",        # first kubeadm control plane: `kubeadm upgrade apply`
    "upgrade_node",         # other kubeadm nodes: `kubeadm upgrade node`
    "cordon",               # through the API (via a control plane)
    "drain",                # through the API, eviction respects PodDisruptionBudgets
    "restart_node_agent",   # on the node: kubelet / k3s restarted on the new binary
    "health_check",         # through the API: Ready, and kubeletVersion is the target
    "uncordon",             # through the API
    "remove_etcd_member",   # via a healthy control plane: the failed member leaves etcd
    "delete_node",          # through the API: the failed node object goes
    "join",                 # the replacement box is bootstrapped and joins (dnabox up)
]
# Steps that run on the node itself; the others run on ``via`` (a control plane whose
# admin credentials reach the API).
ON_NODE: frozenset[str] = frozenset(
    {"stage_binaries", "upgrade_plan", "upgrade_apply", "upgrade_node", "restart_node_agent"})


@dataclass(frozen=True)
class Step:
    id: str  # stable and unique within the run: the journal's unit name
    cluster: str
    kind: StepKind
    node: str  # the node the step is about
    via: str  # the box the step's commands run on
    batch: int = 0  # 0: control planes, 1...: worker batches
    args: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "cluster": self.cluster, "kind": self.kind, "node": self.node,
                "via": self.via, "batch": self.batch, "args": dict(self.args)}


@dataclass(frozen=True)
class UpgradeOptions:
    to: str
    max_unavailable: int = 1
    drain_timeout: str = "300s"
    ready_timeout: str = "600s"
    patch: str = "0"  # the patch release the artifacts carry: v<to>.<patch>


def _node_steps(cluster: Cluster, node: str, via: str, batch: int, version: str,
                options: UpgradeOptions, upgrade: StepKind | None) -> Iterator[Step]:
    """Drain, upgrade, check and return one node (upgrade: the kubeadm step, if any)."""
    prefix = f"{cluster.name}:{node}"
    drain_args = {"timeout": options.drain_timeout}
    yield Step(f"{prefix}:cordon", cluster.name, "cordon", node, via, batch)
    yield Step(f"{prefix}:drain", cluster.name, "drain", node, via, batch, drain_args)
    yield Step(f"{prefix}:stage", cluster.name, "stage_binaries", node, node, batch,
               {"version": version})
    if upgrade is not None:
        yield Step(f"{prefix}:{upgrade}", cluster.name, upgrade, node, node, batch,
                   {"version": version})
    yield Step(f"{prefix}:restart", cluster.name, "restart_node_agent", node, node, batch)
    yield Step(f"{prefix}:health", cluster.name, "health_check", node, via, batch,
               {"minor": options.to, "timeout": options.ready_timeout})
    yield Step(f"{prefix}:uncordon", cluster.name, "uncordon", node, via, batch)


def _check_upgrade(fleet: Fleet, cluster: Cluster, options: UpgradeOptions) -> None:
    current, target = minor_number(cluster.kubernetes_version), minor_number(options.to)
    where = f"cluster {cluster.name} runs Kubernetes {cluster.kubernetes_version}"
    if options.to not in KUBERNETES_MINORS:
        raise DnaboxError(f"Kubernetes {options.to} is not supported",
                          hint=f"supported minors: {', '.join(KUBERNETES_MINORS)}")
    if target <= current:
        raise DnaboxError(f"{where}: --to {options.to} is not newer",
                          hint="an upgrade moves forward one minor; downgrades restore a "
                               "snapshot instead")
    if target - current > 1:
        raise DnaboxError(
            f"{where}: --to {options.to} jumps {target - current} minors",
            hint=f"upgrade one minor at a time: --to 1.{current + 1} first "
                 "(kubeadm and the skew policy allow no more)")
    if fleet.containerd.version is None and target > minor_number(
            LAST_KUBERNETES_ON_CONTAINERD_1):
        raise DnaboxError(
            f"{where}: Kubernetes {options.to} needs containerd 2 and the boxes run Debian's 1.x",
            hint="set containerd.version (e.g. 2.1.4), declare artifact containerd-static and "
                 "run `dnabox up` before the upgrade")
    for name in cluster.members:
        kubelet = minor_number(fleet.kubelet_version_of(fleet.box(name), cluster))
        if target - kubelet > KUBELET_MAX_SKEW and name not in cluster.control_planes:
            raise DnaboxError(
                f"{name}'s kubelet is 1.{kubelet}: {options.to} would put it {target - kubelet}"
                f" minors behind the API server (at most {KUBELET_MAX_SKEW})",
                hint=f"upgrade {name} first (its kubelet_version in the inventory)")
    if options.max_unavailable < 1:
        raise DnaboxError("--max-unavailable must be at least 1")


def plan_k8s_upgrade(fleet: Fleet, clusters: Sequence[Cluster],
                     options: UpgradeOptions) -> list[Step]:
    """Every step that moves ``clusters`` to ``options.to``, cluster after cluster."""
    steps: list[Step] = []
    for cluster in clusters:
        _check_upgrade(fleet, cluster, options)
        version = f"{options.to}.{options.patch}"
        first, others = cluster.control_planes[0], cluster.control_planes[1:]
        name = cluster.name
        if cluster.distribution == "kubeadm":
            steps.append(Step(f"{name}:etcd-snapshot", name, "etcd_snapshot", first, first,
                              args={"tag": f"pre-{options.to}"}))
            steps.append(Step(f"{name}:{first}:stage-kubeadm", name, "stage_binaries", first,
                              first, args={"version": version, "only": "kubeadm"}))
            steps.append(Step(f"{name}:{first}:upgrade-plan", name, "upgrade_plan", first, first,
                              args={"version": version}))
            steps.append(Step(f"{name}:{first}:upgrade-apply", name, "upgrade_apply", first,
                              first, args={"version": version}))
            steps += _node_steps(cluster, first, first, 0, version, options, None)
            for node in others:
                steps += _node_steps(cluster, node, first, 0, version, options, "upgrade_node")
            upgrade: StepKind | None = "upgrade_node"
        else:
            steps.append(Step(f"{name}:etcd-snapshot", name, "etcd_snapshot", first, first,
                              args={"tag": f"pre-{options.to}"}))
            # k3s servers one at a time (the first, holding the datastore, first); the new
            # binary is the whole upgrade: restarted, it migrates what it needs.
            for node in cluster.control_planes:
                steps += _node_steps(cluster, node, first, 0, version, options, None)
            upgrade = None
        for number, batch in enumerate(worker_batches(fleet, cluster, options.max_unavailable),
                                       start=1):
            # A batch is cordoned and drained together, then each node is upgraded, so
            # at most max_unavailable workers are out at once.
            per_node = [list(_node_steps(cluster, node, first, number, version, options,
                                         upgrade)) for node in batch]
            for kind in ("cordon", "drain"):
                steps += [s for node_steps in per_node for s in node_steps if s.kind == kind]
            steps += [s for node_steps in per_node for s in node_steps
                      if s.kind not in {"cordon", "drain"}]
    return steps


def worker_batches(fleet: Fleet, cluster: Cluster, size: int) -> list[list[str]]:
    """Workers site by site (core first, end last), at most ``size`` per batch."""
    order = {"core": 0, "edge": 1, "end": 2}
    sites = [s.name for s in fleet.sites]
    workers = sorted(cluster.workers, key=lambda n: (
        order[fleet.tier_of(fleet.box(n))], sites.index(fleet.box(n).site)))
    batches: list[list[str]] = []
    for _, members in itertools.groupby(workers, key=lambda n: fleet.box(n).site):
        iterator = iter(list(members))
        while chunk := list(itertools.islice(iterator, max(1, size))):
            batches.append(chunk)
    return batches


def plan_replace_control_plane(fleet: Fleet, cluster: Cluster, old: str,
                               new: str) -> list[Step]:
    """Remove failed control plane ``old`` from etcd and the API, then join ``new``.

    The inventory already describes the result: ``new`` is listed in the cluster's
    ``control_planes`` and ``old`` is not. The first listed control plane (never the new
    box) performs the API and etcd steps.
    """
    if new not in cluster.control_planes:
        raise DnaboxError(f"{new} is not a control plane of cluster {cluster.name}",
                          hint=f"list {new} in clusters[{cluster.name}].control_planes in "
                               f"place of {old} first")
    if old in cluster.members:
        raise DnaboxError(f"{old} is still a member of cluster {cluster.name}",
                          hint=f"replace {old} with {new} in the cluster's control_planes")
    healthy = [n for n in cluster.control_planes if n != new]
    if not healthy:
        raise DnaboxError(
            f"cluster {cluster.name} has no other control plane to keep etcd: replacing its "
            "only one is a restore from an etcd snapshot, not a replacement",
            hint="restore the cluster from its last etcd snapshot onto the new box")
    if new == cluster.control_planes[0]:
        raise DnaboxError(f"{new} is listed first in {cluster.name}'s control_planes",
                          hint="the first control plane forms the cluster; list a surviving "
                               "one first")
    via = healthy[0]
    name = cluster.name
    steps = [Step(f"{name}:etcd-snapshot", name, "etcd_snapshot", via, via,
                  args={"tag": f"pre-replace-{old}"})]
    if cluster.distribution == "kubeadm":
        steps.append(Step(f"{name}:{old}:remove-member", name, "remove_etcd_member", old, via))
    # k3s removes a server's etcd member when its node object is deleted.
    steps.append(Step(f"{name}:{old}:delete-node", name, "delete_node", old, via))
    steps.append(Step(f"{name}:{new}:join", name, "join", new, new))
    steps.append(Step(f"{name}:{new}:health", name, "health_check", new, via,
                      args={"minor": cluster.kubernetes_version, "timeout": "600s"}))
    return steps
