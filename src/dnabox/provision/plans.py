"""The fleet's plans as the controller compares them with its boxes.

The planner's plans (``dnabox.plan.desired.plan_fleet``) with a digest of each role's
secrets folded into the role's fingerprint: credentials that changed on the controller (a
new state dir, a rotation) make the role that carries them due, where the plan alone would
call the box converged and leave it with passwords nobody holds any more.
"""

from __future__ import annotations

from typing import Any

from dnabox.inventory.model import Fleet
from dnabox.locations import Locations
from dnabox.plan.desired import BoxPlan, plan_fleet
from dnabox.provision.dna_credentials import secret_digests


def controller_plans(fleet: Fleet, locations: Locations, inventory: dict[str, Any] | None = None,
                     *, create_secrets: bool = False) -> dict[str, BoxPlan]:
    """Every box's plan. ``create_secrets``: make missing credentials (``up`` does); read
    only otherwise, a role whose credentials do not exist yet then shows as due."""
    state = (locations.ensure_fleet_state(fleet.name) if create_secrets
             else locations.fleet_state(fleet.name))
    return plan_fleet(fleet, locations, inventory,
                      secret_digests(fleet, state, create=create_secrets))
