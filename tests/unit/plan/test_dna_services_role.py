"""The dna_services role: where it runs, what it ships, what changes its fingerprint, and
its apply script restarting only the container whose code, config or start script changed
(run here against a fake ``ctr``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dnabox.inventory import load_fleet
from dnabox.inventory.model import Fleet
from dnabox.locations import Locations
from dnabox.plan import dna_container
from dnabox.plan.desired import BoxPlan, plan_fleet
from dnabox.plan.dna import build_topology
from dnabox.provision.dna_credentials import box_secrets, passwords

ROOT = Path(__file__).resolve().parents[3]
PROJECT = Locations(ROOT, ROOT / ".dnabox")
SERVICE_BOXES = {"core-1", "edge-a-1", "edge-b-1", "end-a-1"}


def lab() -> Fleet:
    return load_fleet(ROOT / "inventory" / "lab.yaml")


def edited(tmp_path: Path, old: str, new: str) -> Fleet:
    text = (ROOT / "inventory" / "lab.yaml").read_text()
    assert old in text
    path = tmp_path / "lab.yaml"
    path.write_text(text.replace(old, new))
    return load_fleet(path)


def service_fingerprints(plans: dict[str, BoxPlan]) -> dict[str, str]:
    return {box: plan.fingerprints["dna_services"] for box, plan in plans.items()
            if "dna_services" in plan.fingerprints}


def test_the_role_runs_on_the_boxes_with_services_and_ships_their_files() -> None:
    plans = plan_fleet(lab(), PROJECT)
    assert set(service_fingerprints(plans)) == SERVICE_BOXES
    files = {box: {f.dest: f for f in plans[box].role("dna_services").files}
             for box in SERVICE_BOXES}
    for box in SERVICE_BOXES:
        code = [d for d, f in files[box].items() if f.generated and "/opt/python/" in d]
        assert f"{dna_container.IMAGE_DIR}/opt/python/dnabox/dna/service/trainer.py" in code
        assert any(d.startswith(f"{dna_container.IMAGE_DIR}/opt/python/nats/") for d in code)
        apply = files[box]["/usr/local/sbin/dnabox-dna-services-apply"]
        assert not apply.generated and apply.mode == "0755"
    assert files["core-1"]["/etc/dnabox/dna/services/trainer-speed.start"].mode == "0755"
    assert "/etc/dnabox/dna/services/inference-speed-edge-a.start" in files["edge-a-1"]
    # The collector runs to completion: its config is there, no start script.
    assert "/etc/dnabox/dna/services/collector-traffic-end-a-1.json" in files["end-a-1"]
    assert not any(d.endswith(".start") for d in files["end-a-1"])


def test_a_model_setting_changes_only_the_trainer_box(tmp_path: Path) -> None:
    before = service_fingerprints(plan_fleet(lab(), PROJECT))
    after = service_fingerprints(plan_fleet(
        edited(tmp_path, "retrain: {every_samples: 500}", "retrain: {every_samples: 600}"),
        PROJECT))
    assert {box for box in before if before[box] != after[box]} == {"core-1"}


def test_a_pond_retention_leaves_the_services_alone(tmp_path: Path) -> None:
    before = service_fingerprints(plan_fleet(lab(), PROJECT))
    after = service_fingerprints(plan_fleet(
        edited(tmp_path, "max_bytes: 64MiB", "max_bytes: 48MiB"), PROJECT))
    assert before == after


def test_a_code_change_changes_every_box_of_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    before = service_fingerprints(plan_fleet(lab(), PROJECT))
    files = dict(dna_container.image_files())
    trainer = "opt/python/dnabox/dna/service/trainer.py"
    files[trainer] = files[trainer] + b"# changed\n"
    monkeypatch.setattr(dna_container, "_image_files", lambda: tuple(sorted(files.items())))
    after = service_fingerprints(plan_fleet(lab(), PROJECT))
    assert all(before[box] != after[box] for box in SERVICE_BOXES)


def test_no_rendered_or_generated_file_holds_a_secret(tmp_path: Path) -> None:
    fleet = lab()
    topology = build_topology(fleet)
    assert topology is not None
    secrets = passwords(tmp_path, topology)
    assert secrets and box_secrets(fleet, tmp_path, [b.name for b in fleet.boxes])
    for plan in plan_fleet(fleet, PROJECT).values():
        for rendered in plan.files:
            for user, password in secrets.items():
                assert password not in rendered.content, (plan.box, rendered.dest, user)


FAKE_CTR = r"""#!/bin/sh
# A fake ctr: tasks are lines "ID PID STATUS" in $CTR_STATE; every call is logged.
echo "$*" >> "$CTR_LOG"
touch "$CTR_STATE"
case "$1 $2" in
  "task ls") echo "TASK PID STATUS"; cat "$CTR_STATE" ;;
  "task kill"|"task rm") id=$(eval echo "\${$#}")
                         grep -v "^$id " "$CTR_STATE" > "$CTR_STATE.n" || true
                         mv "$CTR_STATE.n" "$CTR_STATE" ;;
  "run "*) id=""; prev=""; for a; do [ "$prev" = "$IMAGE" ] && id=$a; prev=$a; done
           echo "$id $$ RUNNING" >> "$CTR_STATE" ;;
esac
exit 0
"""


def on_tmp(text: str, root: Path) -> str:
    return text.replace("/var/lib/dnabox", f"{root}/var").replace("/etc/dnabox", f"{root}/etc")


def install(plan: BoxPlan, root: Path) -> Path:
    """Write the box's dna_services files under ``root`` (paths moved there)."""
    for rendered in plan.role("dna_services").files:
        target = Path(on_tmp(rendered.dest, root))
        if rendered.dest.startswith("/usr/local/sbin"):
            target = root / "sbin" / target.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(on_tmp(rendered.content, root))
        target.chmod(int(rendered.mode, 8))
    return root / "sbin" / "dnabox-dna-services-apply"


def run(script: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
           "CTR_STATE": str(root / "tasks"), "CTR_LOG": str(root / "ctr.log"),
           "IMAGE": on_tmp(dna_container.IMAGE_DIR, root)}
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True,
                          env=env, check=False)


def test_the_apply_script_restarts_only_what_changed(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ctr").write_text(FAKE_CTR)
    (tmp_path / "bin" / "ctr").chmod(0o755)
    plan = plan_fleet(lab(), PROJECT)["core-1"]
    script = install(plan, tmp_path)
    assert run(script, tmp_path, "--probe").returncode == 1  # nothing runs yet
    first = run(script, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "CHANGED: trainer-speed: container dnabox-trainer-speed started" in first.stdout
    assert run(script, tmp_path, "--probe").returncode == 0
    again = run(script, tmp_path)
    assert again.stdout.strip() == "converged: nothing to change", again.stdout
    assert run(script, tmp_path, "--check").stdout.strip() == "converged: nothing to change"
    # Its config changes: the container restarts (check mode only says so).
    config = tmp_path / "etc" / "dna" / "services" / "trainer-speed.json"
    config.write_text(config.read_text().replace('"retrain_every_samples": 500',
                                                 '"retrain_every_samples": 600'))
    checked = run(script, tmp_path, "--check")
    assert "restarted" in checked.stdout
    changed = run(script, tmp_path, "--reload")
    assert "CHANGED: trainer-speed: container dnabox-trainer-speed restarted" in changed.stdout
    assert run(script, tmp_path).stdout.strip() == "converged: nothing to change"
    # The code changes: restarted too.
    code = tmp_path / "var" / "dna" / "image" / "opt" / "python" / "dnabox" / "__init__.py"
    code.write_text(code.read_text() + "# changed\n")
    assert "restarted" in run(script, tmp_path).stdout
    # Its password changes (the dna role's --reload runs this script): restarted.
    password = tmp_path / "etc" / "dna" / "dna-core.password"
    password.write_text("rotated\n")
    assert "restarted" in run(script, tmp_path, "--reload").stdout
    assert run(script, tmp_path).stdout.strip() == "converged: nothing to change"
    assert oct((tmp_path / "var" / "dna" / "services").stat().st_mode & 0o777) == "0o700"
    # The container dies: started again.
    (tmp_path / "tasks").write_text("")
    assert run(script, tmp_path, "--probe").returncode == 1
    assert "started" in run(script, tmp_path).stdout
