"""Stack configuration: one Pulumi stack per cluster, its config derived from the inventory.

Stacks are named ``<fleet>-<cluster>``. ``dnabox stack config`` writes the keys below into
``Pulumi.<stack>.yaml`` (and only them: every other key of the file is kept) and the program
(:mod:`dnabox.layers.program`) reads exactly these keys, so `pulumi up` in CI and
`dnabox stack up` compose the same resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dnabox.errors import EXIT_FAILED, DnaboxError
from dnabox.inventory.model import Cluster, Fleet
from dnabox.locations import STATE_DIR_NAME

NAMESPACE = "dnabox"
INVENTORY_KEY = "inventory"
CLUSTER_KEY = "cluster"
# A path, never the kubeconfig itself; the program still reads it as a secret so the path
# is masked in every log and preview.
KUBECONFIG_KEY = "kubeconfig"
KEYS = (INVENTORY_KEY, CLUSTER_KEY, KUBECONFIG_KEY)
HEADER = ("# dnabox owns the dnabox:inventory, dnabox:cluster and dnabox:kubeconfig keys\n"
          "# (`dnabox stack config -i {inventory}`); every other key is kept as it is.\n")
# The Pulumi program every stack runs: a two-line shim in the fleet repo (and in each stack's
# work dir) calling dnabox's installed program, so the repo never holds a copy of it.
PROGRAM_DIR = "stacks"
PROGRAM_SHIM = (
    '"""The Pulumi program of every dnabox stack: the one installed with dnabox."""\n\n'
    "from dnabox.layers.program import main\n\nmain()\n"
)
PROJECT_NAME = "dnabox"


class StaleStackConfig(DnaboxError):
    """Checked-in stack config no longer matches what the inventory generates."""

    exit_code = EXIT_FAILED


def qualified(key: str) -> str:
    return f"{NAMESPACE}:{key}"


OWNED = tuple(qualified(k) for k in KEYS)


def project_file(name: str = PROJECT_NAME) -> str:
    """Pulumi.yaml of a fleet repo (and of each stack's work dir)."""
    return (f"name: {name}\n"
            "description: Kubernetes layers of a dnabox fleet, one stack per cluster\n"
            "# The Python that runs `pulumi` (an activated venv in CI) must have dnabox "
            "installed.\n"
            f"runtime: python\nmain: {PROGRAM_DIR}/\n")


def stack_name(fleet: Fleet, cluster: Cluster) -> str:
    """``<fleet>-<cluster>``: two fleets in one repo (or one backend) never collide."""
    return f"{fleet.name}-{cluster.name}"


def default_kubeconfig(fleet: Fleet, cluster: Cluster) -> str:
    """Where the bootstrap leaves a cluster's kubeconfig, relative to the project root: the
    default fleet state dir of :class:`dnabox.locations.Locations` (CI writes it there)."""
    return str(PurePosixPath(STATE_DIR_NAME, fleet.name, "kubeconfig", f"{cluster.name}.yaml"))


def select_clusters(fleet: Fleet, name: str | None) -> list[Cluster]:
    if name is None:
        return list(fleet.clusters)
    for cluster in fleet.clusters:
        if cluster.name == name:
            return [cluster]
    known = ", ".join(c.name for c in fleet.clusters) or "none"
    raise DnaboxError(f"no cluster named {name!r} in fleet {fleet.name}",
                      hint=f"clusters of this fleet: {known}")


def stack_config(fleet: Fleet, cluster: Cluster, inventory: str,
                 kubeconfig: str | None = None) -> dict[str, str]:
    """The keys dnabox owns in ``cluster``'s stack config; ``inventory`` as the program
    should resolve it (relative to the project root)."""
    return {
        qualified(INVENTORY_KEY): inventory,
        qualified(CLUSTER_KEY): cluster.name,
        qualified(KUBECONFIG_KEY): kubeconfig or default_kubeconfig(fleet, cluster),
    }


def stack_file_name(fleet: Fleet, cluster: Cluster) -> str:
    return f"Pulumi.{stack_name(fleet, cluster)}.yaml"


@dataclass(frozen=True)
class StackFile:
    """One stack's config file: what it should hold, and whether it does already."""

    name: str
    stack: str
    text: str  # the content to write (the existing file's own bytes when current)
    current: bool


def merge_stack_file(existing: str | None, owned: dict[str, str], inventory: str,
                     source: str = "") -> StackFile:
    """``owned`` written over ``existing``, every other key kept (Pulumi's encryptionsalt
    and secretsprovider, the operator's own config). Current when the owned keys already
    hold these values: the file is then left byte for byte as it is."""
    document: dict[str, Any] = {}
    if existing is not None:
        try:
            loaded = yaml.safe_load(existing)
        except yaml.YAMLError as exc:
            raise DnaboxError(f"{source}: not valid YAML: {exc}",
                              hint="fix or remove the file, then run again") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise DnaboxError(f"{source}: a Pulumi stack file must be a mapping",
                              hint="fix or remove the file, then run again")
        document = loaded or {}
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise DnaboxError(f"{source}: config: must be a mapping",
                          hint="fix or remove the file, then run again")
    if existing is not None and all(config.get(k) == v for k, v in owned.items()):
        return StackFile(source, "", existing, True)
    merged = {**document, "config": {**owned, **{k: v for k, v in config.items()
                                                if k not in owned}}}
    body = yaml.safe_dump(merged, sort_keys=False, default_flow_style=False)
    return StackFile(source, "", HEADER.format(inventory=inventory) + body, False)


def stack_files(fleet: Fleet, inventory: str, project: Path,
                cluster: str | None = None) -> list[StackFile]:
    """Every selected cluster's stack file in ``project``, merged with what is there."""
    files = []
    for c in select_clusters(fleet, cluster):
        name = stack_file_name(fleet, c)
        path = project / name
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        merged = merge_stack_file(existing, stack_config(fleet, c, inventory), inventory,
                                  source=name)
        files.append(StackFile(name, stack_name(fleet, c), merged.text, merged.current))
    return files
