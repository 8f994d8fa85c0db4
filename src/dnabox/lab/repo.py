"""The local Debian package repository the boxes install from (they have no route out).

It holds what the bootstrap roles install plus every dependency those packages need on
top of the box root filesystem: apt resolves the closure itself, in a throwaway overlay of
the cached root filesystem on the host (which has the mirror). The repository is cached,
keyed by the package list and the root filesystem's installed packages, and served over
HTTP from the router namespace, so bootstrap runs `apt-get install` exactly as on a real box.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dnabox.lab.files import remove_tree, write
from dnabox.lab.paths import LabPaths
from dnabox.lab.run import run

INDEX_FILES = ("Packages", "Packages.gz")


def repo_key(packages: Sequence[str], rootfs: Path, suite: str) -> str:
    installed = (rootfs / "var/lib/dpkg/status").read_bytes()
    text = json.dumps({"suite": suite, "packages": sorted(packages),
                       "rootfs": hashlib.sha256(installed).hexdigest()})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sources_list(repo_url: str) -> str:
    # trusted=yes: the repository is built on this machine and served only inside the lab.
    return f"deb [trusted=yes] {repo_url} ./\n"


def release_file(indexes: dict[str, bytes], suite: str, now: float | None = None) -> str:
    """A flat repository's Release: apt wants one, with the indexes' sizes and hashes."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime(now))
    lines = ["Origin: dnabox-lab", "Label: dnabox-lab", f"Suite: {suite}",
             f"Codename: {suite}", f"Date: {date}", "Architectures: amd64 all", "SHA256:"]
    lines += [f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}"
              for name, data in sorted(indexes.items())]
    return "\n".join(lines) + "\n"


def download_script(rootfs: Path, build: Path, packages: Sequence[str]) -> str:
    """Runs in a private mount namespace: the overlay and mounts vanish with it."""
    quoted = " ".join(shlex.quote(p) for p in packages)
    root = build / "root"
    return "\n".join([
        "set -e",
        f"mount -t overlay overlay -o lowerdir={rootfs},upperdir={build}/upper,"
        f"workdir={build}/work {root}",
        f"mount -t proc proc {root}/proc",
        f"mount --rbind /dev {root}/dev",
        f"chroot {root} apt-get -q update",
        f"chroot {root} env DEBIAN_FRONTEND=noninteractive apt-get -q -y install "
        f"--download-only {quoted}",
    ])


def ensure_repo(paths: LabPaths, packages: Sequence[str], rootfs: Path, suite: str,
                log: Callable[[str], None]) -> Path:
    target = paths.repo_root() / repo_key(packages, rootfs, suite)
    if target.is_dir():
        return target
    partial = target.with_name(target.name + ".partial")
    remove_tree(partial)
    build = partial / "build"
    for name in ("upper", "work", "root"):
        (build / name).mkdir(parents=True)
    # The mirror is reached by name: the throwaway copy resolves like the host.
    write(build / "upper/etc/resolv.conf", Path("/etc/resolv.conf").read_text())
    log(f"downloading {len(packages)} {suite} packages and their dependencies into {target} "
        "(once)")
    run(["unshare", "--mount", "--fork", "sh", "-c", download_script(rootfs, build, packages)])
    for deb in (build / "upper/var/cache/apt/archives").glob("*.deb"):
        deb.rename(partial / deb.name)
    remove_tree(build)
    index = run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=partial).stdout
    indexes = {"Packages": index.encode(), "Packages.gz": gzip.compress(index.encode(), 9,
                                                                       mtime=0)}
    for name, data in indexes.items():
        (partial / name).write_bytes(data)
    write(partial / "Release", release_file(indexes, suite))
    partial.rename(target)
    return target


def served_tree(paths: LabPaths, repos: dict[str, Path]) -> Path:
    """One directory the lab's server serves: ``<suite>/`` links to each release's repository.

    Named by its content, so a lab whose releases or repositories change gets a new tree
    (and `lab up` sees its network must be rebuilt to serve it)."""
    text = json.dumps({suite: str(repo) for suite, repo in sorted(repos.items())})
    target = paths.repo_root() / "served" / hashlib.sha256(text.encode()).hexdigest()[:16]
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")
        remove_tree(partial)
        partial.mkdir(parents=True)
        for suite, repo in repos.items():
            (partial / suite).symlink_to(repo)
        partial.rename(target)
    return target


def server_argv(python: str, directory: Path, address: str, port: int) -> list[str]:
    return [python, "-m", "dnabox.lab.repo_server", "--bind", address, "--directory",
            str(directory), str(port)]
