"""The ``stacks`` units of `dnabox up`: a formed cluster's stack, through the Pulumi adapter.

A unit runs its cluster's stack when both things it needs are on this machine: the Pulumi
CLI and the cluster's kubeconfig (the kubernetes role fetches it when the cluster forms).
Otherwise it is skipped and says exactly which of the two is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from dnabox.adapters import pulumi as pulumi_adapter
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.locations import Locations
from dnabox.provision.scheduler import UnitOutcome

StackRunner = Callable[[list[pulumi_adapter.StackJob]], list[pulumi_adapter.StackOutcome]]


def missing_for_stack(fleet: Fleet, locations: Locations, cluster: str,
                      which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """What this machine lacks to run ``cluster``'s stack (empty: nothing)."""
    missing = []
    if which("pulumi") is None:
        missing.append(f"the Pulumi CLI (`pulumi` is not on PATH; install: "
                       f"{pulumi_adapter.INSTALL_COMMAND})")
    kubeconfig = locations.kubeconfig(fleet.name, cluster)
    if not kubeconfig.is_file():
        missing.append(f"the cluster's kubeconfig ({kubeconfig} does not exist; the "
                       "kubernetes role fetches it when the cluster forms)")
    return missing


def run_stack_unit(fleet: Fleet, locations: Locations, cluster: str, *,
                   which: Callable[[str], str | None] = shutil.which,
                   runner: StackRunner = pulumi_adapter.run_stacks) -> UnitOutcome:
    missing = missing_for_stack(fleet, locations, cluster, which)
    if missing:
        return UnitOutcome("skipped", "needs " + " and ".join(missing))
    try:
        jobs = pulumi_adapter.plan_jobs(fleet, Path(fleet.source), "up", locations, cluster)
    except DnaboxError as exc:
        return UnitOutcome("failed", f"{exc.message} ({exc.hint})" if exc.hint else exc.message)
    (outcome,) = runner(jobs)
    if not outcome.ok:
        return UnitOutcome("failed", f"stack {outcome.stack}: {outcome.error} (log: {outcome.log})")
    changes = ", ".join(f"{k} {v}" for k, v in sorted(outcome.changes.items())) or "no changes"
    return UnitOutcome("changed" if set(outcome.changes) - {"same"} else "ok",
                       f"stack {outcome.stack}: {changes}")
