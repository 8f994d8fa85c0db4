"""`dnabox bundle build`: everything an air-gapped fleet installs, in one directory.

Layout of a bundle directory::

    debs/            the Debian packages of every role, with their dependency closure, for
                     every architecture the fleet's boxes have, and a flat repository index
                     (Packages) apt reads with [trusted=yes] (it picks its own architecture)
    debs.tar         the same as bundle/..., which the base role unpacks on each box
    files/<name>     each declared artifact without an architecture, verified (sha256)
    files/<arch>/<name>  each declared artifact built for one architecture
    SHA256SUMS       checksums of every file above
    manifest.json    what the bundle holds and for which fleet

Packages come from ``apt-get download`` on this machine, or inside a Debian root
filesystem (``--rootfs``, e.g. the lab's cached bookworm) when this machine is not Debian.
Packages of another architecture than the machine's are asked for as ``name:arch``, which
needs that architecture enabled there (``dpkg --add-architecture arm64 && apt-get update``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dnabox.errors import EXIT_ARTIFACT_MISSING, DnaboxError, EnvironmentProblem
from dnabox.inventory.model import Artifact, Fleet
from dnabox.plan.artifacts import ArtifactMissing, bundle_path, missing_artifacts, sha256_of
from dnabox.plan.catalogue import all_packages


class BundleError(DnaboxError):
    """A package or artifact could not be collected into the bundle."""

    exit_code = EXIT_ARTIFACT_MISSING


class PackageSource(Protocol):
    def closure(self, packages: list[str], arch: str) -> list[str]:
        """``packages`` and everything they depend on for ``arch`` (real names only)."""

    def download(self, packages: list[str], into: Path, arch: str) -> None:
        """Leave one .deb per package, built for ``arch`` (or ``all``), in ``into``."""


@dataclass(frozen=True)
class AptPackageSource:
    """apt on this machine, or chrooted into a Debian root filesystem."""

    rootfs: Path | None = None

    def _run(self, argv: list[str], cwd: Path | None = None) -> str:
        if self.rootfs is not None:
            argv = ["chroot", str(self.rootfs), *argv]
        if shutil.which(argv[0]) is None:
            raise EnvironmentProblem(f"{argv[0]} is not installed",
                                     hint="build bundles on Debian, or pass --rootfs DIR")
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BundleError(f"{' '.join(argv[:3])} ... failed: {done.stderr.strip()[-400:]}",
                              hint="check the package names in dnabox.plan.packages and "
                                   "that apt can reach its mirror (apt-get update)")
        return done.stdout

    def _native(self) -> str:
        return self._run(["dpkg", "--print-architecture"]).strip()

    def _qualified(self, packages: list[str], arch: str) -> list[str]:
        return packages if arch == self._native() else [f"{p}:{arch}" for p in packages]

    def closure(self, packages: list[str], arch: str) -> list[str]:
        out = self._run(["apt-cache", "depends", "--recurse", "--no-recommends",
                         "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                         "--no-enhances", *self._qualified(packages, arch)])
        # Top-level lines name packages; indented lines are relations; <name> is virtual.
        names = {line.strip().split(":")[0] for line in out.splitlines()
                 if line and not line[0].isspace() and not line.startswith("<")}
        return sorted(names)

    def download(self, packages: list[str], into: Path, arch: str) -> None:
        packages = self._qualified(packages, arch)
        if self.rootfs is None:
            self._run(["apt-get", "download", *packages], cwd=into)
            return
        staging = self.rootfs / "tmp" / "dnabox-bundle"
        staging.mkdir(parents=True, exist_ok=True)
        self._run(["sh", "-c", 'cd /tmp/dnabox-bundle && apt-get download "$@"', "sh",
                   *packages])
        for deb in staging.glob("*.deb"):
            shutil.move(str(deb), into / deb.name)
        shutil.rmtree(staging, ignore_errors=True)


Fetch = Callable[[str, Path], None]


def fetch_url(url: str, dest: Path) -> None:
    """Download ``url`` (http(s) or file) to ``dest``."""
    with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


@dataclass(frozen=True)
class BundleReport:
    directory: Path
    packages: list[str]
    artifacts: list[str]

    def as_json(self) -> dict[str, object]:
        return {"directory": str(self.directory), "packages": len(self.packages),
                "artifacts": self.artifacts}


def build_bundle(fleet: Fleet, out: Path, *, source: PackageSource | None = None,
                 fetch: Fetch = fetch_url,
                 on_progress: Callable[[str], None] = lambda _message: None) -> BundleReport:
    """Collect the fleet's Debian packages and declared artifacts into ``out``."""
    undeclared = [m for m in missing_artifacts(fleet)
                  if m.reason == "not declared" or m.reason.startswith("no ")]
    if undeclared:
        raise ArtifactMissing(
            "the fleet needs artifacts it does not declare:\n"
            + "\n".join(f"  - {m}" for m in undeclared),
            hint="add them to artifacts.files (name, url, sha256, role) or skip their roles "
                 "(bootstrap.skip_roles)")
    source = source or AptPackageSource()
    debs = out / "debs"
    files = out / "files"
    debs.mkdir(parents=True, exist_ok=True)
    files.mkdir(parents=True, exist_ok=True)

    architectures = sorted({fleet.arch_of(box) for box in fleet.boxes})
    for arch in architectures:
        on_progress(f"resolving the dependency closure of {len(all_packages())} packages "
                    f"({arch})")
        packages = source.closure(all_packages(), arch)
        present = {name for name, deb_arch in map(_deb_name_arch, debs.glob("*.deb"))
                   if deb_arch in {arch, "all"}}
        todo = [p for p in packages if p not in present]
        if todo:
            on_progress(f"downloading {len(todo)} packages ({arch})")
            source.download(todo, debs, arch)
    write_package_index(debs)
    _write_repo_tar(debs, out / "debs.tar")

    for artifact in fleet.artifacts.files:
        on_progress(f"artifact {artifact.name}" + (f" ({artifact.arch})" if artifact.arch
                                                   else ""))
        dest = out / bundle_path(artifact)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _collect_artifact(artifact, dest, fetch)

    _write_checksums(out)
    collected = sorted(deb.name for deb in debs.glob("*.deb"))
    manifest = {
        "fleet": fleet.name,
        "packages": collected,
        "architectures": architectures,
        "artifacts": [{"name": a.name, "role": a.role, "sha256": a.sha256,
                       "arch": a.arch, "path": bundle_path(a)}
                      for a in fleet.artifacts.files],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return BundleReport(out, collected, [a.name for a in fleet.artifacts.files])


def _deb_name_arch(deb: Path) -> tuple[str, str]:
    """``name_version_arch.deb`` -> (name, arch)."""
    parts = deb.stem.split("_")
    return parts[0], parts[-1] if len(parts) >= 3 else "all"


def _collect_artifact(artifact: Artifact, dest: Path, fetch: Fetch) -> None:
    if dest.is_file() and sha256_of(dest) == artifact.sha256:
        return  # already collected: a re-run downloads nothing
    partial = dest.with_name(dest.name + ".part")
    try:
        fetch(artifact.url, partial)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BundleError(f"artifact {artifact.name}: cannot fetch {artifact.url}: {exc}",
                          hint="check the url, or place the file in the bundle's files/ "
                               "directory yourself") from exc
    actual = sha256_of(partial)
    if actual != artifact.sha256:
        partial.unlink()
        raise BundleError(f"artifact {artifact.name}: sha256 {actual} differs from the "
                          f"declared {artifact.sha256}",
                          hint="fix artifacts.files[].sha256 or the url; nothing was kept")
    partial.replace(dest)


def write_package_index(debs: Path) -> None:
    """A flat repository index (``Packages``) over every .deb in ``debs``."""
    stanzas = []
    for deb in sorted(debs.glob("*.deb")):
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True,
                                 text=True, check=True).stdout.rstrip("\n")
        data = deb.read_bytes()
        stanzas.append(
            f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data, usedforsecurity=False).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    (debs / "Packages").write_text("\n".join(stanzas), encoding="utf-8")


def _write_repo_tar(debs: Path, target: Path) -> None:
    # Unpacked under /var/cache/dnabox on each box as bundle/ (base_bundle_repo_dir).
    with tarfile.open(target, "w") as tar:
        tar.add(debs, arcname="bundle")


def _write_checksums(out: Path) -> None:
    lines = [f"{sha256_of(path)}  {path.relative_to(out)}"
             for path in sorted(out.rglob("*"))
             if path.is_file() and path.name not in {"SHA256SUMS", "manifest.json"}]
    (out / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")
