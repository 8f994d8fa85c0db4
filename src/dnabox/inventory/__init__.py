"""The fleet model: read, validate and query the description of a fleet."""

from dnabox.inventory.loader import load_fleet
from dnabox.inventory.model import Box, Cluster, Fleet, Overlay, Plane, Site

__all__ = ["Box", "Cluster", "Fleet", "Overlay", "Plane", "Site", "load_fleet"]
