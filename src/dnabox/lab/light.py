"""Light boxes: the base role's packages already in the root filesystem, nothing else.

A thousand full boxes do not fit on one machine, and a thousand boxes installing the same
packages from the lab repository would measure apt, not dnabox. A light box is a normal
lab box (its own network namespace, overlay root filesystem, sshd, host key) whose lower
layers are the cached rootfs plus one shared layer holding the base role's packages. So
the first `dnabox up` on a light fleet (one that skips every role but base) only writes
files and runs the base apply script, and every later `up` really checks every box.

The layer is built once, like the rootfs: in a private mount namespace, apt installs from
the lab's own package repository (a file: source, no network) into an overlay's upper
directory; that directory, renamed when complete, is the layer.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from dnabox.lab.files import remove_tree
from dnabox.lab.paths import LabPaths
from dnabox.lab.run import run
from dnabox.plan.catalogue import role_spec

LIST = "/etc/apt/dnabox-light.list"
APT = f"-o Dir::Etc::sourcelist={LIST} -o Dir::Etc::sourceparts=-"


def layer_key(rootfs: Path, repo: Path, packages: Sequence[str]) -> str:
    installed = (rootfs / "var/lib/dpkg/status").read_bytes()
    text = "\n".join([hashlib.sha256(installed).hexdigest(), repo.name, *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def install_script(rootfs: Path, repo: Path, build: Path, packages: Sequence[str]) -> str:
    """Runs in a private mount namespace: every mount vanishes with it."""
    root = build / "root"
    quoted = " ".join(shlex.quote(p) for p in packages)
    return "\n".join([
        "set -e",
        f"mount -t overlay overlay -o lowerdir={rootfs},upperdir={build}/upper,"
        f"workdir={build}/work {root}",
        f"mount -t proc proc {root}/proc",
        f"mount --rbind /dev {root}/dev",
        f"mkdir -p {root}/mnt/dnabox-repo",
        f"mount --bind {repo} {root}/mnt/dnabox-repo",
        f"echo 'deb [trusted=yes] file:/mnt/dnabox-repo ./' > {root}{LIST}",
        # No daemon may start while installing (no init system here, as in a box).
        f"printf '#!/bin/sh\\nexit 101\\n' > {root}/usr/sbin/policy-rc.d",
        f"chmod 755 {root}/usr/sbin/policy-rc.d",
        f"chroot {root} apt-get -q {APT} update",
        f"chroot {root} env DEBIAN_FRONTEND=noninteractive apt-get -q -y {APT} "
        f"--no-install-recommends install {quoted}",
        f"rm -f {root}{LIST} {root}/usr/sbin/policy-rc.d",
        f"rm -rf {root}/var/lib/apt/lists/* {root}/var/cache/apt/*.bin",
        f"umount --recursive --lazy {root}",
    ])


def light_layer_name(rootfs: Path, repo: Path) -> str:
    """The name of the light layer built on ``rootfs`` from ``repo`` (one per release)."""
    return layer_key(rootfs, repo, role_spec("base").packages)


def ensure_light_layer(paths: LabPaths, rootfs: Path, repo: Path,
                       log: Callable[[str], None]) -> Path:
    packages = role_spec("base").packages
    target = paths.cache_root / "light" / light_layer_name(rootfs, repo)
    if target.is_dir():
        return target
    partial = target.with_name(target.name + ".partial")
    remove_tree(partial)
    for name in ("upper", "work", "root"):
        (partial / name).mkdir(parents=True)
    log(f"building the light-box layer (base packages) in {target} (once)")
    run(["unshare", "--mount", "--fork", "sh", "-c",
         install_script(rootfs, repo, partial, packages)])
    # openssh-server is in the rootfs already; anything that made host keys made shared ones.
    for key in (partial / "upper/etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (partial / "upper").rename(target)
    remove_tree(partial)
    return target
