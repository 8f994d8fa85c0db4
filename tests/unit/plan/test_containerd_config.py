"""containerd's config on a box: the format follows the installed containerd (v2 for 1.6/1.7,
v3 for 2.x), dnabox's handlers equal the RuntimeClass handlers, and entries other tools own
(the GPU Operator's `nvidia`) survive every re-run. The real program runs on real files."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from containerd_merge import (
    V2_CRI,
    V3_IMAGES,
    V3_RUNTIME,
    box_containerd,
    runtimes_of,
)

from dnabox.inventory import Fleet, load_fleet
from dnabox.layers import runtimes as runtime_layer
from dnabox.plan.runtimes import runtimes_for

ROOT = Path(__file__).resolve().parents[3]
VERSIONS = {"1.6.20~ds1": 2, "1.7.24": 2, "2.0.6": 3, "2.1.4": 3}
# What the GPU Operator's toolkit (or `nvidia-ctk runtime configure`) leaves in config.toml.
FOREIGN = """\
version = 2

[plugins."io.containerd.grpc.v1.cri".registry]
config_path = "/etc/containerd/certs.d"

[plugins."io.containerd.grpc.v1.cri".containerd]
default_runtime_name = "nvidia"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
runtime_type = "io.containerd.runc.v2"
privileged_without_host_devices = false

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
BinaryName = "/usr/local/nvidia/toolkit/nvidia-container-runtime"
SystemdCgroup = true
"""


def fleet_of(sample: str) -> Fleet:
    return load_fleet(ROOT / "inventory" / f"{sample}.yaml")


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("sample", ["lab", "smartx-playground"])
def test_handlers_equal_the_runtime_classes_in_each_format(
        sample: str, version: str, tmp_path: Path) -> None:
    fleet = fleet_of(sample)
    checked = 0
    for cluster in fleet.clusters:
        classes = {rc["handler"] for rc in runtime_layer.runtime_classes(fleet, cluster)}
        on_nodes: set[str] = set()
        for name in cluster.members:
            box = fleet.box(name)
            files = box_containerd(fleet, name, tmp_path / f"{version}-{name}")
            files.merge(version)
            config = files.parsed()
            assert config["version"] == VERSIONS[version]
            tables = runtimes_of(config)
            specs = {r.handler: r for r in runtimes_for(fleet, box)}
            assert set(tables) == set(specs), name
            for handler, spec in specs.items():
                assert tables[handler]["runtime_type"] == spec.runtime_type
                if spec.binary_name:
                    assert tables[handler]["options"]["BinaryName"] == spec.binary_name
            on_nodes |= set(tables)
            checked += 1
        # Every RuntimeClass names a handler some member's containerd has, and vice versa.
        assert classes == on_nodes & classes and classes <= on_nodes
    assert checked == sum(len(c.members) for c in fleet.clusters)


def test_version_3_layout_for_containerd_2(tmp_path: Path) -> None:
    fleet = fleet_of("lab")
    files = box_containerd(fleet, "core-1", tmp_path)
    files.merge("2.1.4")
    config = files.parsed()
    plugins = config["plugins"]
    assert config["version"] == 3 and V2_CRI not in plugins
    assert plugins[V3_IMAGES]["pinned_images"]["sandbox"].startswith("registry.k8s.io/pause:")
    assert plugins[V3_IMAGES]["snapshotter"] == "overlayfs"
    assert plugins[V3_RUNTIME]["cni"]["bin_dirs"] == ["/usr/lib/cni"]
    assert "bin_dir" not in plugins[V3_RUNTIME]["cni"]
    assert plugins[V3_RUNTIME]["containerd"]["default_runtime_name"] == "runc"
    assert plugins[V3_RUNTIME]["containerd"]["runtimes"]["runc"]["options"] == {
        "SystemdCgroup": True}
    # containerd 2.0 still reads bin_dir (bin_dirs arrived in 2.1).
    older = box_containerd(fleet, "core-1", tmp_path / "2.0")
    older.merge("2.0.6")
    assert older.parsed()["plugins"][V3_RUNTIME]["cni"]["bin_dir"] == "/usr/lib/cni"


def test_version_2_layout_for_containerd_1(tmp_path: Path) -> None:
    files = box_containerd(fleet_of("lab"), "core-1", tmp_path)
    files.merge("1.7.24")
    config = files.parsed()
    cri = config["plugins"][V2_CRI]
    assert config["version"] == 2 and V3_RUNTIME not in config["plugins"]
    assert cri["sandbox_image"].startswith("registry.k8s.io/pause:")
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": "/etc/cni/net.d"}
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert set(cri["containerd"]["runtimes"]) == {"runc", "kata", "apptainer"}


@pytest.mark.parametrize("version", ["1.7.24", "2.1.4"])
def test_a_foreign_runtime_survives_every_rerun(version: str, tmp_path: Path) -> None:
    fleet = fleet_of("lab")
    files = box_containerd(fleet, "core-1", tmp_path)
    foreign = FOREIGN
    if version.startswith("2."):
        foreign = foreign.replace("version = 2", "version = 3").replace(
            'grpc.v1.cri".registry', 'cri.v1.images".registry').replace(V2_CRI, V3_RUNTIME)
    files.config.write_text(foreign)
    theirs = runtimes_of(tomllib.loads(foreign))["nvidia"]
    out = files.merge(version)
    assert "CHANGED:" in out and "kept runtimes dnabox does not own: nvidia" in out
    config = files.parsed()
    tables = runtimes_of(config)
    assert tables["nvidia"] == theirs
    assert set(tables) == {"nvidia", "runc", "kata", "apptainer"}
    plugin = V3_RUNTIME if version.startswith("2.") else V2_CRI
    # The GPU Operator made its runtime the default: dnabox leaves that alone too.
    assert config["plugins"][plugin]["containerd"]["default_runtime_name"] == "nvidia"
    registry = config["plugins"][V3_IMAGES if version.startswith("2.") else V2_CRI]["registry"]
    assert registry == {"config_path": "/etc/containerd/certs.d"}
    # A re-run changes nothing; a re-run after dnabox drops a runtime removes only its own.
    before = files.config.read_text()
    assert "CHANGED:" not in files.merge(version)
    assert files.config.read_text() == before
    intent = files.where / "dnabox.toml"
    text = intent.read_text()
    intent.write_text(text[:text.index("[runtimes.kata]")] + text[text.index(
        "[runtimes.apptainer]"):])
    assert "CHANGED:" in files.merge(version)
    assert set(runtimes_of(files.parsed())) == {"nvidia", "runc", "apptainer"}
    assert runtimes_of(files.parsed())["nvidia"] == theirs


def test_dnabox_never_takes_over_a_runtime_another_tool_wrote_first(tmp_path: Path) -> None:
    fleet = gpu_fleet(tmp_path)
    files = box_containerd(fleet, "core-1", tmp_path / "box")
    files.config.write_text(FOREIGN)
    theirs = runtimes_of(tomllib.loads(FOREIGN))["nvidia"]
    files.merge("1.7.24")
    assert runtimes_of(files.parsed())["nvidia"] == theirs
    assert "nvidia" not in files.owned.read_text()
    # Without the foreign entry, dnabox writes its own nvidia handler and owns it.
    fresh = box_containerd(fleet, "core-1", tmp_path / "fresh")
    fresh.merge("1.7.24")
    nvidia = runtimes_of(fresh.parsed())["nvidia"]
    assert nvidia["options"]["BinaryName"] == "/usr/bin/nvidia-container-runtime"
    assert "nvidia" in fresh.owned.read_text()
    cri = fresh.parsed()["plugins"][V2_CRI]
    assert cri["enable_cdi"] is True and "/etc/cdi" in cri["cdi_spec_dirs"]


def test_ownership_survives_a_lost_record_and_a_config_the_old_template_wrote(
        tmp_path: Path) -> None:
    fleet = fleet_of("lab")
    files = box_containerd(fleet, "core-1", tmp_path)
    files.merge("1.6.20")
    files.owned.unlink()
    assert "CHANGED:" not in files.merge("1.6.20")  # the config's own comment says
    legacy = ("# Managed by dnabox (role container_runtime) on core-1.\nversion = 2\n"
              '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.oldname]\n'
              'runtime_type = "io.containerd.runc.v2"\n')
    files.config.write_text(legacy)
    files.owned.unlink()
    files.merge("1.6.20")
    assert "oldname" not in runtimes_of(files.parsed())  # it was dnabox's: removed


def test_moving_to_containerd_2_carries_foreign_runtimes_to_version_3(tmp_path: Path) -> None:
    files = box_containerd(fleet_of("lab"), "core-1", tmp_path)
    files.config.write_text(FOREIGN)
    files.merge("1.7.24")
    files.merge("2.1.4")
    config = files.parsed()
    assert config["version"] == 3 and V2_CRI not in config["plugins"]
    assert set(runtimes_of(config)) == {"nvidia", "runc", "kata", "apptainer"}


def test_check_writes_nothing_and_unreadable_config_is_never_overwritten(
        tmp_path: Path) -> None:
    files = box_containerd(fleet_of("lab"), "core-1", tmp_path)
    assert "CHANGED:" in files.merge("1.7.24", check=True)
    assert not files.config.exists() and not files.owned.exists()
    files.config.write_text("version = 2\n[plugins\n")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        files.merge("1.7.24")
    assert failed.value.returncode == 2 and "not valid TOML" in failed.value.stderr
    assert files.config.read_text() == "version = 2\n[plugins\n"


@pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd is not installed")
def test_the_installed_containerd_reads_every_handler(tmp_path: Path) -> None:
    """containerd's own parser (`containerd config dump`) on the merged file, foreign entry
    included: the version this machine has (Debian 12: 1.6)."""
    version = subprocess.run(["containerd", "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[2]
    files = box_containerd(fleet_of("lab"), "core-1", tmp_path)
    if not version.startswith("2."):
        files.config.write_text(FOREIGN)
    files.merge(version)
    dump = subprocess.run(["containerd", "--config", str(files.config), "config", "dump"],
                          capture_output=True, text=True, check=True, timeout=60).stdout
    seen = runtimes_of(tomllib.loads(dump))
    assert {"runc", "kata", "apptainer"} <= set(seen)
    assert seen["kata"]["runtime_type"] == "io.containerd.kata.v2"
    assert seen["apptainer"]["options"]["BinaryName"] == "/usr/bin/crun"


def gpu_fleet(tmp_path: Path) -> Fleet:
    text = (ROOT / "inventory" / "lab.yaml").read_text()
    marker = "  - name: core-1\n"
    assert marker in text
    text = text.replace(marker, marker + "    accelerators: [{vendor: nvidia, count: 2, "
                                         "model: L4}]\n", 1)
    path = tmp_path / "gpu.yaml"
    path.write_text(text)
    return load_fleet(path)
