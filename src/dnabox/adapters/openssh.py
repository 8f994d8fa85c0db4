"""The system ``ssh`` for one box of a real fleet: the inventory's user, key, port and
known_hosts, strict host keys (`dnabox ssh`; the lab has its own in ``dnabox.lab.keys``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from dnabox.inventory.model import ResolvedSsh


def ssh_argv(ssh: ResolvedSsh, command: Sequence[str] = (), *,
             interactive: bool = False) -> list[str]:
    """An ``ssh`` argument vector that trusts only recorded host keys, never a new one.

    ``-F /dev/null``: the user's ssh config must not turn strict checking off or swap the
    key. A box with a pinned ``host_key`` in the inventory is still checked against
    known_hosts here (ssh cannot take a key inline); `dnabox up` checks the pin itself.
    """
    known_hosts = os.path.expanduser(ssh.known_hosts or "~/.ssh/known_hosts")
    argv = ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=15",
            "-p", str(ssh.port), "-l", ssh.user]
    if ssh.key:
        argv += ["-i", os.path.expanduser(ssh.key), "-o", "IdentitiesOnly=yes"]
    if not interactive:
        argv += ["-o", "BatchMode=yes"]
    return [*argv, ssh.host, *command]
