"""Drive the stacks through Pulumi's Automation API: one work dir and one process per stack.

Stacks of different clusters share nothing (work dir, config file, process, lock), so they run
in parallel; a stack's failure is reported with its log and never stops the others. The
Automation API shells out to the Pulumi CLI, which must be on PATH.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from dnabox.errors import EnvironmentProblem
from dnabox.inventory.model import Fleet
from dnabox.layers import stack_config
from dnabox.locations import Locations

Operation = Literal["preview", "up", "destroy"]
INSTALL_COMMAND = "curl -fsSL https://get.pulumi.com | sh"
PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


@dataclass(frozen=True)
class StackJob:
    """Everything one stack's process needs; plain data, so it crosses process boundaries."""

    operation: Operation
    fleet: str
    cluster: str
    stack: str  # <fleet>-<cluster>
    project_name: str
    work_dir: Path
    inventory: Path
    kubeconfig: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackOutcome:
    cluster: str
    operation: Operation
    ok: bool
    changes: dict[str, int]
    log: str
    error: str = ""
    pid: int = 0
    stack: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_pulumi_cli(which: Callable[[str], str | None] = shutil.which) -> str:
    """The path of the ``pulumi`` binary, or a clear error saying how to install it."""
    path = which("pulumi")
    if path is None:
        raise EnvironmentProblem(
            "the Pulumi CLI (`pulumi`) is not on PATH; `dnabox stack preview|up|destroy` "
            "drives it through the Automation API",
            hint=f"install it with `{INSTALL_COMMAND}` and add ~/.pulumi/bin to PATH "
                 "(`dnabox stack config` works without it)",
        )
    return path


def backend_url(pulumi_state: Path, env: Mapping[str, str]) -> str:
    """$PULUMI_BACKEND_URL when set (CI, Pulumi Cloud), else the fleet's local file backend
    (stack names carry the fleet, so one shared backend would do as well)."""
    return env.get("PULUMI_BACKEND_URL") or f"file://{pulumi_state / 'backend'}"


def project_name(project: Path) -> str:
    """The fleet repo's Pulumi project name (its Pulumi.yaml), so `dnabox stack` and CI's
    `pulumi` address the same stacks; dnabox's default when the repo has none."""
    try:
        loaded = yaml.safe_load((project / "Pulumi.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return stack_config.PROJECT_NAME
    name = loaded.get("name") if isinstance(loaded, dict) else None
    return name if isinstance(name, str) and name else stack_config.PROJECT_NAME


def plan_jobs(
    fleet: Fleet,
    inventory: Path,
    operation: Operation,
    locations: Locations,
    cluster: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[StackJob]:
    """One job per selected cluster, each with its own work dir under the fleet's state."""
    environ = dict(os.environ if env is None else env)
    state = locations.pulumi_state(fleet.name)
    backend = backend_url(state, environ)
    if backend.startswith("file://") and not any(environ.get(v) for v in PASSPHRASE_VARS):
        raise EnvironmentProblem(
            "a local Pulumi backend encrypts stack secrets with a passphrase, and none is set",
            hint="export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE); keep it "
                 "safe, every later run of these stacks needs the same one",
        )
    child_env = {"PULUMI_BACKEND_URL": backend, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    return [
        StackJob(
            operation=operation, fleet=fleet.name, cluster=c.name,
            stack=stack_config.stack_name(fleet, c),
            project_name=project_name(locations.project),
            work_dir=state / "work" / c.name,
            inventory=inventory.resolve(),
            kubeconfig=locations.kubeconfig(fleet.name, c.name),
            env=child_env,
        )
        for c in stack_config.select_clusters(fleet, cluster)
    ]


def prepare_work_dir(job: StackJob) -> None:
    """The stack's own project dir: Pulumi.yaml and the shim calling dnabox's program."""
    program = job.work_dir / stack_config.PROGRAM_DIR
    program.mkdir(parents=True, exist_ok=True)
    (job.work_dir / "Pulumi.yaml").write_text(stack_config.project_file(job.project_name),
                                              encoding="utf-8")
    (program / "__main__.py").write_text(stack_config.PROGRAM_SHIM, encoding="utf-8")


def job_config(job: StackJob) -> dict[str, tuple[str, bool]]:
    """Config key -> (value, secret) for the stack: the generated config, absolute paths."""
    return {
        stack_config.qualified(stack_config.INVENTORY_KEY): (str(job.inventory), False),
        stack_config.qualified(stack_config.CLUSTER_KEY): (job.cluster, False),
        stack_config.qualified(stack_config.KUBECONFIG_KEY): (str(job.kubeconfig), True),
    }


def run_stack(job: StackJob) -> StackOutcome:
    """Run one operation on one stack (meant to run in its own process)."""
    from pulumi import automation as auto

    prepare_work_dir(job)
    log_path = job.work_dir / f"{job.operation}.log"
    if not job.kubeconfig.is_file():
        # Named by convention only: the path itself stays out of logs like the config value.
        return StackOutcome(
            job.cluster, job.operation, False, {}, str(log_path),
            f"no kubeconfig for cluster {job.cluster}: expected at "
            f"<state>/{job.fleet}/kubeconfig/{job.cluster}.yaml (the bootstrap writes it)",
            os.getpid(), job.stack)
    try:
        with log_path.open("w", encoding="utf-8") as log:
            stack = auto.create_or_select_stack(
                stack_name=job.stack, work_dir=str(job.work_dir),
                opts=auto.LocalWorkspaceOptions(work_dir=str(job.work_dir), env_vars=job.env),
            )
            stack.set_all_config({
                key: auto.ConfigValue(value=value, secret=secret)
                for key, (value, secret) in job_config(job).items()
            })
            changes = _operate(stack, job.operation, log.write)
    except auto.CommandError as exc:
        return StackOutcome(job.cluster, job.operation, False, {}, str(log_path),
                            _tail(str(exc)), os.getpid(), job.stack)
    return StackOutcome(job.cluster, job.operation, True, changes, str(log_path),
                        pid=os.getpid(), stack=job.stack)


def _operate(stack: Any, operation: Operation, write: Callable[[str], Any]) -> dict[str, int]:
    if operation == "preview":
        preview = stack.preview(on_output=write, color="never", diff=False)
        return dict(preview.change_summary or {})
    if operation == "up":
        result = stack.up(on_output=write, color="never")
    else:
        result = stack.destroy(on_output=write, color="never")
    return dict(result.summary.resource_changes or {})


def _tail(text: str, lines: int = 6) -> str:
    """The end of the CLI's stderr (where the cause is); Pulumi masks secrets in it."""
    _, marker, stderr = text.partition(" stderr: ")
    kept = [line for line in (stderr if marker else text).strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run_stacks(
    jobs: list[StackJob],
    runner: Callable[[StackJob], StackOutcome] = run_stack,
    parallel: int = 0,
) -> list[StackOutcome]:
    """Every job in its own process, ``parallel`` at a time (0: all at once)."""
    if not jobs:
        return []
    workers = parallel if parallel > 0 else len(jobs)
    # spawn + max_tasks_per_child=1: a fresh process per stack, never one reused for the
    # next (the Automation API keeps per-process state; fork cannot limit tasks per child).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context,
                             max_tasks_per_child=1) as pool:
        return list(pool.map(runner, jobs))
