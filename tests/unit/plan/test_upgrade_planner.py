"""The Kubernetes upgrade and control-plane replacement planners over real fleet shapes: three
kubeadm control planes with workers, a mixed edge cluster (edge and end sites), and a k3s
cluster of end devices only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dnabox.errors import DnaboxError
from dnabox.inventory import Fleet, load_fleet
from dnabox.plan.upgrades import (
    ON_NODE,
    Step,
    UpgradeOptions,
    plan_k8s_upgrade,
    plan_replace_control_plane,
)


def box(name: str, site: str, octet: int, extra: str = "") -> str:
    return f"  - {{name: {name}, site: {site}, address: 10.10.{octet}.11{extra}}}\n"


def fleet_text(version: str = "1.36", containerd: str = 'containerd: {version: "2.1.4"}\n',
               kubelet: str = "") -> str:
    boxes = "".join([
        *(box(f"core-{i}", "core", 1, "") .replace("11}", f"{10 + i}}}") for i in range(1, 7)),
        box("edge-a-1", "edge-a", 2), box("edge-a-2", "edge-a", 2).replace(".11}", ".12}"),
        box("edge-b-1", "edge-b", 3),
        *(box(f"end-{i}", "end", 4).replace("11}", f"{10 + i}" + kubelet * (i == 2) + "}")
          for i in range(1, 5)),
    ])
    return f"""\
name: shapes
{containerd}sites:
  - {{name: core, tier: core}}
  - {{name: edge-a, tier: edge}}
  - {{name: edge-b, tier: edge}}
  - {{name: end, tier: end}}
boxes:
{boxes}clusters:
  - name: core
    kubernetes_version: "{version}"
    control_planes: [core-1, core-2, core-3]
    workers: [core-4, core-5, core-6]
  - name: edge
    kubernetes_version: "{version}"
    control_planes: [edge-a-1]
    workers: [end-1, edge-b-1, edge-a-2, end-2]
    pod_cidr: 10.245.0.0/16
    service_cidr: 10.112.0.0/12
  - name: pi
    distribution: k3s
    kubernetes_version: "{version}"
    control_planes: [end-3]
    workers: [end-4]
    pod_cidr: 10.246.0.0/16
    service_cidr: 10.128.0.0/12
"""


def load(tmp_path: Path, text: str) -> Fleet:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return load_fleet(path)


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return load(tmp_path, fleet_text())


def plan(fleet: Fleet, cluster: str, **options: object) -> list[Step]:
    chosen = [c for c in fleet.clusters if c.name == cluster]
    return plan_k8s_upgrade(fleet, chosen, UpgradeOptions(**{"to": "1.37", **options}))


def index(steps: list[Step], kind: str, node: str) -> int:
    return next(i for i, s in enumerate(steps) if s.kind == kind and s.node == node)


def node_order_holds(steps: list[Step], node: str, upgrade: str | None) -> None:
    """The node's own steps (ids end in these names) come in this order."""
    names = ["cordon", "drain", "stage", *([upgrade] if upgrade else []), "restart", "health",
             "uncordon"]
    ids = [s.id for s in steps]
    cluster = next(s.cluster for s in steps if s.node == node)
    positions = [ids.index(f"{cluster}:{node}:{name}") for name in names]
    assert positions == sorted(positions), (node, positions)


def test_three_control_planes_then_workers_in_batches(fleet: Fleet) -> None:
    steps = plan(fleet, "core", max_unavailable=2)
    assert steps[0].kind == "etcd_snapshot" and steps[0].via == "core-1"
    assert [s.kind for s in steps[1:4]] == ["stage_binaries", "upgrade_plan", "upgrade_apply"]
    assert steps[1].args == {"version": "1.37.0", "only": "kubeadm"}
    assert {s.node for s in steps if s.kind == "upgrade_apply"} == {"core-1"}
    assert {s.node for s in steps if s.kind == "upgrade_node"} == {
        "core-2", "core-3", "core-4", "core-5", "core-6"}
    # Control planes, one at a time, before any worker moves.
    last_control = max(i for i, s in enumerate(steps) if s.node in {"core-1", "core-2", "core-3"})
    first_worker = min(i for i, s in enumerate(steps) if s.node.startswith("core-") and
                       s.node not in {"core-1", "core-2", "core-3"})
    assert last_control < first_worker
    node_order_holds(steps, "core-1", None)
    for node in ("core-2", "core-3", "core-4", "core-5", "core-6"):
        node_order_holds(steps, node, "upgrade_node")
    # Batches of two: both nodes cordoned and drained before either is upgraded.
    batches = {s.batch: set() for s in steps if s.batch}
    for s in steps:
        if s.batch:
            batches[s.batch].add(s.node)
    assert list(batches.values()) == [{"core-4", "core-5"}, {"core-6"}]
    assert index(steps, "drain", "core-5") < index(steps, "stage_binaries", "core-4")
    # API steps run on the first control plane, node steps on the node.
    for s in steps:
        assert s.via == (s.node if s.kind in ON_NODE else "core-1"), s
    assert len({s.id for s in steps}) == len(steps)


def test_drain_has_a_timeout_and_the_check_wants_the_new_version(fleet: Fleet) -> None:
    steps = plan(fleet, "core", drain_timeout="120s", ready_timeout="900s", patch="3")
    drains = [s for s in steps if s.kind == "drain"]
    assert len(drains) == 6 and all(s.args == {"timeout": "120s"} for s in drains)
    checks = [s for s in steps if s.kind == "health_check"]
    assert {s.node for s in checks} == {f"core-{i}" for i in range(1, 7)}
    assert all(s.args == {"minor": "1.37", "timeout": "900s"} for s in checks)
    assert {s.args["version"] for s in steps if s.kind == "upgrade_apply"} == {"1.37.3"}


def test_mixed_edge_cluster_batches_site_by_site(fleet: Fleet) -> None:
    steps = plan(fleet, "edge", max_unavailable=2)
    batches: dict[int, list[str]] = {}
    for s in steps:
        if s.batch and s.kind == "cordon":
            batches.setdefault(s.batch, []).append(s.node)
    # Edge sites first (in inventory order), end devices last; never two sites in a batch.
    assert list(batches.values()) == [["edge-a-2"], ["edge-b-1"], ["end-1", "end-2"]]
    for node in ("edge-a-2", "edge-b-1", "end-1", "end-2"):
        node_order_holds(steps, node, "upgrade_node")


def test_end_only_k3s_cluster_follows_the_k3s_procedure(fleet: Fleet) -> None:
    steps = plan(fleet, "pi")
    kinds = {s.kind for s in steps}
    assert not kinds & {"upgrade_plan", "upgrade_apply", "upgrade_node"}
    assert steps[0].kind == "etcd_snapshot" and steps[0].node == "end-3"
    assert index(steps, "uncordon", "end-3") < index(steps, "cordon", "end-4")
    node_order_holds(steps, "end-3", None)
    node_order_holds(steps, "end-4", None)


def test_several_clusters_in_one_run_and_ids_are_stable(fleet: Fleet) -> None:
    options = UpgradeOptions(to="1.37", max_unavailable=1)
    first = plan_k8s_upgrade(fleet, fleet.clusters, options)
    again = plan_k8s_upgrade(fleet, fleet.clusters, options)
    assert [s.id for s in first] == [s.id for s in again]
    clusters = [s.cluster for s in first]
    assert clusters == sorted(clusters, key=["core", "edge", "pi"].index)
    assert sum(1 for s in first if s.kind == "health_check") == 6 + 5 + 2


@pytest.mark.parametrize(("text", "to", "message"), [
    (fleet_text(version="1.35", containerd="containerd: {version: \"2.1.4\"}\n"), "1.37",
     "jumps 2 minors"),
    (fleet_text(), "1.36", "is not newer"),
    (fleet_text(), "1.38", "Kubernetes 1.38 is not supported"),
    (fleet_text(version="1.35", containerd=""), "1.36", "needs containerd 2"),
    (fleet_text(kubelet=', kubelet_version: "1.33"'), "1.37",
     "end-2's kubelet is 1.33: 1.37 would put it 4 minors behind"),
])
def test_refused_upgrades_say_why(tmp_path: Path, text: str, to: str, message: str) -> None:
    fleet = load(tmp_path, text)
    with pytest.raises(DnaboxError, match=message):
        plan_k8s_upgrade(fleet, [fleet.clusters[1]], UpgradeOptions(to=to))


def test_max_unavailable_must_be_positive(fleet: Fleet) -> None:
    with pytest.raises(DnaboxError, match="at least 1"):
        plan(fleet, "core", max_unavailable=0)


def replaced(tmp_path: Path, old: str, new: str, control: str) -> Fleet:
    text = fleet_text().replace("control_planes: [core-1, core-2, core-3]",
                                f"control_planes: {control}")
    text = text.replace("workers: [core-4, core-5, core-6]", "workers: [core-5, core-6]")
    return load(tmp_path, text)


def test_replace_a_failed_kubeadm_control_plane(tmp_path: Path) -> None:
    fleet = replaced(tmp_path, "core-2", "core-4", "[core-1, core-4, core-3]")
    steps = plan_replace_control_plane(fleet, fleet.clusters[0], "core-2", "core-4")
    assert [s.kind for s in steps] == ["etcd_snapshot", "remove_etcd_member", "delete_node",
                                       "join", "health_check"]
    assert all(s.via == "core-1" for s in steps if s.kind != "join")
    assert steps[1].node == "core-2" and steps[3].node == "core-4"
    assert steps[4].args["minor"] == "1.36"


def test_replace_a_k3s_server_lets_k3s_drop_the_member(tmp_path: Path) -> None:
    text = fleet_text().replace("control_planes: [end-3]\n    workers: [end-4]",
                                "control_planes: [end-3, end-4, end-1]")
    text = text.replace("workers: [end-1, edge-b-1, edge-a-2, end-2]",
                        "workers: [edge-b-1, edge-a-2, end-2]")
    fleet = load(tmp_path, text)
    steps = plan_replace_control_plane(fleet, fleet.clusters[2], "end-9", "end-1")
    assert [s.kind for s in steps] == ["etcd_snapshot", "delete_node", "join", "health_check"]


@pytest.mark.parametrize(("old", "new", "control", "message"), [
    ("core-2", "core-4", "[core-1, core-2, core-3]", "core-4 is not a control plane"),
    ("core-3", "core-4", "[core-1, core-4, core-3]", "core-3 is still a member"),
    ("core-2", "core-4", "[core-4, core-1, core-3]", "listed first"),
    ("core-2", "core-4", "[core-4]", "no other control plane to keep etcd"),
])
def test_refused_replacements_say_why(tmp_path: Path, old: str, new: str, control: str,
                                      message: str) -> None:
    fleet = replaced(tmp_path, old, new, control)
    with pytest.raises(DnaboxError, match=message):
        plan_replace_control_plane(fleet, fleet.clusters[0], old, new)


def test_the_runbook_journals_each_step_and_resumes_after_the_last_done(
        fleet: Fleet, tmp_path: Path) -> None:
    from dnabox.locations import Locations
    from dnabox.provision.events import Event
    from dnabox.provision.runbooks import RunbookContext, k8s_upgrade

    events: list[Event] = []
    ctx = RunbookContext(fleet, Locations(project=tmp_path, state=tmp_path / "state"),
                         events.append)
    ran: list[str] = []

    def failing_at(step_id: str) -> Callable[[Step], list[str]]:
        def run(step: Step) -> list[str]:
            ran.append(step.id)
            return ["drain timed out (a PodDisruptionBudget)"] if step.id == step_id else []
        return run

    options = UpgradeOptions(to="1.37", max_unavailable=2)
    first = k8s_upgrade(ctx, ["edge"], options, resume=False,
                        runner=failing_at("edge:end-2:drain"))
    assert not first.ok and "stopped at step edge:end-2:drain" in first.message
    assert ran[-1] == "edge:end-2:drain" and ran[0] == "edge:etcd-snapshot"
    done_before = len(ran) - 1
    ran.clear()
    second = k8s_upgrade(ctx, ["edge"], options, resume=True, runner=failing_at(""))
    assert second.ok and ran[0] == "edge:end-2:drain"
    assert len(ran) + done_before == len(second.batches)
    assert sum(1 for b in second.batches if b["status"] == "skipped") == done_before
    assert 'set kubernetes_version: "1.37" for edge' in second.message
    # Without --resume every step runs again.
    ran.clear()
    k8s_upgrade(ctx, ["edge"], options, resume=False, runner=failing_at(""))
    assert len(ran) == len(second.batches)


def test_the_runbook_refuses_an_unknown_cluster(fleet: Fleet, tmp_path: Path) -> None:
    from dnabox.locations import Locations
    from dnabox.provision.runbooks import RunbookContext, k8s_upgrade

    ctx = RunbookContext(fleet, Locations(project=tmp_path, state=tmp_path / "s"),
                         lambda _e: None)
    with pytest.raises(DnaboxError, match="no cluster named nope"):
        k8s_upgrade(ctx, ["nope"], UpgradeOptions(to="1.37"), resume=False,
                    runner=lambda _s: [])
