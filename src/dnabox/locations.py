"""Where everything dnabox reads and writes lives, decided in one place.

Four places, one rule each:

* **assets**: the playbooks, roles, runbooks and templates dnabox ships. They are package
  data (``dnabox/assets/``), so an installed dnabox finds them next to its own code and a
  source checkout finds the same files at the same relative place.
* **project**: the operator's fleet repository, the nearest directory at or above the
  working directory holding ``Pulumi.yaml`` or ``.git`` (else the working directory). Stack
  files are written there and the relative paths in them resolve from there.
* **state**: controller-side state, per fleet: ``$DNABOX_STATE_DIR/<fleet>`` or
  ``<project>/.dnabox/<fleet>`` (journal, lock, Ansible runs, the connection agent's
  socket, the fleet's Pulumi backend and work dirs, the clusters' kubeconfigs).
* **on-box state**: ``/var/lib/dnabox`` on every box (fingerprints, the drained mark),
  handed to Ansible as the one variable ``dnabox_state_dir``.

Standard library only: the fast ``dnabox exec`` path imports this before anything heavy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STATE_ENV = "DNABOX_STATE_DIR"
STATE_DIR_NAME = ".dnabox"
PROJECT_MARKERS = ("Pulumi.yaml", ".git")
ON_BOX_STATE_DIR = "/var/lib/dnabox"
ASSETS = Path(__file__).resolve().parent / "assets"


def find_project(start: Path | None = None) -> Path:
    """The fleet repository: the nearest of ``start`` (default: cwd) and its parents that
    holds one of :data:`PROJECT_MARKERS`; ``start`` itself when none does."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return here


def state_root(project: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``$DNABOX_STATE_DIR``, else ``.dnabox/`` in the project (git-ignored by the scaffold)."""
    configured = (os.environ if environ is None else environ).get(STATE_ENV)
    return Path(configured).resolve() if configured else project / STATE_DIR_NAME


@dataclass(frozen=True)
class Locations:
    """Every path dnabox uses; built once by the CLI root and passed down."""

    project: Path
    state: Path
    assets: Path = ASSETS
    on_box_state: str = ON_BOX_STATE_DIR

    @classmethod
    def discover(cls, start: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> Locations:
        project = find_project(start)
        return cls(project=project, state=state_root(project, environ))

    # What dnabox ships.
    @property
    def playbooks(self) -> Path:
        return self.assets / "playbooks"

    @property
    def roles(self) -> Path:
        return self.playbooks / "roles"

    @property
    def runbooks(self) -> Path:
        return self.playbooks / "runbooks"

    @property
    def templates(self) -> Path:
        return self.assets / "templates"

    @property
    def site_playbook(self) -> Path:
        return self.playbooks / "site.yml"

    # What dnabox keeps per fleet on the controller.
    def fleet_state(self, fleet: str) -> Path:
        """The fleet's state dir (not created here; see :meth:`ensure_fleet_state`)."""
        return self.state / fleet

    def ensure_fleet_state(self, fleet: str) -> Path:
        """The fleet's state dir, created 0700: it holds runs, logs and kubeconfigs."""
        path = self.fleet_state(fleet)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def pulumi_state(self, fleet: str) -> Path:
        """The fleet's local Pulumi backend and one work dir per stack."""
        return self.fleet_state(fleet) / "pulumi"

    def kubeconfig_dir(self, fleet: str) -> Path:
        return self.fleet_state(fleet) / "kubeconfig"

    def kubeconfig(self, fleet: str, cluster: str) -> Path:
        """Where the kubernetes role leaves a cluster's admin kubeconfig (mode 0600)."""
        return self.kubeconfig_dir(fleet) / f"{cluster}.yaml"
