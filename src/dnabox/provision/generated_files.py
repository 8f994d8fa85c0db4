"""A role's generated files on the Ansible path.

The planner makes them in Python (``RoleSpec.generated``: program code, JSON configs) and
the direct program writes them like every rendered file. Ansible copies them from the
controller: each distinct content is written once, named by its sha256, under the run's
directory, and the boxes' lists (``dnabox_generated_files``: box -> [{role, dest, mode,
src}]) travel as an extra variable that the base role's files tasks read.

The copies live only while their run does (``generated_files``): the run directory is reused
run after run, and a copy kept per content ever shipped grew without bound. They hold no
secret today (configs name password files, the D-N-A secrets travel apart), but nothing
here checks that, so none is left on the controller either.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dnabox.plan.desired import BoxPlan

GENERATED_DIR = "generated"


@contextmanager
def generated_files(plans: Mapping[str, BoxPlan], boxes: Iterable[str],
                    roles: Iterable[str] | None, run_dir: Path) -> Iterator[dict[str, Any]]:
    """``generated_extravars`` written under ``<run_dir>/generated`` for one run: whatever a
    killed run left there is removed first, and the whole directory when the run ends (its
    copies are the plan's, remade on every run; the run's artifacts stay)."""
    directory = run_dir / GENERATED_DIR
    shutil.rmtree(directory, ignore_errors=True)
    try:
        yield generated_extravars(plans, boxes, roles, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def generated_extravars(plans: Mapping[str, BoxPlan], boxes: Iterable[str],
                        roles: Iterable[str] | None, directory: Path) -> dict[str, Any]:
    """``{"dnabox_generated_files": ...}`` for ``boxes`` (only ``roles`` when given); {}
    when none of them has a generated file."""
    wanted = set(roles) if roles is not None else None
    per_box: dict[str, list[dict[str, str]]] = {}
    for box in boxes:
        plan = plans.get(box)
        if plan is None:
            continue
        for rendered in plan.files:
            if not rendered.generated or (wanted is not None and rendered.role not in wanted):
                continue
            source = directory / rendered.sha256
            if not source.exists():
                directory.mkdir(parents=True, exist_ok=True)
                partial = source.with_suffix(".partial")
                partial.write_text(rendered.content, encoding="utf-8")
                partial.replace(source)
            per_box.setdefault(box, []).append({"role": rendered.role, "dest": rendered.dest,
                                                "mode": rendered.mode, "src": str(source)})
    return {"dnabox_generated_files": per_box} if per_box else {}
