"""One box: an overlay of the cached root filesystem, its own network, mount, PID, UTS,
IPC and cgroup namespaces, and sshd under a minimal PID 1.

Every mount of a box is made inside the box's private mount namespace: the host never
sees them, and they vanish with the box's last process.
"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from dnabox.errors import DnaboxError
from dnabox.lab import cgroups, processes
from dnabox.lab.cgroups import Hierarchy
from dnabox.lab.files import write
from dnabox.lab.keys import HOST_KEY, ensure_host_key
from dnabox.lab.layout import BoxLayout
from dnabox.lab.processes import Proc
from dnabox.lab.repo import sources_list

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

# PID 1 of a box: a shell that runs sshd and reaps orphans while it waits (dash reaps
# every child). Not sshd itself: a PID 1 ignores SIGKILL sent from inside its namespace,
# and killing the box's sshd must end the box, as a crash would.
INIT = "/usr/sbin/sshd -D -e & wait $!"

SSHD_CONFIG = """\
# Written by `dnabox lab up`.
HostKey /{host_key}
Port {port}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
# The provisioner opens one connection per box at once, and retries on its own.
MaxStartups 100:30:200
"""

# No init system runs in a box: a package must not try to start its service on install
# (Debian container images do the same). The bootstrap roles start what they need.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"


@dataclass(frozen=True)
class BoxDirs:
    base: Path

    @property
    def upper(self) -> Path:
        return self.base / "upper"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def script(self) -> Path:
        return self.base / "start.sh"

    @property
    def console(self) -> Path:
        return self.base / "console.log"


def prepare(box: BoxLayout, dirs: BoxDirs, rootfs: Path, authorized_key: str,
            repo_url: str) -> str:
    """Write the box's own files into its overlay's upper layer; return its host key.

    ``repo_url`` is the lab repository of the box's own Debian release."""
    for directory in (dirs.upper, dirs.work, dirs.root):
        directory.mkdir(parents=True, exist_ok=True)
    for relative in ("etc/ssh/sshd_config.d", "etc/apt", "root/.ssh", "usr/sbin"):
        _mirror_dirs(rootfs, dirs.upper, Path(relative))
    upper = dirs.upper
    write(upper / "etc/hostname", f"{box.name}\n")
    write(upper / "etc/hosts", f"127.0.0.1\tlocalhost\n{box.address}\t{box.name}\n"
          "::1\tlocalhost ip6-localhost ip6-loopback\n")
    write(upper / "etc/resolv.conf", "# The lab has no DNS: boxes reach only the lab.\n")
    write(upper / "etc/ssh/sshd_config.d/dnabox-lab.conf",
          SSHD_CONFIG.format(host_key=HOST_KEY, port=box.ssh_port))
    write(upper / "root/.ssh/authorized_keys", f"{authorized_key}\n", 0o600)
    write(upper / "etc/apt/sources.list", sources_list(repo_url))
    write(upper / "usr/sbin/policy-rc.d", POLICY_RC_D, 0o755)
    public = ensure_host_key(upper, box.name)
    _hide_shared_host_keys(rootfs, upper)
    return public


def _mirror_dirs(lower: Path, upper: Path, relative: Path) -> None:
    """Create ``relative`` in the upper layer with the lower layer's modes.

    In an overlay the upper directory's mode wins: a /root made 0755 here would make
    sshd refuse the key (StrictModes).
    """
    for depth in range(1, len(relative.parts) + 1):
        part = Path(*relative.parts[:depth])
        target = upper / part
        mode = 0o700 if part.name == ".ssh" else 0o755
        if (lower / part).is_dir():
            mode = stat.S_IMODE((lower / part).stat().st_mode)
        target.mkdir(exist_ok=True)
        os.chmod(target, mode)


def _hide_shared_host_keys(lower: Path, upper: Path) -> None:
    """Whiteout host keys baked into the root filesystem: no box may share a private key."""
    for key in (lower / "etc/ssh").glob("ssh_host_*"):
        mine = upper / "etc/ssh" / key.name
        if not mine.exists():
            os.mknod(mine, stat.S_IFCHR, os.makedev(0, 0))


def start_script(box: BoxLayout, dirs: BoxDirs, rootfs: Path,
                 hierarchies: list[Hierarchy], layers: tuple[Path, ...] = ()) -> str:
    """Runs in the box's fresh namespaces, before chroot: mounts, hostname, then sshd.

    ``layers`` sit between the box's own upper layer and the rootfs (light boxes: the base
    role's packages)."""
    lower = ":".join(str(p) for p in (*layers, rootfs))
    root = dirs.root
    lines = [
        "#!/bin/sh",
        f"# Box {box.name}, written by `dnabox lab up`.",
        "set -e",
        # Copies of the lab's namespace handles would keep deleted namespaces alive. One
        # lazy umount of /run/netns (a mount of its own: iproute2 makes it so) detaches every
        # handle under it at once; unmounting each handle (--recursive) costs an RCU grace
        # period apiece under the kernel's global mount lock: with 600 boxes running, a batch
        # of 100 starting boxes queued 60,000 of them and none started in time.
        "umount --lazy /run/netns 2>/dev/null || umount --recursive --lazy /run/netns "
        "2>/dev/null || true",
        f"mount -t overlay overlay -o lowerdir={lower},upperdir={dirs.upper},"
        f"workdir={dirs.work} {root}",
        f"mount -t proc proc {root}/proc",
        f"mount -t sysfs sysfs {root}/sys",
        f"mount -t tmpfs -o mode=755,size=1m,nosuid dev {root}/dev",
    ]
    for device in DEVICES:
        lines.append(f"touch {root}/dev/{device} && mount --bind /dev/{device} {root}/dev/{device}")
    lines += [
        # The OVS userspace datapath needs tap devices.
        f"mkdir {root}/dev/net {root}/dev/pts {root}/dev/shm",
        f"touch {root}/dev/net/tun && mount --bind /dev/net/tun {root}/dev/net/tun",
        f"mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts {root}/dev/pts",
        f"mount -t tmpfs -o mode=1777,nosuid,nodev shm {root}/dev/shm",
        f"ln -s pts/ptmx {root}/dev/ptmx",
        f"ln -s /proc/self/fd {root}/dev/fd",
        f"ln -s /proc/self/fd/0 {root}/dev/stdin",
        f"ln -s /proc/self/fd/1 {root}/dev/stdout",
        f"ln -s /proc/self/fd/2 {root}/dev/stderr",
        f"mount -t tmpfs -o mode=755,nosuid,nodev run {root}/run",
        f"mkdir -m 755 {root}/run/sshd && mkdir -m 1777 {root}/run/lock",
    ]
    lines += _cgroup_mounts(root / "sys/fs/cgroup", hierarchies)
    lines += [
        f"echo {box.name} > /proc/sys/kernel/hostname",
        f"exec chroot {root} /bin/sh -c {shlex.quote(INIT)}",
    ]
    return "\n".join(lines) + "\n"


def _cgroup_mounts(target: Path, hierarchies: list[Hierarchy]) -> list[str]:
    # The box's cgroup namespace makes each mount show the box's own cgroup as the root.
    if any(h.version == 2 for h in hierarchies):
        return [f"mount -t cgroup2 cgroup2 {target}"]
    lines = [f"mount -t tmpfs -o mode=755 cgroup {target}"]
    for hierarchy in hierarchies:
        place = target / hierarchy.mountpoint.name
        lines.append(f"mkdir {place} && mount -t cgroup -o {hierarchy.mount_options} "
                     f"cgroup {place}")
    return lines


def launch_argv(box: BoxLayout, script: Path) -> list[str]:
    # --kill-child: if `unshare` dies, the box dies with it, never orphaned.
    return ["ip", "netns", "exec", box.netns, "unshare", "--mount", "--pid", "--uts", "--ipc",
            "--cgroup", "--fork", "--kill-child", "--propagation", "private", "sh", str(script)]


def start(box: BoxLayout, dirs: BoxDirs, cgroup_dirs: list[Path]) -> Proc:
    return processes.spawn(launch_argv(box, dirs.script), dirs.console,
                           [cgroups.procs_file(d) for d in cgroup_dirs])


def sshd_answers(address: str, port: int, timeout: float = 0.5,
                 banner_timeout: float = 15.0) -> bool:
    """True once sshd sends its banner. A refused connect fails fast (not listening yet);
    once connected, the banner gets time: sshd re-executes itself for every connection,
    and on a busy machine that takes seconds. Giving up after half a second made the wait
    loop start a new sshd every 50 ms per box and never see one finish (100 boxes on a
    loaded machine: a load average of 500 and no box ready)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.settimeout(banner_timeout)
            return conn.recv(4) == b"SSH-"
    except OSError:
        return False


def wait_ready(box: BoxLayout, launcher: Proc, console: Path, deadline: float) -> Proc:
    """Wait until the box's sshd answers; return the box's PID 1."""
    while not sshd_answers(box.address, box.ssh_port):
        if not processes.alive(launcher):
            raise DnaboxError(f"box {box.name} stopped while starting:\n{_tail(console)}",
                              hint=f"see {console}; `dnabox lab down` removes the lab")
        if time.monotonic() > deadline:
            raise DnaboxError(f"box {box.name}: sshd did not answer on {box.address}:"
                              f"{box.ssh_port} in time", hint=f"see {console}")
        time.sleep(0.05)
    kids = processes.children(launcher.pid)
    init = processes.identify(kids[0]) if kids else None
    if init is None:
        raise DnaboxError(f"box {box.name}: its PID 1 is gone", hint=f"see {console}")
    return init


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no console output)"
