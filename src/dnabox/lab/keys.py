"""The lab's SSH material: its client key pair, a host key per box, and the known_hosts
that records those host keys, so every SSH from dnabox to a box checks them strictly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dnabox.lab.files import write
from dnabox.lab.run import run

KEX = "curve25519-sha256"  # the cheapest key exchange: ~0.15 s per connection here
HOST_KEY = Path("etc/ssh/ssh_host_ed25519_key")


def ensure_key_pair(private: Path, comment: str) -> str:
    """Create the key pair once; return the public key line."""
    if not private.exists():
        private.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private)])
    return Path(f"{private}.pub").read_text().strip()


def ensure_host_key(root: Path, box: str) -> str:
    """A box keeps its host key across restarts, like a server across reboots."""
    private = root / HOST_KEY
    if not private.exists():
        private.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{box}",
             "-f", str(private)])
    return Path(f"{private}.pub").read_text().strip()


def known_hosts_line(address: str, port: int, public_key: str) -> str:
    host = address if port == 22 else f"[{address}]:{port}"
    kind, material = public_key.split()[:2]
    return f"{host} {kind} {material}"


def write_known_hosts(path: Path, lines: Sequence[str]) -> None:
    temporary = path.with_suffix(".tmp")
    write(temporary, "".join(f"{line}\n" for line in lines))
    temporary.replace(path)


def ssh_argv(*, key: Path, known_hosts: Path, user: str, address: str, port: int,
             command: Sequence[str] = (), tty: bool = False) -> list[str]:
    """The system ssh, strict: the host key must be the one the lab recorded."""
    return [
        "ssh", "-F", "/dev/null",  # no user or system config: the same behaviour everywhere
        "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"KexAlgorithms={KEX}",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
        *(["-t"] if tty else []),
        "-p", str(port), f"{user}@{address}", *command,
    ]
