"""Debian packages each bootstrap role installs: one list for the roles, the lab's local
package repository and `dnabox bundle build`, so an air-gapped box never lacks one.

The inventory hands each list to its role as ``<role>_packages``.
"""

from __future__ import annotations

ROLE_PACKAGES: dict[str, tuple[str, ...]] = {
    # python3-apt: Ansible's apt module needs it on the box; iputils-ping: first aid.
    "base": ("ca-certificates", "kmod", "procps", "iptables", "chrony", "openssh-server",
             "python3-apt", "iputils-ping"),
    "container_runtime": ("containerd", "runc", "crun"),
    "ovs": ("openvswitch-switch",),
    "cni": ("containernetworking-plugins",),
}


def all_packages() -> list[str]:
    return sorted({pkg for pkgs in ROLE_PACKAGES.values() for pkg in pkgs})
