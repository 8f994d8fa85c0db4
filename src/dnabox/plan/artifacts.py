"""Which binary artifacts (what Debian does not ship) each bootstrap role needs.

Kata Containers, Apptainer and the Kubernetes binaries come from ``artifacts.files`` in the
inventory (downloaded, or copied from an offline bundle). A fleet that needs one it does not
declare fails here, naming what to add, before any box is touched.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnabox.errors import EXIT_ARTIFACT_MISSING, DnaboxError
from dnabox.inventory.model import Artifact, Box, Fleet
from dnabox.plan.accelerators import TOOLKIT_ARTIFACT
from dnabox.plan.catalogue import role_spec
from dnabox.plan.containerd import STATIC_ARTIFACT
from dnabox.plan.roles import roles_for

# What each artifact is, for the error message.
DESCRIPTIONS: dict[str, str] = {
    "kata-static": "the kata-static release tarball (opt/kata/...)",
    "apptainer": "the apptainer .deb for Debian bookworm",
    "kubeadm": "the kubeadm binary", "kubelet": "the kubelet binary",
    "kubectl": "the kubectl binary", "k3s": "the k3s binary",
    STATIC_ARTIFACT: "the containerd 2 static release tarball (containerd-static-<version>-"
                     "linux-<arch>.tar.gz: bin/containerd, bin/containerd-shim-runc-v2, bin/ctr)",
    TOOLKIT_ARTIFACT: "the NVIDIA container toolkit .deb tarball "
                      "(nvidia-container-toolkit_<version>_deb_<arch>.tar.gz)",
}


class ArtifactMissing(DnaboxError):
    """The fleet needs binary artifacts that it does not declare (or the bundle lacks)."""

    exit_code = EXIT_ARTIFACT_MISSING


@dataclass(frozen=True)
class MissingArtifact:
    role: str
    name: str
    boxes: tuple[str, ...]
    # "not declared" | "no <arch> entry (...)" | "not in the bundle" | "checksum differs..."
    reason: str
    arch: str = ""

    def __str__(self) -> str:
        boxes = ", ".join(self.boxes[:3]) + (" ..." if len(self.boxes) > 3 else "")
        arch = f" ({self.arch})" if self.arch else ""
        return f"{self.name} ({DESCRIPTIONS.get(self.name, 'artifact')}) for role {self.role} " \
               f"on {boxes}{arch}: {self.reason}"


def bundle_path(artifact: Artifact) -> str:
    """Where an artifact lives in an offline bundle: per architecture when it has one."""
    return f"files/{artifact.arch}/{artifact.name}" if artifact.arch else f"files/{artifact.name}"


def artifacts_for_box(fleet: Fleet, box: Box) -> list[dict[str, Any]]:
    """The declared artifacts that fit ``box``'s architecture, as the roles fetch them
    (``dnabox_box_artifacts``): on the box each is cached under its plain name."""
    arch = fleet.arch_of(box)
    return [{**a.model_dump(), "bundle_path": bundle_path(a)} for a in fleet.artifacts.files
            if a.arch in {None, arch}]


def required_artifacts(fleet: Fleet, box: Box) -> dict[str, list[str]]:
    """Artifact names each role of ``box`` needs (roles that need none are left out)."""
    needed: dict[str, list[str]] = {}
    for role in roles_for(fleet, box):
        names = role_spec(role).artifacts_for(fleet, box)
        if names:
            needed[role] = list(names)
    return needed


def missing_artifacts(fleet: Fleet, boxes: list[str] | None = None) -> list[MissingArtifact]:
    """Artifacts the chosen boxes need that the fleet does not declare (for their
    architecture), or (offline) whose file is absent from the bundle or differs from its
    declared sha256."""
    declared: dict[str, list[Artifact]] = {}
    for artifact in fleet.artifacts.files:
        declared.setdefault(artifact.name, []).append(artifact)
    wanted = set(boxes) if boxes is not None else None
    needs: dict[tuple[str, str, str], list[str]] = {}
    for box in fleet.boxes:
        if wanted is not None and box.name not in wanted:
            continue
        for role, names in required_artifacts(fleet, box).items():
            for name in names:
                needs.setdefault((role, name, fleet.arch_of(box)), []).append(box.name)
    missing = []
    bundle = Path(fleet.artifacts.bundle_dir).expanduser() if fleet.artifacts.bundle_dir else None
    for (role, name, arch), on in sorted(needs.items()):
        entries = declared.get(name, [])
        fitting = [a for a in entries if a.arch in {None, arch}]
        if not entries:
            missing.append(MissingArtifact(role, name, tuple(on), "not declared"))
        elif not fitting:
            others = ", ".join(sorted({a.arch or "" for a in entries}))
            missing.append(MissingArtifact(
                role, name, tuple(on), f"no {arch} entry (declared for {others}): add one "
                f"with arch: {arch}", arch))
        elif fleet.artifacts.source == "offline" and bundle is not None:
            path = bundle / bundle_path(fitting[0])
            if not path.is_file():
                missing.append(MissingArtifact(role, name, tuple(on), "not in the bundle", arch))
            elif sha256_of(path) != fitting[0].sha256:
                missing.append(MissingArtifact(role, name, tuple(on),
                                               "checksum differs in the bundle", arch))
    return missing


def architecture_findings(fleet: Fleet) -> list[tuple[tuple[str | int, ...], str]]:
    """(YAML path, message) for each box that needs an artifact declared only for other
    architectures: what `dnabox inventory validate` reports at the box's line."""
    findings: list[tuple[tuple[str | int, ...], str]] = []
    index = {b.name: i for i, b in enumerate(fleet.boxes)}
    for missing in missing_artifacts(fleet):
        if not missing.reason.startswith("no "):
            continue
        for name in missing.boxes:
            box = fleet.box(name)
            path: tuple[str | int, ...] = ("boxes", index[name], "arch") if box.arch else (
                "boxes", index[name])
            findings.append((path, f"{name} is {missing.arch} and needs {missing.name} (role "
                                   f"{missing.role}), which artifacts.files declares only for "
                                   f"{missing.reason.split('declared for ')[1].split(')')[0]}: "
                                   f"add an entry with arch: {missing.arch}"))
    return findings


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
    undeclared = [m for m in missing if m.reason == "not declared" or m.reason.startswith("no ")]
    example = "\n".join(
        f"      - {{name: {m.name}, url: https://..., sha256: <64 hex>, role: {m.role}"
        + (f", arch: {m.arch}" if m.arch else "") + "}"
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
