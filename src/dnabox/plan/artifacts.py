"""Which binary artifacts (what Debian does not ship) each bootstrap role needs.

Kata Containers, Apptainer and the Kubernetes binaries come from ``artifacts.files`` in the
inventory (downloaded, or copied from an offline bundle). A fleet that needs one it does not
declare fails here, naming what to add, before any box is touched.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from dnabox.errors import DnaboxError
from dnabox.inventory.model import Box, Fleet
from dnabox.plan.catalogue import role_spec
from dnabox.plan.roles import roles_for

# What each artifact is, for the error message.
DESCRIPTIONS: dict[str, str] = {
    "kata-static": "the kata-static release tarball (opt/kata/...)",
    "apptainer": "the apptainer .deb for Debian bookworm",
    "kubeadm": "the kubeadm binary", "kubelet": "the kubelet binary",
    "kubectl": "the kubectl binary", "k3s": "the k3s binary",
}


class ArtifactMissing(DnaboxError):
    """The fleet needs binary artifacts that it does not declare (or the bundle lacks)."""

    exit_code = 6


@dataclass(frozen=True)
class MissingArtifact:
    role: str
    name: str
    boxes: tuple[str, ...]
    reason: str  # "not declared" | "not in the bundle" | "checksum differs in the bundle"

    def __str__(self) -> str:
        boxes = ", ".join(self.boxes[:3]) + (" ..." if len(self.boxes) > 3 else "")
        return f"{self.name} ({DESCRIPTIONS.get(self.name, 'artifact')}) for role {self.role} " \
               f"on {boxes}: {self.reason}"


def required_artifacts(fleet: Fleet, box: Box) -> dict[str, list[str]]:
    """Artifact names each role of ``box`` needs (roles that need none are left out)."""
    needed: dict[str, list[str]] = {}
    for role in roles_for(fleet, box):
        names = role_spec(role).artifacts_for(fleet, box)
        if names:
            needed[role] = list(names)
    return needed


def missing_artifacts(fleet: Fleet, boxes: list[str] | None = None) -> list[MissingArtifact]:
    """Artifacts the chosen boxes need that the fleet does not declare, or (offline) whose
    file is absent from the bundle or differs from its declared sha256."""
    declared = {a.name: a for a in fleet.artifacts.files}
    wanted = set(boxes) if boxes is not None else None
    needs: dict[tuple[str, str], list[str]] = {}
    for box in fleet.boxes:
        if wanted is not None and box.name not in wanted:
            continue
        for role, names in required_artifacts(fleet, box).items():
            for name in names:
                needs.setdefault((role, name), []).append(box.name)
    missing = []
    bundle = Path(fleet.artifacts.bundle_dir).expanduser() if fleet.artifacts.bundle_dir else None
    for (role, name), on in sorted(needs.items()):
        if name not in declared:
            missing.append(MissingArtifact(role, name, tuple(on), "not declared"))
        elif fleet.artifacts.source == "offline" and bundle is not None:
            path = bundle / "files" / name
            if not path.is_file():
                missing.append(MissingArtifact(role, name, tuple(on), "not in the bundle"))
            elif sha256_of(path) != declared[name].sha256:
                missing.append(MissingArtifact(role, name, tuple(on),
                                               "checksum differs in the bundle"))
    return missing


def check_artifacts(fleet: Fleet, boxes: list[str] | None = None) -> None:
    """Raise :class:`ArtifactMissing` naming every artifact to add; return when all are there."""
    missing = missing_artifacts(fleet, boxes)
    if fleet.artifacts.source == "offline" and not fleet.artifacts.bundle_dir:
        raise ArtifactMissing("artifacts.source is offline but artifacts.bundle_dir is not set",
                              hint="run `dnabox bundle build -i FILE -o DIR` and set "
                                   "artifacts.bundle_dir: DIR")
    if not missing:
        return
    lines = "\n".join(f"  - {m}" for m in missing)
    undeclared = [m for m in missing if m.reason == "not declared"]
    example = "\n".join(
        f"      - {{name: {m.name}, url: https://..., sha256: <64 hex>, role: {m.role}}}"
        for m in undeclared)
    hint = (f"declare them in the inventory:\n    artifacts:\n      files:\n{example}\n"
            "  or skip the roles on this fleet: bootstrap.skip_roles: [...]"
            if undeclared else "rebuild the bundle: dnabox bundle build -i FILE -o DIR")
    raise ArtifactMissing(f"{len(missing)} artifact{'s' if len(missing) != 1 else ''} missing "
                          f"before bootstrap (no box was touched):\n{lines}", hint=hint)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
