"""GPU nodes and CPU architectures, over the playground fleet (two A100 boxes in the core, a
Raspberry Pi at the end site): the `nvidia` handler and RuntimeClass only where GPUs are,
their labels, the device plugin / GPU Operator, the trainer's GPU request, and artifacts
and bundles per architecture."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from containerd_merge import box_containerd, runtimes_of

from dnabox.adapters.bundle import build_bundle
from dnabox.errors import InventoryError
from dnabox.inventory import Fleet, load_fleet
from dnabox.inventory.platforms import KUBERNETES_MINORS
from dnabox.layers import baseline, gpus, runtimes
from dnabox.locations import Locations
from dnabox.plan.accelerators import gpu_workload
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.artifacts import ArtifactMissing, check_artifacts, missing_artifacts

ROOT = Path(__file__).resolve().parents[3]
GPU_BOXES = {"core-gist-1", "core-gist-2"}


def playground() -> Fleet:
    return load_fleet(ROOT / "inventory" / "smartx-playground.yaml")


def edited(tmp_path: Path, **changes: Any) -> Fleet:
    data = yaml.safe_load((ROOT / "inventory" / "smartx-playground.yaml").read_text())
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_fleet(path)


def strict(obj: dict[str, Any]) -> None:
    for version in KUBERNETES_MINORS:
        kubernetes_validate.validate(obj, version, strict=True)


def test_nvidia_runtime_class_only_where_the_handler_exists(tmp_path: Path) -> None:
    fleet = playground()
    for cluster in fleet.clusters:
        classes = {rc["metadata"]["name"]: rc for rc in runtimes.runtime_classes(fleet, cluster)}
        assert ("nvidia" in classes) == (cluster.name == "core")
    core = next(c for c in fleet.clusters if c.name == "core")
    rc = next(r for r in runtimes.runtime_classes(fleet, core) if r["handler"] == "nvidia")
    ((label, value),) = rc["scheduling"]["nodeSelector"].items()
    selected = {p["metadata"]["name"] for p in baseline.node_patches(fleet, core)
                if p["metadata"]["labels"].get(label) == value}
    assert selected == GPU_BOXES
    for name in core.members:  # the handler is in containerd exactly on those nodes
        files = box_containerd(fleet, name, tmp_path / name)
        files.merge("2.1.4")
        assert ("nvidia" in runtimes_of(files.parsed())) == (name in GPU_BOXES), name


def test_gpu_nodes_are_labelled_and_the_kubelet_may_set_the_labels() -> None:
    fleet = playground()
    core = next(c for c in fleet.clusters if c.name == "core")
    labels = {p["metadata"]["name"]: p["metadata"]["labels"]
              for p in baseline.node_patches(fleet, core)}
    for name in GPU_BOXES:
        assert labels[name]["nvidia.com/gpu.present"] == "true"
        assert labels[name]["dnabox.io/gpu-count"] == "4"
        assert labels[name]["dnabox.io/gpu-model"] == "A100-80GB"
    assert "nvidia.com/gpu.present" not in labels["core-gist-3"]
    hosts = render_ansible_inventory(fleet, Locations.discover(ROOT))["all"]["hosts"]
    assert hosts["core-gist-1"]["dnabox_kubelet_labels"]["nvidia.com/gpu.present"] == "true"
    assert hosts["core-gist-1"]["dnabox_cdi"] is True
    assert hosts["core-gist-3"]["dnabox_cdi"] is False


def test_device_plugin_is_strictly_valid_and_runs_with_the_nvidia_class() -> None:
    fleet = playground()
    core = next(c for c in fleet.clusters if c.name == "core")
    plan = gpus.gpu_plan(fleet, core)
    assert plan is not None and plan.stack == "device-plugin" and set(plan.nodes) == GPU_BOXES
    (daemonset,) = plan.manifests
    strict(daemonset)
    spec = daemonset["spec"]["template"]["spec"]
    classes = {rc["metadata"]["name"] for rc in runtimes.runtime_classes(fleet, core)}
    assert spec["runtimeClassName"] in classes
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert all(gpus.gpu_plan(fleet, c) is None for c in fleet.clusters if c.name != "core")


def test_gpu_operator_leaves_the_toolkit_to_dnabox(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "inventory" / "smartx-playground.yaml").read_text())
    data["clusters"][0]["gpu_stack"] = "gpu-operator"
    fleet = edited(tmp_path, clusters=data["clusters"])
    plan = gpus.gpu_plan(fleet, fleet.clusters[0])
    assert plan is not None and plan.stack == "gpu-operator"
    (namespace,) = plan.manifests
    strict(namespace)
    (chart,) = plan.charts
    assert chart.namespace == namespace["metadata"]["name"]
    assert chart.values["toolkit"] == {"enabled": False}
    assert chart.values["operator"]["runtimeClass"] == "nvidia"
    assert chart.version.startswith("v") and chart.repo.startswith("https://")


def test_training_workloads_request_gpus_when_the_core_has_them() -> None:
    fleet = playground()
    core = next(c for c in fleet.clusters if c.name == "core")
    workload = gpu_workload(fleet, core)
    assert workload is not None and workload.gpus == 4
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer"},
           "spec": {"containers": [{"name": "trainer", "image": "trainer:1",
                                    "resources": {"requests": {"cpu": "8"}}},
                                   {"name": "sidecar", "image": "s:1"}]}}
    pod["spec"] = workload.apply_to(pod["spec"], "trainer")
    strict(pod)
    trainer, sidecar = pod["spec"]["containers"]
    assert trainer["resources"] == {"requests": {"cpu": "8"}, "limits": {"nvidia.com/gpu": "4"}}
    assert "resources" not in sidecar
    assert pod["spec"]["runtimeClassName"] == "nvidia"
    assert gpu_workload(fleet, core, gpus=9) is not None
    assert gpu_workload(fleet, core, gpus=9).gpus == 4  # type: ignore[union-attr]
    assert gpu_workload(fleet, core, gpus=1).gpus == 1  # type: ignore[union-attr]
    edge = next(c for c in fleet.clusters if c.name == "edge-kaist")
    assert gpu_workload(fleet, edge) is None


def _entry(name: str, role: str, arch: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "url": f"https://example.invalid/{arch}/{name}",
                             "sha256": hashlib.sha256(f"{name}{arch}".encode()).hexdigest(),
                             "role": role}
    if arch:
        entry["arch"] = arch
    return entry


def all_artifacts(*, arm64: bool) -> list[dict[str, Any]]:
    archs = ["amd64", "arm64"] if arm64 else ["amd64"]
    files = [_entry(n, "kubernetes", a) for n in ("kubeadm", "kubelet", "kubectl", "k3s")
             for a in archs]
    files += [_entry("containerd-static", "container_runtime", a) for a in archs]
    files += [_entry("nvidia-container-toolkit", "container_runtime", "amd64")]
    files += [_entry("kata-static", "kata", "amd64"), _entry("apptainer", "apptainer", "amd64")]
    return files


def test_an_arm64_box_without_arm64_artifacts_is_named(tmp_path: Path) -> None:
    fleet = edited(tmp_path, artifacts={"source": "online", "files": all_artifacts(arm64=False)})
    missing = missing_artifacts(fleet)
    assert {(m.name, m.boxes) for m in missing} == {
        ("containerd-static", ("end-gist-pi-1",)), ("k3s", ("end-gist-pi-1",))}
    assert all(m.arch == "arm64" and "no arm64 entry (declared for amd64)" in m.reason
               for m in missing)
    with pytest.raises(ArtifactMissing, match=r"k3s .*on end-gist-pi-1 \(arm64\)") as caught:
        check_artifacts(fleet)
    assert "arch: arm64" in (caught.value.hint or "")
    complete = edited(tmp_path, artifacts={"source": "online",
                                           "files": all_artifacts(arm64=True)})
    assert missing_artifacts(complete) == []
    hosts = render_ansible_inventory(complete, Locations.discover(ROOT))["all"]["hosts"]
    pi = {a["name"]: a for a in hosts["end-gist-pi-1"]["dnabox_box_artifacts"]}
    assert pi["k3s"]["arch"] == "arm64" and pi["k3s"]["bundle_path"] == "files/arm64/k3s"
    assert "nvidia-container-toolkit" not in pi
    core = {a["name"] for a in hosts["core-gist-1"]["dnabox_box_artifacts"]}
    assert "nvidia-container-toolkit" in core
    required = hosts["core-gist-1"]["dnabox_required_artifacts"]["container_runtime"]
    assert required == ["containerd-static", "nvidia-container-toolkit"]


class TwoArchApt:
    """Fake apt: a real tiny .deb per package and architecture (dpkg-deb)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def closure(self, packages: list[str], arch: str) -> list[str]:
        self.asked.append(arch)
        return sorted(packages)

    def download(self, packages: list[str], into: Path, arch: str) -> None:
        for name in packages:
            root = into.parent / "build" / arch / name
            (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
            (root / "DEBIAN" / "control").write_text(
                f"Package: {name}\nVersion: 1.0\nArchitecture: {arch}\n"
                "Maintainer: dnabox tests <t@example.invalid>\nDescription: fake\n")
            subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(root),
                            str(into / f"{name}_1.0_{arch}.deb")], check=True,
                           capture_output=True)


def test_the_bundle_carries_every_architecture_of_the_fleet(tmp_path: Path) -> None:
    sources = tmp_path / "upstream"
    sources.mkdir()
    files = []
    for arch in ("amd64", "arm64"):
        body = f"k3s for {arch}".encode()
        (sources / arch).write_bytes(body)
        files.append({"name": "k3s", "url": (sources / arch).as_uri(), "role": "kubernetes",
                      "sha256": hashlib.sha256(body).hexdigest(), "arch": arch})
    data = yaml.safe_load((ROOT / "inventory" / "smartx-playground.yaml").read_text())
    data.pop("containerd")
    for box in data["boxes"]:
        box.pop("accelerators", None)
    data["clusters"] = [{"name": "pi", "distribution": "k3s", "kubernetes_version": "1.35",
                         "control_planes": ["end-gist-pi-1"], "workers": ["end-gist-nuc-1"]}]
    data["artifacts"] = {"source": "online", "files": files}
    path = tmp_path / "pi.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    fleet = load_fleet(path)
    apt = TwoArchApt()
    out = tmp_path / "bundle"
    report = build_bundle(fleet, out, source=apt)
    assert apt.asked == ["amd64", "arm64"]
    assert "containerd_1.0_amd64.deb" in report.packages
    assert "containerd_1.0_arm64.deb" in report.packages
    assert (out / "files" / "arm64" / "k3s").read_bytes() == b"k3s for arm64"
    assert (out / "files" / "amd64" / "k3s").read_bytes() == b"k3s for amd64"
    index = (out / "debs" / "Packages").read_text()
    assert "Architecture: arm64" in index and "Architecture: amd64" in index
    offline = {**data, "artifacts": {"source": "offline", "bundle_dir": str(out),
                                     "files": files}}
    path.write_text(yaml.safe_dump(offline, sort_keys=False))
    assert missing_artifacts(load_fleet(path)) == []


def test_inventory_validate_names_the_arm64_box_and_the_missing_artifact(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dnabox.cli.app import app

    data = yaml.safe_load((ROOT / "inventory" / "smartx-playground.yaml").read_text())
    data["artifacts"] = {"source": "online", "files": all_artifacts(arm64=False)}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(app, ["inventory", "validate", str(path)])
    assert result.exit_code == InventoryError.exit_code, result.output
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if text.strip() == "arch: arm64")
    assert f"{path}:{line}:" in result.output.replace("\n", "")
    assert "end-gist-pi-1 is arm64 and needs k3s (role kubernetes)" in result.output
    assert "declares only for amd64: add an entry with arch: arm64" in " ".join(
        result.output.split())
    data["artifacts"] = {"source": "online", "files": all_artifacts(arm64=True)}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert CliRunner().invoke(app, ["inventory", "validate", str(path)]).exit_code == 0
