"""`dnabox bootstrap`: the plain bare-metal bootstrap, playbooks/site.yml on chosen boxes.

Every chosen box runs every role it needs (`dnabox up` is the incremental way). Missing
artifacts stop it before any box is touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dnabox.adapters.ansible import TaskEvent, run_playbook
from dnabox.inventory.model import Fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.artifacts import check_artifacts
from dnabox.plan.desired import plan_fleet
from dnabox.plan.selection import Selection, select
from dnabox.provision.dna_credentials import box_secrets
from dnabox.provision.generated_files import generated_files
from dnabox.provision.lock import FleetLock


@dataclass(frozen=True)
class BootstrapBox:
    name: str
    ok: int
    changed: int
    failed: int
    unreachable: int


@dataclass(frozen=True)
class BootstrapReport:
    boxes: tuple[BootstrapBox, ...]
    seconds: float
    status: str  # ansible-runner's
    rc: int
    run_dir: Path
    # The run's artifacts/<uuid> (its stdout is the Ansible log), when ansible-runner made one.
    log_dir: Path | None = None

    @property
    def failed(self) -> list[str]:
        return [b.name for b in self.boxes if b.failed or b.unreachable]

    @property
    def ok(self) -> bool:
        return not self.failed and self.rc == 0

    def as_json(self) -> dict[str, Any]:
        return {"boxes": [asdict(b) for b in self.boxes], "seconds": round(self.seconds, 1)}


def bootstrap(fleet: Fleet, locations: Locations, chosen_by: Selection | None = None, *,
              roles: Sequence[str] | None = None, forks: int = 50,
              on_start: Callable[[list[str]], None] | None = None,
              on_event: Callable[[TaskEvent], None] | None = None) -> BootstrapReport:
    """Run site.yml on the selected boxes (every box when nothing is selected), only
    ``roles`` when given; ``on_start`` hears the chosen boxes, ``on_event`` every task."""
    chosen = [b.name for b in select(fleet, chosen_by or Selection())]
    check_artifacts(fleet, chosen)
    rendered = render_ansible_inventory(fleet, locations)
    state = locations.ensure_fleet_state(fleet.name)
    run_dir = state / "ansible" / "bootstrap"
    # One run at a time per fleet (as `dnabox up`): two would share the run directory, its
    # extravars (the second's would go on ansible-playbook's command line) and the boxes.
    with FleetLock(state):
        if on_start is not None:
            on_start(chosen)
        started = time.monotonic()
        # The D-N-A secrets travel as an extra variable (run_playbook removes it afterwards).
        secrets = box_secrets(fleet, state, chosen)
        # Files the planner makes in Python (no templates): copied from the run's directory.
        with generated_files(plan_fleet(fleet, locations, rendered), chosen, roles,
                             run_dir) as generated:
            result = run_playbook(locations.site_playbook, rendered, private_data_dir=run_dir,
                                  limit=chosen, tags=list(roles) if roles else None,
                                  forks=forks, roles_path=locations.roles, on_event=on_event,
                                  extravars={"dna_secret_files": secrets, **generated})
    rows = []
    for name in chosen:
        stats = result.hosts.get(name)
        # A box Ansible never reported on did not converge.
        rows.append(BootstrapBox(name, 0, 0, 1, 0) if stats is None else BootstrapBox(
            name, stats.ok, stats.changed, stats.failed, stats.unreachable))
    return BootstrapReport(tuple(rows), time.monotonic() - started, result.status, result.rc,
                           run_dir, result.artifact_dir)
