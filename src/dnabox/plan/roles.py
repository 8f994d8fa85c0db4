"""Which bootstrap roles apply to which box: one answer for the planner and site.yml.

The inventory hands the list to Ansible as ``dnabox_roles``; the playbook runs a role on a
box only when it is listed there, so the planner's fingerprints and the playbook agree.
"""

from __future__ import annotations

from dnabox.inventory.model import Box, Fleet
from dnabox.plan.runtimes import runtimes_for

# Order matters: the runtime before its extra handlers, OVS before the CNI that uses it,
# Kubernetes last.
ROLE_ORDER = ("base", "container_runtime", "kata", "apptainer", "ovs", "cni", "kubernetes")


def roles_for(fleet: Fleet, box: Box) -> list[str]:
    runtimes = {r.name for r in runtimes_for(fleet, box)}
    wanted = {"base", "container_runtime", "ovs", "cni"}
    wanted |= {name for name in ("kata", "apptainer") if name in runtimes}
    if fleet.cluster_of(box.name) is not None:
        wanted.add("kubernetes")
    wanted -= set(fleet.bootstrap.skip_roles)
    return [role for role in ROLE_ORDER if role in wanted]
