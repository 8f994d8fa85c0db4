"""A cgroup per box in every cgroup hierarchy of the host.

Why every hierarchy: the box gets its own cgroup namespace, so containerd inside the box
sees its cgroup as the root of each hierarchy and creates its containers' cgroups below it,
not beside other boxes'. The memory hierarchy also carries the box's memory limit, and the
cgroups are how `lab down` finds every process of a box, even one started by `nsenter`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
V1_NAMED_PREFIX = "name="


@dataclass(frozen=True)
class Hierarchy:
    mountpoint: Path
    version: int  # 1 or 2
    controllers: tuple[str, ...]  # v1: "memory", "cpu", "name=systemd"...; v2: ()

    @property
    def mount_options(self) -> str:
        """The `mount -o` options that mount this v1 hierarchy again inside a box."""
        named = [c for c in self.controllers if c.startswith(V1_NAMED_PREFIX)]
        return ",".join(["none", *named]) if named else ",".join(self.controllers)


def parse_mountinfo(text: str) -> list[Hierarchy]:
    found = []
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fstype, _source, super_options = [*after.split(), "", "", ""][:3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mountpoint = Path(before.split()[4])
        if fstype == "cgroup2":
            found.append(Hierarchy(mountpoint, 2, ()))
            continue
        controllers = tuple(
            o for o in super_options.split(",")
            if (o not in ("rw", "ro") and "=" not in o) or o.startswith(V1_NAMED_PREFIX)
        )
        found.append(Hierarchy(mountpoint, 1, controllers))
    return found


def host_hierarchies() -> list[Hierarchy]:
    return [h for h in parse_mountinfo(Path("/proc/self/mountinfo").read_text())
            if h.mountpoint.is_relative_to(CGROUP_FS)]


def box_hierarchies(hierarchies: list[Hierarchy]) -> list[Hierarchy]:
    """The hierarchies mounted inside a box.

    On a hybrid host (v1 controllers plus a v2 mount without controllers) the box gets the
    v1 controllers only: crun refuses hybrid layouts, containerd and runc are happy with v1.
    """
    v1 = [h for h in hierarchies if h.version == 1]
    return v1 if v1 else [h for h in hierarchies if h.version == 2]


def cgroup_paths(hierarchies: list[Hierarchy], fleet: str, unit: str) -> list[Path]:
    return [h.mountpoint / "dnabox" / fleet / unit for h in hierarchies]


def create(paths: list[Path], memory_limit: int | None) -> None:
    for path in paths:
        _make(path)
        if memory_limit is None:
            continue
        if (path / "memory.limit_in_bytes").exists():
            (path / "memory.limit_in_bytes").write_text(str(memory_limit))
        elif (path / "memory.max").exists():
            (path / "memory.max").write_text(str(memory_limit))


def _make(path: Path) -> None:
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        parent = directory.parent
        if (parent / "cgroup.subtree_control").exists():
            # cgroup v2: a child only gets the memory controller its parent hands down.
            with contextlib.suppress(OSError):
                (parent / "cgroup.subtree_control").write_text("+memory")
        directory.mkdir()
        for name in ("cpuset.cpus", "cpuset.mems"):
            # cgroup v1 cpuset: an empty set refuses every process; inherit the parent's.
            if (directory / name).exists() and not (directory / name).read_text().strip():
                (directory / name).write_text((parent / name).read_text())


def procs_file(path: Path) -> Path:
    return path / "cgroup.procs"


def pids_in(path: Path) -> list[int]:
    """PIDs in ``path`` and every cgroup below it (containers a box created)."""
    pids: list[int] = []
    if not path.is_dir():
        return pids
    for directory, _dirs, _files in os.walk(path):
        with contextlib.suppress(FileNotFoundError, OSError):
            pids += [int(p) for p in (Path(directory) / "cgroup.procs").read_text().split()]
    return pids


def set_frozen(paths: list[Path], frozen: bool, timeout: float = 10.0) -> None:
    """Freeze (or thaw) every process in the cgroups, and return once the kernel says so.

    A frozen box or server keeps its sockets open but answers nothing, the way a hung
    machine does; fault tests hold a run at a known point with it. The v1 freezer is used
    where it is mounted (hybrid hosts), the v2 ``cgroup.freeze`` file elsewhere.
    """
    v1 = [p / "freezer.state" for p in paths if (p / "freezer.state").exists()]
    if v1:
        wanted = "FROZEN" if frozen else "THAWED"
        for state in v1:
            state.write_text(wanted)
        _await(lambda: all(s.read_text().strip() == wanted for s in v1), timeout, paths)
        return
    v2 = [p for p in paths if (p / "cgroup.freeze").exists()]
    for path in v2:
        (path / "cgroup.freeze").write_text("1" if frozen else "0")
    flag = f"frozen {int(frozen)}"
    _await(lambda: all(flag in (p / "cgroup.events").read_text().splitlines() for p in v2),
           timeout, paths)


def _await(done: Callable[[], bool], timeout: float, paths: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # the kernel moves FREEZING -> FROZEN on its own; nothing to wait on
        if time.monotonic() > deadline:
            raise TimeoutError(f"the freezer of {paths[0]} did not settle")
        time.sleep(0.01)


def kill_all(paths: list[Path], timeout: float = 10.0) -> None:
    """SIGKILL every process in the cgroups until none is left (forks race the first pass).

    Every process found there is ours: the lab made these cgroups and put its boxes in them.
    A frozen process only dies once thawed, so the cgroups are thawed first.
    """
    with contextlib.suppress(OSError, TimeoutError):
        set_frozen([p for p in paths if p.is_dir()], False)
    deadline = time.monotonic() + timeout
    while True:
        pids = sorted({pid for path in paths for pid in pids_in(path)})
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {pids} survived SIGKILL in {paths[0]}")
        time.sleep(0.02)


def remove(paths: list[Path]) -> None:
    """Remove the cgroups (deepest first), then their dnabox parents once empty."""
    for path in paths:
        if not path.is_dir():
            continue
        for directory, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
            _rmdir(Path(directory))
        for parent in (path.parent, path.parent.parent):  # dnabox/<fleet>, dnabox
            with contextlib.suppress(OSError):
                parent.rmdir()


def _rmdir(path: Path) -> None:
    for _ in range(50):  # the kernel frees a cgroup shortly after its last task exits
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    path.rmdir()
