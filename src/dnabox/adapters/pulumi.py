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

from dnabox.errors import EnvironmentProblem
from dnabox.inventory.model import Fleet
from dnabox.layers import stack_config

Operation = Literal["preview", "up", "destroy"]
INSTALL_COMMAND = "curl -fsSL https://get.pulumi.com | sh"
PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


@dataclass(frozen=True)
class StackJob:
    """Everything one stack's process needs; plain data, so it crosses process boundaries."""

    operation: Operation
    fleet: str
    cluster: str
    project_root: Path
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


def find_project_root(start: Path | None = None) -> Path:
    """The directory holding Pulumi.yaml and stacks/: the cwd's ancestors, else the checkout
    this package was installed from (editable install)."""
    here = (start or Path.cwd()).resolve()
    candidates = [here, *here.parents, *Path(__file__).resolve().parents]
    for candidate in candidates:
        if (candidate / "Pulumi.yaml").is_file() and (candidate / "stacks").is_dir():
            return candidate
    raise EnvironmentProblem(
        "the dnabox Pulumi project (Pulumi.yaml and stacks/) was not found",
        hint="run dnabox from its checkout, or from a directory below it",
    )


def state_dir(project_root: Path, env: Mapping[str, str]) -> Path:
    """$DNABOX_STATE_DIR, else .dnabox/ in the project (git-ignored)."""
    configured = env.get("DNABOX_STATE_DIR")
    return Path(configured).resolve() if configured else project_root / ".dnabox"


def backend_url(state: Path, fleet: str, env: Mapping[str, str]) -> str:
    """$PULUMI_BACKEND_URL when set (CI, Pulumi Cloud), else a local file backend per fleet.

    Per fleet because stacks are named after clusters and two fleets may both have a
    cluster called ``core``.
    """
    return env.get("PULUMI_BACKEND_URL") or f"file://{state / 'pulumi' / 'backend' / fleet}"


def plan_jobs(
    fleet: Fleet,
    inventory: Path,
    operation: Operation,
    cluster: str | None = None,
    env: Mapping[str, str] | None = None,
    project_root: Path | None = None,
) -> list[StackJob]:
    """One job per selected cluster, each with its own work dir under the state dir."""
    environ = dict(os.environ if env is None else env)
    root = project_root or find_project_root()
    state = state_dir(root, environ)
    backend = backend_url(state, fleet.name, environ)
    if backend.startswith("file://") and not any(environ.get(v) for v in PASSPHRASE_VARS):
        raise EnvironmentProblem(
            "a local Pulumi backend encrypts stack secrets with a passphrase, and none is set",
            hint="export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE); keep it "
                 "safe, every later run of these stacks needs the same one",
        )
    child_env = {"PULUMI_BACKEND_URL": backend, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    return [
        StackJob(
            operation=operation, fleet=fleet.name, cluster=c.name, project_root=root,
            work_dir=state / "pulumi" / "work" / fleet.name / c.name,
            inventory=inventory.resolve(),
            kubeconfig=state / "kubeconfig" / fleet.name / f"{c.name}.yaml",
            env=child_env,
        )
        for c in stack_config.select_clusters(fleet, cluster)
    ]


def prepare_work_dir(job: StackJob) -> None:
    """The stack's own project dir: a copy of Pulumi.yaml and a link to the program."""
    job.work_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(job.project_root / "Pulumi.yaml", job.work_dir / "Pulumi.yaml")
    link = job.work_dir / "stacks"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(job.project_root / "stacks", target_is_directory=True)


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
            f"<state>/kubeconfig/{job.fleet}/{job.cluster}.yaml (the bootstrap writes it)",
            os.getpid())
    try:
        with log_path.open("w", encoding="utf-8") as log:
            stack = auto.create_or_select_stack(
                stack_name=job.cluster, work_dir=str(job.work_dir),
                opts=auto.LocalWorkspaceOptions(work_dir=str(job.work_dir), env_vars=job.env),
            )
            stack.set_all_config({
                key: auto.ConfigValue(value=value, secret=secret)
                for key, (value, secret) in job_config(job).items()
            })
            changes = _operate(stack, job.operation, log.write)
    except auto.CommandError as exc:
        return StackOutcome(job.cluster, job.operation, False, {}, str(log_path),
                            _tail(str(exc)), os.getpid())
    return StackOutcome(job.cluster, job.operation, True, changes, str(log_path),
                        pid=os.getpid())


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
