"""Missing artifacts are a clear error before any box is touched; bundles collect the rest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dnabox.adapters.bundle import BundleError, build_bundle, write_package_index
from dnabox.cli.app import app
from dnabox.inventory import Fleet, load_fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.artifacts import ArtifactMissing, check_artifacts, missing_artifacts
from dnabox.plan.selection import select_boxes
from dnabox.provision import bootstrap as bootstrap_workflow

ROOT = Path(__file__).resolve().parents[3]


def fleet_file(tmp_path: Path, sample: str = "lab", **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "inventory" / f"{sample}.yaml").read_text())
    data.update(changes)
    path = tmp_path / f"{sample}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def lab_without_skips(tmp_path: Path) -> Fleet:
    return load_fleet(fleet_file(tmp_path, bootstrap={"skip_roles": []}))


def test_lab_as_shipped_needs_no_artifact() -> None:
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")
    assert missing_artifacts(fleet) == []
    check_artifacts(fleet)


def test_every_role_that_needs_an_artifact_is_named(tmp_path: Path) -> None:
    fleet = lab_without_skips(tmp_path)
    missing = {(m.role, m.name): m for m in missing_artifacts(fleet)}
    # core runs kubeadm, edge runs k3s; kata on core and edge, apptainer on core only.
    assert set(missing) == {("kata", "kata-static"), ("apptainer", "apptainer"),
                            ("kubernetes", "kubeadm"), ("kubernetes", "kubelet"),
                            ("kubernetes", "kubectl"), ("kubernetes", "k3s")}
    assert missing[("apptainer", "apptainer")].boxes == ("core-1",)
    assert missing[("kubernetes", "k3s")].boxes == ("edge-a-1", "edge-b-1", "end-a-1")
    with pytest.raises(ArtifactMissing) as caught:
        check_artifacts(fleet)
    assert "kata-static" in caught.value.message and "no box was touched" in caught.value.message
    assert "{name: kubeadm, url: https://..., sha256: <64 hex>, role: kubernetes}" in \
        caught.value.hint


def test_only_the_chosen_boxes_count(tmp_path: Path) -> None:
    fleet = lab_without_skips(tmp_path)
    names = {m.name for m in missing_artifacts(fleet, ["end-a-1"])}
    assert names == {"k3s"}  # the end device runs neither kata nor apptainer


def test_inventory_tells_each_role_its_artifact_names(tmp_path: Path) -> None:
    fleet = lab_without_skips(tmp_path)
    hosts = render_ansible_inventory(fleet, Locations.discover())["all"]["hosts"]
    assert hosts["core-1"]["dnabox_required_artifacts"] == {
        "kata": ["kata-static"], "apptainer": ["apptainer"],
        "kubernetes": ["kubeadm", "kubelet", "kubectl"]}
    assert hosts["end-a-1"]["dnabox_required_artifacts"] == {"kubernetes": ["k3s"]}


def _artifact(tmp_path: Path, name: str, role: str, body: bytes) -> dict[str, str]:
    source = tmp_path / "upstream" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(body)
    return {"name": name, "url": source.as_uri(), "sha256": hashlib.sha256(body).hexdigest(),
            "role": role}


def test_offline_bundle_must_hold_each_file_with_its_checksum(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "files").mkdir(parents=True)
    artifact = _artifact(tmp_path, "k3s", "kubernetes", b"k3s binary")
    fleet = load_fleet(fleet_file(tmp_path, bootstrap={"skip_roles": ["kata", "apptainer"]},
                                  clusters=[{"name": "edge", "distribution": "k3s",
                                             "control_planes": ["edge-a-1"]}],
                                  artifacts={"source": "offline", "bundle_dir": str(bundle),
                                             "files": [artifact]}))
    assert [m.reason for m in missing_artifacts(fleet)] == ["not in the bundle"]
    (bundle / "files" / "k3s").write_bytes(b"tampered")
    assert [m.reason for m in missing_artifacts(fleet)] == ["checksum differs in the bundle"]
    (bundle / "files" / "k3s").write_bytes(b"k3s binary")
    check_artifacts(fleet)


def test_bootstrap_command_stops_before_ansible(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Ansible ran although artifacts were missing")

    monkeypatch.setattr(bootstrap_workflow, "run_playbook", must_not_run)
    path = fleet_file(tmp_path, bootstrap={"skip_roles": ["apptainer", "kubernetes"]})
    result = CliRunner().invoke(app, ["bootstrap", "-i", str(path)])
    assert result.exit_code == ArtifactMissing.exit_code
    assert "kata-static" in result.output and "role kata" in result.output


def test_bootstrap_refuses_an_unknown_box(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bootstrap", "-i", str(ROOT / "inventory/lab.yaml"),
                                      "--box", "nope-1"])
    assert result.exit_code == 2 and "nope-1" in result.output


def test_box_selection_by_site_and_tier() -> None:
    fleet = load_fleet(ROOT / "inventory" / "lab.yaml")

    def names(**filters: list[str] | None) -> list[str]:
        return [b.name for b in select_boxes(fleet, **filters)]

    assert names() == [b.name for b in fleet.boxes]
    assert names(tiers=["edge"]) == ["edge-a-1", "edge-b-1"]
    assert names(sites=["core", "end-a"]) == ["core-1", "end-a-1"]


class FakeApt:
    """Builds real (tiny) .deb files with dpkg-deb instead of downloading them."""

    def __init__(self) -> None:
        self.downloads: list[str] = []
        self.architectures: list[str] = []

    def closure(self, packages: list[str], arch: str) -> list[str]:
        self.architectures.append(arch)
        return sorted({*packages, "libfake1"})

    def download(self, packages: list[str], into: Path, arch: str) -> None:
        for name in packages:
            self.downloads.append(name)
            root = into.parent / "build" / name
            (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
            (root / "DEBIAN" / "control").write_text(
                f"Package: {name}\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: dnabox tests <t@example.invalid>\nDescription: fake\n")
            subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(root),
                            str(into / f"{name}_1.0_all.deb")], check=True, capture_output=True)


def test_bundle_collects_packages_artifacts_and_checksums(tmp_path: Path) -> None:
    artifact = _artifact(tmp_path, "ovs-cni", "cni", b"#!/bin/sh\necho ovs-cni\n")
    fleet = load_fleet(fleet_file(tmp_path, artifacts={"files": [artifact]}))
    apt = FakeApt()
    out = tmp_path / "out"
    report = build_bundle(fleet, out, source=apt)
    assert "libfake1_1.0_all.deb" in report.packages and "containerd_1.0_all.deb" in \
        report.packages
    assert (out / "files" / "ovs-cni").read_bytes() == b"#!/bin/sh\necho ovs-cni\n"
    index = (out / "debs" / "Packages").read_text()
    assert "Package: containerd\n" in index and "Filename: ./containerd_1.0_all.deb" in index
    with tarfile.open(out / "debs.tar") as tar:
        assert "bundle/Packages" in tar.getnames()
    sums = dict(line.split("  ")[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert sums["files/ovs-cni"] == artifact["sha256"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fleet"] == "lab" and manifest["artifacts"][0]["name"] == "ovs-cni"
    # A second build reuses what is there: nothing is downloaded again.
    count = len(apt.downloads)
    build_bundle(fleet, out, source=apt, fetch=lambda *_: pytest.fail("fetched again"))
    assert len(apt.downloads) == count


def test_bundle_keeps_nothing_whose_checksum_differs(tmp_path: Path) -> None:
    artifact = _artifact(tmp_path, "ovs-cni", "cni", b"real")
    artifact["sha256"] = "0" * 64
    fleet = load_fleet(fleet_file(tmp_path, artifacts={"files": [artifact]}))
    with pytest.raises(BundleError, match="differs from the declared"):
        build_bundle(fleet, tmp_path / "out", source=FakeApt())
    assert list((tmp_path / "out" / "files").iterdir()) == []


def test_bundle_refuses_a_fleet_that_needs_undeclared_artifacts(tmp_path: Path) -> None:
    with pytest.raises(ArtifactMissing, match="kata-static"):
        build_bundle(lab_without_skips(tmp_path), tmp_path / "out", source=FakeApt())


def test_package_index_of_an_empty_directory_is_empty(tmp_path: Path) -> None:
    write_package_index(tmp_path)
    assert (tmp_path / "Packages").read_text() == ""
