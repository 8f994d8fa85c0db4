"""The DAG of work units for one `dnabox up`.

preflight per box -> bootstrap per site -> cluster control plane -> cluster joins
-> stacks per cluster -> verify per site. Barriers exist only where the DAG needs them:
a site's bootstrap waits for its own boxes' preflight, never for other sites, and goes on
with the boxes that answered when some did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dnabox.inventory.model import Fleet


@dataclass(frozen=True)
class WorkUnit:
    id: str
    kind: str  # preflight | bootstrap | control_plane | join | stacks | verify
    site: str = ""
    boxes: tuple[str, ...] = ()
    cluster: str = ""
    needs: tuple[str, ...] = field(default=())
    # Needs whose failure does not block this unit unless all of them failed: a site's
    # bootstrap goes on without a box that never answered (and fails naming it).
    tolerates: tuple[str, ...] = field(default=())


def build_dag(fleet: Fleet) -> list[WorkUnit]:
    """Units in a topological order (each unit after everything it needs)."""
    units: list[WorkUnit] = []
    for box in fleet.boxes:
        units.append(WorkUnit(f"preflight:{box.name}", "preflight", box.site, (box.name,)))
    for site in fleet.sites:
        boxes = tuple(b.name for b in fleet.boxes if b.site == site.name)
        if boxes:
            preflights = tuple(f"preflight:{b}" for b in boxes)
            units.append(WorkUnit(f"bootstrap:{site.name}", "bootstrap", site.name, boxes,
                                  needs=preflights, tolerates=preflights))
    for cluster in fleet.clusters:
        cp_sites = sorted({fleet.box(b).site for b in cluster.control_planes})
        units.append(WorkUnit(
            f"control_plane:{cluster.name}", "control_plane", boxes=tuple(cluster.control_planes),
            cluster=cluster.name, needs=tuple(f"bootstrap:{s}" for s in cp_sites)))
        worker_sites = sorted({fleet.box(b).site for b in cluster.workers})
        units.append(WorkUnit(
            f"join:{cluster.name}", "join", boxes=tuple(cluster.workers), cluster=cluster.name,
            needs=(f"control_plane:{cluster.name}", *(f"bootstrap:{s}" for s in worker_sites))))
        units.append(WorkUnit(f"stacks:{cluster.name}", "stacks", cluster=cluster.name,
                              boxes=tuple(cluster.members), needs=(f"join:{cluster.name}",)))
    for site in fleet.sites:
        if any(b.site == site.name for b in fleet.boxes):
            units.append(WorkUnit(f"verify:{site.name}", "verify", site.name,
                                  tuple(b.name for b in fleet.boxes if b.site == site.name),
                                  needs=(f"bootstrap:{site.name}",)))
    return units
