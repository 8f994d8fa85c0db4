"""`dnabox stack`: config generation, the missing-CLI boundary, and the per-stack processes."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from dnabox.adapters import pulumi as adapter
from dnabox.cli import stack
from dnabox.errors import EnvironmentProblem
from dnabox.inventory import load_fleet
from dnabox.layers import stack_config
from dnabox.locations import Locations

ROOT = Path(__file__).resolve().parents[3]
PLAYGROUND = ROOT / "inventory" / "smartx-playground.yaml"
LAB = ROOT / "inventory" / "lab.yaml"


def cli() -> typer.Typer:
    # The group alone, as app.py registers it: other groups are not under test here.
    app = typer.Typer()
    app.add_typer(stack.app, name="stack")
    return app


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli(), ["stack", *args], env=env)
    return result.exit_code, result.output


# --- config ------------------------------------------------------------------------------

def test_checked_in_stack_config_is_what_the_inventory_generates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    fleet = load_fleet(PLAYGROUND)
    files = stack_config.stack_files(fleet, "inventory/smartx-playground.yaml", ROOT)
    assert sorted(f.name for f in files) == sorted(
        f"Pulumi.smartx-playground-{c.name}.yaml" for c in fleet.clusters)
    for f in files:
        assert f.current, f"{f.name} is stale"
    code, output = invoke("config", "-i", "inventory/smartx-playground.yaml", "--check")
    assert code == 0, output


def test_config_writes_one_file_per_cluster_with_a_project_relative_inventory(
        tmp_path: Path) -> None:
    code, output = invoke("config", "-i", str(LAB), "-o", str(tmp_path))
    assert code == 0, output
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["Pulumi.lab-core.yaml", "Pulumi.lab-edge.yaml"]
    config = yaml.safe_load((tmp_path / "Pulumi.lab-edge.yaml").read_text())["config"]
    assert config == {
        "dnabox:inventory": os.path.relpath(LAB, tmp_path),
        "dnabox:cluster": "edge",
        "dnabox:kubeconfig": ".dnabox/lab/kubeconfig/edge.yaml",
    }
    # And the check agrees with what was just written.
    assert invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--check")[0] == 0


def test_config_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "core")
    (tmp_path / "Pulumi.lab-core.yaml").write_text("config: {}\n")
    code, output = invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "core",
                          "--check")
    assert code == 1
    assert "stale stack config: Pulumi.lab-core.yaml" in output


def test_config_json_and_unknown_cluster(tmp_path: Path) -> None:
    code, output = invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--json",
                          "--cluster", "edge")
    assert code == 0 and '"Pulumi.lab-edge.yaml"' in output
    code, output = invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "nope")
    assert code == 2 and "no cluster named 'nope'" in output and "core, edge" in output


# --- the Pulumi CLI boundary ---------------------------------------------------------------

@pytest.mark.parametrize("operation", ["preview", "up", "destroy"])
def test_without_pulumi_cli_every_operation_says_how_to_install_it(
        operation: str, tmp_path: Path) -> None:
    args = [operation, "-i", str(PLAYGROUND)] + (["--yes"] if operation == "destroy" else [])
    code, output = invoke(*args, env={"PATH": str(tmp_path)})  # an empty PATH dir
    assert code == EnvironmentProblem.exit_code == 3
    flat = " ".join(output.split())
    assert "Pulumi CLI (`pulumi`) is not on PATH" in flat
    assert "curl -fsSL https://get.pulumi.com | sh" in flat


def test_require_pulumi_cli_finds_it_when_present(tmp_path: Path) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert adapter.require_pulumi_cli(lambda name: str(fake)) == str(fake)
    with pytest.raises(EnvironmentProblem) as caught:
        adapter.require_pulumi_cli(lambda name: None)
    assert adapter.INSTALL_COMMAND in caught.value.hint


def test_destroy_needs_confirmation() -> None:
    code, output = invoke("destroy", "-i", str(LAB))
    assert code == 2 and "--yes" in output


# --- jobs, work dirs, backend --------------------------------------------------------------

def where(tmp_path: Path) -> Locations:
    return Locations(project=ROOT, state=tmp_path / "state")


def env_with(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DNABOX_STATE_DIR": str(tmp_path / "state"), "PULUMI_CONFIG_PASSPHRASE": "x",
            **extra}


def test_one_work_dir_and_a_file_backend_per_fleet(tmp_path: Path) -> None:
    fleet = load_fleet(PLAYGROUND)
    jobs = adapter.plan_jobs(fleet, PLAYGROUND, "preview", where(tmp_path),
                             env=env_with(tmp_path))
    assert [j.cluster for j in jobs] == [c.name for c in fleet.clusters]
    assert len({j.work_dir for j in jobs}) == len(jobs)
    state = tmp_path / "state" / "smartx-playground"
    assert {j.env["PULUMI_BACKEND_URL"] for j in jobs} == {f"file://{state}/pulumi/backend"}
    assert all(j.work_dir.is_relative_to(state / "pulumi" / "work") for j in jobs)
    assert [j.stack for j in jobs] == [f"smartx-playground-{c.name}" for c in fleet.clusters]
    lab = adapter.plan_jobs(load_fleet(LAB), LAB, "up", where(tmp_path),
                             env=env_with(tmp_path))
    # Both fleets have a cluster "core": their stacks must not share a name or a backend.
    assert lab[0].env["PULUMI_BACKEND_URL"] != jobs[0].env["PULUMI_BACKEND_URL"]
    assert lab[0].stack == "lab-core" != jobs[0].stack


def test_backend_url_from_the_environment_wins(tmp_path: Path) -> None:
    jobs = adapter.plan_jobs(load_fleet(LAB), LAB, "up", where(tmp_path), cluster="edge",
                             env=env_with(tmp_path, PULUMI_BACKEND_URL="s3://bucket/x"))
    assert [(j.cluster, j.env["PULUMI_BACKEND_URL"]) for j in jobs] == [("edge", "s3://bucket/x")]


def test_a_file_backend_needs_a_passphrase(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="passphrase"):
        adapter.plan_jobs(load_fleet(LAB), LAB, "up", where(tmp_path),
                          env={"DNABOX_STATE_DIR": str(tmp_path)})


def test_default_state_dir_is_in_the_project() -> None:
    located = Locations.discover(ROOT / "src" / "dnabox", environ={})
    assert located.project == ROOT
    assert located.fleet_state("lab") == ROOT / ".dnabox" / "lab"
    assert located.kubeconfig("lab", "core") == ROOT / ".dnabox/lab/kubeconfig/core.yaml"


def test_work_dir_runs_the_repo_program_with_absolute_config(tmp_path: Path) -> None:
    (job,) = adapter.plan_jobs(load_fleet(LAB), LAB, "preview", where(tmp_path),
                               cluster="core",
                               env=env_with(tmp_path))
    adapter.prepare_work_dir(job)
    adapter.prepare_work_dir(job)  # idempotent: a second run reuses the dir
    assert (job.work_dir / "Pulumi.yaml").read_text() == (ROOT / "Pulumi.yaml").read_text()
    # The repo's program and the work dir's are the same shim calling the installed program.
    assert (job.work_dir / "stacks" / "__main__.py").read_text() == (
        ROOT / "stacks" / "__main__.py").read_text() == stack_config.PROGRAM_SHIM
    config = adapter.job_config(job)
    assert set(config) == {stack_config.qualified(k) for k in stack_config.KEYS}
    inventory, _ = config["dnabox:inventory"]
    kubeconfig, secret = config["dnabox:kubeconfig"]
    assert Path(inventory) == LAB.resolve()
    assert secret and kubeconfig.endswith("/lab/kubeconfig/core.yaml")
    assert config["dnabox:cluster"] == ("core", False)


def fake_runner(job: adapter.StackJob) -> adapter.StackOutcome:
    """Stands in for the Automation API: records which process ran which stack."""
    adapter.prepare_work_dir(job)
    (job.work_dir / "ran").write_text(str(os.getpid()))
    ok = job.cluster != "edge-jnu"
    return adapter.StackOutcome(job.cluster, job.operation, ok, {"same": 3} if ok else {},
                                str(job.work_dir / "ran"), "" if ok else "boom", os.getpid(),
                                job.stack)


def test_every_stack_runs_in_its_own_process(tmp_path: Path) -> None:
    jobs = adapter.plan_jobs(load_fleet(PLAYGROUND), PLAYGROUND, "up", where(tmp_path),
                             env=env_with(tmp_path))
    outcomes = adapter.run_stacks(jobs, runner=fake_runner, parallel=2)
    assert [o.cluster for o in outcomes] == [j.cluster for j in jobs]
    pids = [o.pid for o in outcomes]
    assert len(set(pids)) == len(jobs) and os.getpid() not in pids
    # A failing stack is reported, and the others still ran.
    assert [o.ok for o in outcomes] == [True, True, True, False]
    assert all((j.work_dir / "ran").read_text() == str(o.pid) for j, o in zip(jobs, outcomes,
                                                                               strict=True))


def test_cli_reports_each_stack_and_fails_when_one_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything past the Pulumi CLI check, with the fake runner in place of the CLI.
    monkeypatch.setattr(adapter, "require_pulumi_cli", lambda: "/usr/bin/pulumi")
    real_run_stacks = adapter.run_stacks
    monkeypatch.setattr(adapter, "run_stacks", lambda jobs, parallel=0: real_run_stacks(
        jobs, runner=fake_runner, parallel=parallel))
    monkeypatch.chdir(ROOT)
    env = env_with(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, output = invoke("up", "-i", str(PLAYGROUND), "--json", "--yes")
    assert code == 1
    assert '"cluster": "edge-jnu", "operation": "up", "ok": false' in output
    assert "up failed on 1 of 4 stacks: smartx-playground-edge-jnu" in output
    code, output = invoke("preview", "-i", str(PLAYGROUND), "--cluster", "core")
    assert code == 0, output
    assert "core" in output and "same 3" in output


FAKE_PULUMI = """#!/bin/sh
# Answers `version` like a real CLI, then refuses: how far dnabox gets without a real one.
echo "$PWD|$PULUMI_BACKEND_URL|$*" >> "$(dirname "$0")/calls"
if [ "$1" = version ]; then echo v{version}; exit 0; fi
echo "error: no cluster reachable" >&2
exit 255
"""


def test_past_the_boundary_each_stack_drives_the_cli_from_its_own_work_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The SDK's own version: the Automation API refuses CLIs older than it needs.
    (bin_dir / "pulumi").write_text(FAKE_PULUMI.format(version=metadata.version("pulumi")))
    (bin_dir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    jobs = adapter.plan_jobs(load_fleet(LAB), LAB, "preview", where(tmp_path),
                             env=env_with(tmp_path))
    for job in jobs:
        job.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        job.kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    outcomes = adapter.run_stacks(jobs)
    assert [(o.cluster, o.ok) for o in outcomes] == [("core", False), ("edge", False)]
    assert all(o.error == "error: no cluster reachable" for o in outcomes)
    assert len({o.pid for o in outcomes}) == 2
    calls = (bin_dir / "calls").read_text().splitlines()
    selects = sorted(c for c in calls if "stack select" in c)
    backend = jobs[0].env["PULUMI_BACKEND_URL"]
    assert selects == [
        f"{jobs[0].work_dir}|{backend}|--non-interactive stack select --stack lab-core",
        f"{jobs[1].work_dir}|{backend}|--non-interactive stack select --stack lab-edge",
    ]


def test_a_stack_without_its_kubeconfig_fails_alone_and_says_where_it_belongs(
        tmp_path: Path) -> None:
    (job,) = adapter.plan_jobs(load_fleet(LAB), LAB, "up", where(tmp_path), cluster="edge",
                               env=env_with(tmp_path))
    outcome = adapter.run_stack(job)
    assert not outcome.ok
    assert outcome.error == ("no kubeconfig for cluster edge: expected at "
                             "<state>/lab/kubeconfig/edge.yaml (the bootstrap writes it)")


# --- stacks per fleet, keys dnabox does not own ---------------------------------------------

def test_two_fleets_in_one_repo_never_share_a_stack_file(tmp_path: Path) -> None:
    assert invoke("config", "-i", str(LAB), "-o", str(tmp_path))[0] == 0
    assert invoke("config", "-i", str(PLAYGROUND), "-o", str(tmp_path))[0] == 0
    lab_core = yaml.safe_load((tmp_path / "Pulumi.lab-core.yaml").read_text())["config"]
    playground_core = yaml.safe_load(
        (tmp_path / "Pulumi.smartx-playground-core.yaml").read_text())["config"]
    assert lab_core["dnabox:inventory"] == os.path.relpath(LAB, tmp_path)
    assert playground_core["dnabox:inventory"] == os.path.relpath(PLAYGROUND, tmp_path)
    # Both fleets' files are current at once.
    assert invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--check")[0] == 0
    assert invoke("config", "-i", str(PLAYGROUND), "-o", str(tmp_path), "--check")[0] == 0


PULUMI_WRITTEN = """encryptionsalt: v1:3tDqm8sQWFo=:v1:4rcDnLIlsXX3k8cl:bA9TnCEwJqcDAHa1sw7WaWoDkPs=
secretsprovider: passphrase
config:
  dnabox:inventory: old/path.yaml
  dnabox:cluster: core
  dnabox:kubeconfig: old/kubeconfig.yaml
  dnabox:extra: mine
  kubernetes:context: lab-core
  app:token:
    secure: v1:Rt6xJdWkrvvDVVw5:F8kpiAUgqKm6yyCvUYxYTMRqOxQ=
"""


def test_regenerating_keeps_every_key_dnabox_does_not_own(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.lab-core.yaml"
    stack_file.write_text(PULUMI_WRITTEN)
    code, output = invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--check",
                          "--cluster", "core")
    assert code == 1 and "Pulumi.lab-core.yaml" in output
    assert invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "core")[0] == 0
    written = yaml.safe_load(stack_file.read_text())
    before = yaml.safe_load(PULUMI_WRITTEN)
    assert written["encryptionsalt"] == before["encryptionsalt"]
    assert written["secretsprovider"] == "passphrase"
    assert written["config"] == {
        "dnabox:inventory": os.path.relpath(LAB, tmp_path),
        "dnabox:cluster": "core",
        "dnabox:kubeconfig": ".dnabox/lab/kubeconfig/core.yaml",
        "dnabox:extra": "mine",
        "kubernetes:context": "lab-core",
        "app:token": before["config"]["app:token"],
    }
    # Current now: a second run and the check leave the file byte for byte as it is.
    text = stack_file.read_text()
    assert invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "core",
                  "--check")[0] == 0
    assert invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "core")[0] == 0
    assert stack_file.read_text() == text


def test_a_file_pulumi_rewrote_in_its_own_style_is_still_current(tmp_path: Path) -> None:
    invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "edge")
    stack_file = tmp_path / "Pulumi.lab-edge.yaml"
    document = yaml.safe_load(stack_file.read_text())
    # `pulumi config set` rewrites the file: no comment, its own order, a salt added.
    reordered = {"encryptionsalt": "v1:abc", "config": dict(reversed(document["config"].items()))}
    stack_file.write_text(yaml.safe_dump(reordered, sort_keys=True))
    assert invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "edge",
                  "--check")[0] == 0


def test_a_broken_stack_file_is_named_not_overwritten(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.lab-core.yaml"
    stack_file.write_text("config: [unclosed\n")
    code, output = invoke("config", "-i", str(LAB), "-o", str(tmp_path), "--cluster", "core")
    assert code == 2 and "Pulumi.lab-core.yaml: not valid YAML" in output
    assert stack_file.read_text() == "config: [unclosed\n"


def test_stack_up_previews_and_asks_before_applying(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    operations: list[str] = []
    monkeypatch.setattr(adapter, "require_pulumi_cli", lambda: "/usr/bin/pulumi")

    def recording(jobs: list[adapter.StackJob], parallel: int = 0) -> list[adapter.StackOutcome]:
        operations.extend(sorted({j.operation for j in jobs}))
        return [adapter.StackOutcome(j.cluster, j.operation, True, {"create": 2}, "log",
                                     stack=j.stack) for j in jobs]

    monkeypatch.setattr(adapter, "run_stacks", recording)
    for key, value in env_with(tmp_path).items():
        monkeypatch.setenv(key, value)
    # No terminal to ask: the preview is shown, nothing is applied.
    code, output = invoke("up", "-i", str(LAB))
    assert (code, operations) == (2, ["preview"]) and "not applied" in output
    # A terminal: "no" applies nothing, "yes" applies.
    monkeypatch.setattr(stack, "can_ask", lambda: True)
    operations.clear()
    result = CliRunner().invoke(cli(), ["stack", "up", "-i", str(LAB)], input="n\n")
    assert (result.exit_code, operations) == (0, ["preview"]) and "not applied" in result.output
    operations.clear()
    result = CliRunner().invoke(cli(), ["stack", "up", "-i", str(LAB)], input="y\n")
    assert (result.exit_code, operations) == (0, ["preview", "up"]), result.output
    # --yes (CI): straight to up.
    operations.clear()
    assert invoke("up", "-i", str(LAB), "--yes")[0] == 0 and operations == ["up"]
