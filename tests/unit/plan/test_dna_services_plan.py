"""The service definition and its lab form: configs from the plan, ``ctr run``, the image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dnabox.dna.service.config import parse
from dnabox.inventory import load_fleet
from dnabox.plan import dna_container, dna_services
from dnabox.plan.dna import build_topology, password_file

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ("inventory/lab.yaml", "inventory/smartx-playground.yaml")


@pytest.mark.parametrize("inventory", SAMPLES)
def test_every_service_of_the_plan_gets_a_config_its_program_accepts(inventory: str) -> None:
    topology = build_topology(load_fleet(ROOT / inventory))
    assert topology is not None
    roles = set()
    for service in topology.services:
        text = dna_services.render_config(topology, service).to_json()
        config = parse(json.loads(text), dna_services.config_file(service))
        roles.add(config.role)
        assert config.password_file == password_file(service.user)
        assert config.domain == ("hub" if service.role == "trainer" else "")
        if service.role == "inference":
            server = topology.leaf_of(service.site)
            assert server is not None
            assert config.bind_address() == (server.address, 8480)
    assert roles == {"collector", "trainer", "inference"}


def test_ctr_run_uses_the_definition() -> None:
    topology = build_topology(load_fleet(ROOT / "inventory/lab.yaml"))
    assert topology is not None
    inference = next(s for s in topology.services if s.role == "inference")
    argv = dna_container.ctr_run_argv(inference)
    spec = dna_services.SERVICES["inference"]
    tail = list(spec.argv(dna_services.config_file(inference)))
    assert argv[-len(tail):] == tail
    assert argv[argv.index("--memory-limit") + 1] == str(256 * 1024**2)
    assert argv[argv.index("--cpus") + 1] == "1"
    assert "type=bind,src=/usr,dst=/usr,options=rbind:ro" in argv
    assert "--net-host" in argv and "--detach" in argv
    once = dna_container.ctr_run_argv(inference, "--once", detach=False)
    assert "--rm" in once and once[-1] == "--once" and "--detach" not in once


@pytest.mark.parametrize(("quantity", "cpus"), [("500m", 0.5), ("2", 2.0), ("1.5", 1.5)])
def test_cpu_quantities(quantity: str, cpus: float) -> None:
    assert dna_services.cpus(quantity) == cpus


def test_memory_quantities() -> None:
    assert dna_services.memory_bytes("64Mi") == 64 * 1024**2
    assert dna_services.memory_bytes("2Gi") == 2 * 1024**3
    with pytest.raises(ValueError, match="not a memory quantity: 2GB"):
        dna_services.memory_bytes("2GB")


def test_the_image_holds_only_the_service_and_the_nats_client() -> None:
    files = dna_container.image_files()
    tops = {Path(p).parts[2] for p in files}
    assert tops == {"dnabox", "nats"}
    dnabox_parts = {Path(p).parts[3] for p in files if Path(p).parts[2] == "dnabox"}
    assert dnabox_parts == {"__init__.py", "dna"}


def test_the_image_runs_on_debian_python_and_numpy(tmp_path: Path) -> None:
    """The box's interpreter (Debian python3 + python3-numpy), not the controller's venv,
    imports every service module from the shipped files alone."""
    python = "/usr/bin/python3"
    if not Path(python).exists() or subprocess.run(
            [python, "-c", "import numpy"], capture_output=True, check=False).returncode:
        pytest.fail("Debian's python3-numpy is missing (setup.sh installs it)")
    for path, data in dna_container.image_files().items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    script = ("import dnabox.dna.service.collector, dnabox.dna.service.trainer, "
              "dnabox.dna.service.inference, sys; "
              "print(sorted(m for m in sys.modules if m.startswith('dnabox')))")
    done = subprocess.run([python, "-I", "-c", f"import sys; sys.path.insert(0, "
                           f"{str(tmp_path / dna_container.PYTHON_DIR)!r}); {script}"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "dnabox.inventory" not in done.stdout
    # As the container runs it: only PYTHONPATH points at the shipped files.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / dna_container.PYTHON_DIR),
           "PYTHONDONTWRITEBYTECODE": "1"}
    help_run = subprocess.run([python, "-m", "dnabox.dna.service.trainer", "--help"],
                              env=env, capture_output=True, text=True, check=False)
    assert help_run.returncode == 0 and "--request" in help_run.stdout


def test_rootfs_script_lays_out_the_root(tmp_path: Path) -> None:
    if shutil.which("sh") is None:
        pytest.fail("no sh")
    script = dna_container.rootfs_script().replace(dna_container.IMAGE_DIR, str(tmp_path / "i"))
    script = script.replace(dna_container.LOG_DIR, str(tmp_path / "log"))
    script = script.replace(dna_services.STATE_DIR, str(tmp_path / "state"))
    for _ in range(2):  # idempotent
        subprocess.run(["sh", "-c", script], check=True)
    assert (tmp_path / "i" / "lib").readlink() == Path("usr/lib")
    assert (tmp_path / "i" / "usr").is_dir() and (tmp_path / "i/etc/dnabox/dna").is_dir()


def test_the_benchmark_loads_and_documents_its_ratio_lines() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "dna"), "--help"],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    for line in ("RATIO dna_ingest", "RATIO dna_catchup", "RATIO dna_train_to_serve"):
        assert line in done.stdout
