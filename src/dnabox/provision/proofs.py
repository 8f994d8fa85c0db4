"""Proofs that a converged fleet works: a packet across the overlay, a container started.

Used by `dnabox demo` to show the result, and reusable by operators after `dnabox up`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnabox.adapters.ssh import ConnectionPool
from dnabox.errors import DnaboxError
from dnabox.inventory.model import Box, Fleet


@dataclass(frozen=True)
class Proof:
    what: str
    ok: bool
    detail: str


def cross_site_pairs(fleet: Fleet) -> list[tuple[Box, Box, str]]:
    """(source, destination, overlay) for the first box of each site to the next site's."""
    pairs = []
    for overlay in fleet.overlays:
        firsts: dict[str, Box] = {}
        for box in fleet.boxes:
            if overlay.name in box.overlay_addresses:
                firsts.setdefault(box.site, box)
        members = list(firsts.values())
        pairs += [(members[i], members[i + 1], overlay.name) for i in range(len(members) - 1)]
    return pairs


def overlay_ping(fleet: Fleet, pool: ConnectionPool, src: Box, dst: Box, overlay: str) -> Proof:
    target = str(dst.overlay_addresses[overlay].ip)
    what = f"{src.name} ({src.site}) -> {dst.name} ({dst.site}) over {overlay} {target}"
    try:
        result = pool.get(src.name, fleet.ssh_for(src)).run(
            f"ping -c 3 -i 0.2 -W 2 {target}", timeout=30)
    except DnaboxError as exc:
        return Proof(what, False, exc.message)
    summary = next((line for line in result.stdout.splitlines() if "packets" in line),
                   result.stderr.strip())
    return Proof(what, result.rc == 0, summary)


# A rootfs of the box's own /bin/sh and its libraries: no image registry is needed.
CONTAINER_SCRIPT = r"""
set -e
root=/var/lib/dnabox/proof-rootfs
rm -rf "$root"; mkdir -p "$root/proc" "$root/dev" "$root/sys" "$root/tmp"
for bin in /bin/sh /bin/cat; do
  cp --parents "$(readlink -f "$bin")" "$root"
  cp --parents "$bin" "$root" 2>/dev/null || true
  for lib in $(ldd "$bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
    cp --parents -L "$lib" "$root" 2>/dev/null || true
  done
done
[ -e "$root/bin/sh" ] || ln -s "$(readlink -f /bin/sh)" "$root/bin/sh"
id=dnabox-proof-$$
ctr run --rm --runtime io.containerd.runc.v2 --rootfs "$root" "$id" /bin/sh -c \
  'echo "container up: pid $$ in its own namespace, hostname $(cat /proc/sys/kernel/hostname)"'
"""


def container_run(fleet: Fleet, pool: ConnectionPool, box: Box) -> Proof:
    what = f"containerd + runc on {box.name}"
    try:
        result = pool.get(box.name, fleet.ssh_for(box)).run(CONTAINER_SCRIPT, timeout=120)
    except DnaboxError as exc:
        return Proof(what, False, exc.message)
    output = (result.stdout.strip() or result.stderr.strip()).splitlines()
    return Proof(what, result.rc == 0 and "container up" in result.stdout,
                 output[-1] if output else "")
