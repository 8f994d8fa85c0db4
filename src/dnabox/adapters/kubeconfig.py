"""A cluster's admin kubeconfig on the controller: checked, merged, never shown.

The kubernetes role writes ``<fleet state>/kubeconfig/<cluster>.yaml`` (mode 0600, server
rewritten); this module reads it only to check its permissions and to merge it into the
operator's own kubeconfig. Nothing here prints or logs its content: errors name the file,
never a value from it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from dnabox.errors import EXIT_FAILED, DnaboxError

SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


class KubeconfigProblem(DnaboxError):
    """The cluster's kubeconfig is missing, unsafe or unreadable."""

    exit_code = EXIT_FAILED


def check_private(path: Path) -> None:
    """The file exists and only its owner can read it (it holds cluster-admin keys)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise KubeconfigProblem(
            f"no kubeconfig at {path}",
            hint="the kubernetes role fetches it when the cluster forms (`dnabox up`)",
        ) from None
    if mode & 0o077:
        raise KubeconfigProblem(f"{path} is readable by others (mode {mode:04o})",
                                hint=f"chmod 600 {path}")


def load(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        # The parser's message may quote the file: credentials stay out of errors.
        raise KubeconfigProblem(f"{path} is not a readable kubeconfig",
                                hint="fix or remove it, then run again") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise KubeconfigProblem(f"{path} is not a kubeconfig (not a mapping)",
                                hint="fix or remove it, then run again")
    return loaded


def renamed(config: dict[str, Any], name: str) -> dict[str, Any]:
    """``config`` with its (single) cluster, user and context all called ``name``, so
    several fleets' clusters (kubeadm and k3s use fixed names) sit side by side."""
    clusters = config.get("clusters") or []
    users = config.get("users") or []
    if len(clusters) != 1 or len(users) != 1:
        raise KubeconfigProblem("an admin kubeconfig holds one cluster and one user",
                                hint="fetch it again with `dnabox up`")
    return {
        "clusters": [{"name": name, "cluster": clusters[0].get("cluster", {})}],
        "users": [{"name": name, "user": users[0].get("user", {})}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    }


def merge(existing: dict[str, Any], addition: dict[str, Any]) -> dict[str, Any]:
    """``addition``'s entries replace same-named ones of ``existing``; everything else of
    ``existing`` stays (its current-context too, unless it has none)."""
    merged = {"apiVersion": "v1", "kind": "Config", **existing}
    for section, _ in SECTIONS:
        names = {entry["name"] for entry in addition.get(section, [])}
        kept = [e for e in existing.get(section) or [] if e.get("name") not in names]
        merged[section] = kept + list(addition.get(section, []))
    if not merged.get("current-context") and addition.get("contexts"):
        merged["current-context"] = addition["contexts"][0]["name"]
    return merged


def write_private(path: Path, config: dict[str, Any]) -> None:
    """Replace ``path`` atomically with a file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.dnabox-tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False, default_flow_style=False)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def user_kubeconfig(environ: dict[str, str] | None = None) -> Path:
    """The operator's kubeconfig: the first entry of $KUBECONFIG, else ~/.kube/config."""
    env = os.environ if environ is None else environ
    first = (env.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def merge_into(source: Path, target: Path, name: str) -> None:
    """Merge the cluster's kubeconfig at ``source`` into ``target`` as context ``name``."""
    check_private(source)
    existing = load(target) if target.is_file() else {}
    write_private(target, merge(existing, renamed(load(source), name)))
