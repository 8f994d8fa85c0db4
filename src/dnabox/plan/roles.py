"""Which bootstrap roles apply to which box: one answer for the planner and site.yml.

The inventory hands the list to Ansible as ``dnabox_roles``; the playbook runs a role on a
box only when it is listed there, so the planner's fingerprints and the playbook agree.
What each role is, and when it applies, is ``dnabox.plan.catalogue``.
"""

from __future__ import annotations

from dnabox.inventory.model import Box, Fleet
from dnabox.plan.catalogue import CATALOGUE


def roles_for(fleet: Fleet, box: Box) -> list[str]:
    skipped = set(fleet.bootstrap.skip_roles)
    return [spec.name for spec in CATALOGUE
            if spec.name not in skipped and spec.applies(fleet, box)]
