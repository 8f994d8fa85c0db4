"""`lab up`, `lab down`, `lab status`, `lab cache`: the lab's life, built from its parts.

`up` converges: a box that runs as described is kept (its PID 1, files and host key
unchanged), a missing or changed box is (re)started, a box gone from the inventory is
removed. Adding one box to a running lab costs one box. A change to sites or planes
rebuilds the whole lab.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dnabox.errors import DnaboxError
from dnabox.inventory.model import Fleet
from dnabox.lab import boxes, cgroups, network, processes
from dnabox.lab.boxes import BoxDirs
from dnabox.lab.files import remove_tree, write
from dnabox.lab.keys import HOST_KEY, ensure_key_pair, known_hosts_line, write_known_hosts
from dnabox.lab.layout import REPO_PORT, BoxLayout, LabLayout, fingerprint, plan_lab
from dnabox.lab.light import ensure_light_layer, light_layer_name
from dnabox.lab.paths import LabPaths
from dnabox.lab.preflight import check_host
from dnabox.lab.repo import ensure_repo, repo_key, served_tree, server_argv
from dnabox.lab.rootfs import ensure_rootfs
from dnabox.lab.state import LabBoxState, LabState, NetworkState, load, locked, save
from dnabox.plan.catalogue import all_packages

Log = Callable[[str], None]
ROUTER_UNIT = "_router"  # cgroup of the router's processes; '_' never starts a box name


def _quiet(_message: str) -> None:
    pass


@dataclass(frozen=True)
class LabUpReport:
    fleet: str
    started: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class BoxStatus:
    name: str
    site: str
    address: str
    state: str  # running | starting | stopped | absent


@dataclass(frozen=True)
class ReleaseCache:
    """One Debian release's cached root filesystem and package repository."""

    suite: str
    rootfs: Path
    repo: Path


def caches_ready(paths: LabPaths, suites: Sequence[str]) -> bool:
    for suite in suites:
        rootfs = paths.rootfs(suite)
        if not (rootfs.is_dir() and (paths.repo_root()
                                     / repo_key(all_packages(), rootfs, suite)).is_dir()):
            return False
    return True


def cache(fleet: Fleet, paths: LabPaths | None = None,
          log: Log = _quiet) -> list[ReleaseCache]:
    """Build the root filesystem and package repository of every Debian release the fleet's
    boxes run, if missing (needs the mirror)."""
    paths = paths or LabPaths()
    suites = plan_lab(fleet, paths).suites
    check_host(building=not caches_ready(paths, suites))
    with locked(paths.state_root):
        return _ensure_caches(paths, suites, log)


def _ensure_caches(paths: LabPaths, suites: Sequence[str], log: Log) -> list[ReleaseCache]:
    caches = []
    for suite in suites:
        rootfs = ensure_rootfs(paths, suite, log)
        caches.append(ReleaseCache(suite, rootfs,
                                   ensure_repo(paths, all_packages(), rootfs, suite, log)))
    return caches


def up(fleet: Fleet, paths: LabPaths | None = None, log: Log = _quiet, *,
       light: bool = False) -> LabUpReport:
    """Converge the lab to the inventory; ``light``: boxes whose rootfs already holds the
    base role's packages (see lab/light.py), for fleets of a thousand."""
    paths = paths or LabPaths()
    began = time.monotonic()
    layout = plan_lab(fleet, paths)
    check_host(building=not caches_ready(paths, layout.suites))
    with locked(paths.state_root):
        _refuse_other_labs(paths, fleet.name)
        releases = {c.suite: c for c in _ensure_caches(paths, layout.suites, log)}
        repo = served_tree(paths, {suite: c.repo for suite, c in releases.items()})
        layers = ([str(ensure_light_layer(paths, c.rootfs, c.repo, log))
                   for c in releases.values()] if light else [])
        hierarchies = cgroups.host_hierarchies()
        state_file = paths.state_file(fleet.name)
        state = load(state_file) or LabState(fleet=fleet.name)
        state.inventory = str(Path(fleet.source).resolve()) if fleet.source else ""
        if state.boxes and state.layers != layers:
            log("the boxes' kind changed (light or full): restarting every box")
            for recorded in state.boxes.values():
                recorded.complete = False
        state.layers = layers
        if state.network is not None and not _network_sound(state.network, layout, repo):
            log("the lab's network changed or broke: rebuilding the whole lab")
            _teardown(state, paths)
            state = LabState(fleet=fleet.name, inventory=state.inventory)
        if state.network is None:
            network.check_host_routes(layout.network)
        public_key = ensure_key_pair(paths.private_key(fleet.name), f"dnabox-lab@{fleet.name}")
        if state.network is None:
            _build_network(state, layout, repo, hierarchies, paths, log)
        removed = [name for name in state.boxes if name not in {b.name for b in layout.boxes}]
        for name in removed:
            log(f"removing box {name}")
            _stop_box(state.boxes.pop(name))
            remove_tree(paths.box_dir(fleet.name, name))
            save(state, state_file)
        kept, to_start = [], []
        for box in layout.boxes:
            current = state.boxes.get(box.name)
            if current is not None and _box_sound(current, box):
                kept.append(box.name)
                continue
            if current is not None:
                _stop_box(current)  # keeps its disk and host key, like a reboot
            to_start.append(box)
        if to_start:
            log(f"starting {len(to_start)} box(es)")
            for change in network.ensure_neighbour_room(sum(len(b.nics) for b in layout.boxes)):
                log(f"host neighbour table: {change}")
        for first in range(0, len(to_start), START_BATCH):
            batch = to_start[first:first + START_BATCH]
            if len(to_start) > START_BATCH:
                log(f"boxes {first + 1}-{first + len(batch)} of {len(to_start)}")
            _start_boxes(state, layout, batch, releases, public_key, hierarchies, paths, light)
        _write_known_hosts(layout, paths)
    return LabUpReport(fleet.name, [b.name for b in to_start], kept, removed,
                    round(time.monotonic() - began, 2))


def replace(fleet: Fleet, names: Sequence[str], paths: LabPaths | None = None,
            log: Log = _quiet) -> LabUpReport:
    """Swap boxes for new hardware under the same names: a blank disk and a new host key.

    What `dnabox runbook run replace_box` is for. The lab records each new host key in its
    known_hosts, as the operator who installed the replacement would after verifying it.
    """
    paths = paths or LabPaths()
    check_host(building=False)
    _refuse_unknown_boxes(fleet, names)
    with locked(paths.state_root):
        state_file = paths.state_file(fleet.name)
        state = _state_of_running_lab(fleet, paths)
        for name in names:
            log(f"replacing box {name}: new disk, new host key")
            recorded = state.boxes.pop(name, None)
            if recorded is not None:
                _stop_box(recorded)
            save(state, state_file)
            remove_tree(paths.box_dir(fleet.name, name))
    return up(fleet, paths, log)


def down(fleet: Fleet, paths: LabPaths | None = None, log: Log = _quiet) -> bool:
    """Remove everything the lab of ``fleet`` made; return False when there was nothing."""
    paths = paths or LabPaths()
    check_host(building=False)
    with locked(paths.state_root):
        state = load(paths.state_file(fleet.name))
        leftovers = _derived_resources(fleet, paths)
        if state is None and not _any_exists(leftovers):
            remove_tree(paths.fleet_dir(fleet.name))
            return False
        if state is None:
            state = leftovers
        else:  # what the state file names, plus what the inventory implies: belt and braces
            state.boxes = {**leftovers.boxes, **state.boxes}
            state.network = state.network or leftovers.network
        log(f"removing the lab of fleet {fleet.name}")
        _teardown(state, paths)
        return True


def freeze(fleet: Fleet, names: Sequence[str], *, frozen: bool = True,
           package_server: bool = False, paths: LabPaths | None = None) -> None:
    """Freeze (``frozen=False``: thaw) boxes, and the lab's package server if asked.

    A frozen box is a hung machine: its addresses accept connections, nothing answers. A
    frozen package server is a stalled mirror: installs wait on it. Fault tests use both to
    hold a run at a known point, then let it go.
    """
    paths = paths or LabPaths()
    check_host(building=False)
    _refuse_unknown_boxes(fleet, names)
    with locked(paths.state_root):
        state = _state_of_running_lab(fleet, paths, network=True)
        assert state.network is not None
        units = [Path(p) for name in names if name in state.boxes
                 for p in state.boxes[name].cgroups]
        if package_server:
            units += [Path(p) for p in state.network.cgroups]
        cgroups.set_frozen(units, frozen)


def status(fleet: Fleet, paths: LabPaths | None = None) -> list[BoxStatus]:
    paths = paths or LabPaths()
    state = load(paths.state_file(fleet.name))
    result = []
    for box in fleet.boxes:
        recorded = state.boxes.get(box.name) if state else None
        if recorded is None:
            condition = "absent"
        elif processes.alive(recorded.init):
            condition = "running"
        elif processes.alive(recorded.launcher):
            condition = "starting"
        else:
            condition = "stopped"
        result.append(BoxStatus(box.name, box.site, str(box.address), condition))
    return result


def _refuse_unknown_boxes(fleet: Fleet, names: Sequence[str]) -> None:
    unknown = sorted(set(names) - {b.name for b in fleet.boxes})
    if unknown:
        raise DnaboxError(f"no box named {', '.join(unknown)} in fleet {fleet.name}")


def _state_of_running_lab(fleet: Fleet, paths: LabPaths, *,
                          network: bool = False) -> LabState:
    """The lab's recorded state (with its network, if asked); without it the lab is not up."""
    state = load(paths.state_file(fleet.name))
    if state is None or (network and state.network is None):
        raise DnaboxError(f"the lab of fleet {fleet.name} is not up",
                          hint=f"dnabox lab up -i {fleet.source or 'FILE'}")
    return state


def _refuse_other_labs(paths: LabPaths, fleet: str) -> None:
    for other in sorted(paths.state_root.glob("*/state.json")):
        if other.parent.name != fleet:
            recorded = load(other)
            source = recorded.inventory if recorded and recorded.inventory else "its inventory"
            raise DnaboxError(
                f"the lab of fleet {other.parent.name} is up; one lab at a time on a machine",
                hint=f"dnabox lab down -i {source}",
            )


def _network_sound(recorded: NetworkState, layout: LabLayout, repo: Path) -> bool:
    return (recorded.complete and recorded.fingerprint == fingerprint(layout.network)
            and recorded.repo_dir == str(repo) and network.netns_exists(recorded.router_ns)
            and network.link_exists(recorded.host_link) and processes.alive(recorded.server))


def _box_sound(recorded: LabBoxState, box: BoxLayout) -> bool:
    return (recorded.complete and recorded.fingerprint == fingerprint(box)
            and network.netns_exists(recorded.netns) and processes.alive(recorded.init))


def _build_network(state: LabState, layout: LabLayout, repo: Path,
                   hierarchies: list[cgroups.Hierarchy], paths: LabPaths, log: Log) -> None:
    net = layout.network
    state_file = paths.state_file(layout.fleet)
    unit = cgroups.cgroup_paths(hierarchies, layout.fleet, ROUTER_UNIT)
    state.network = NetworkState(
        fingerprint=fingerprint(net), router_ns=net.router_ns, host_link=net.host_link,
        repo_dir=str(repo), cgroups=[str(p) for p in unit],
    )
    save(state, state_file)
    log(f"building the network: router, {len(net.bridges)} bridges, host link {net.host_link}")
    network.create_router(net)
    cgroups.create(unit, None)
    router_dir = paths.router_dir(layout.fleet)
    router_dir.mkdir(parents=True, exist_ok=True)
    server = server_argv(sys.executable, repo, network.router_ip(net), REPO_PORT)
    state.network.server = processes.spawn(
        ["ip", "netns", "exec", net.router_ns, *server], router_dir / "http.log",
        [cgroups.procs_file(p) for p in unit],
    )
    save(state, state_file)
    _wait_for_port(network.router_ip(net), REPO_PORT, state.network.server, "package server")
    state.network.complete = True
    save(state, state_file)


def _wait_for_port(address: str, port: int, proc: processes.Proc, what: str) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not processes.alive(proc):
            raise DnaboxError(f"the lab's {what} exited while starting",
                              hint="see the logs under /var/lib/dnabox/lab/<fleet>/router")
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise DnaboxError(f"the lab's {what} did not answer on {address}:{port}")


# Boxes start a batch at a time, each batch answering before the next starts: a box's start
# is a burst of CPU (its mounts, sshd), and a thousand started at once queue behind each
# other until some miss their deadline (seen at 700 on a loaded 2-core machine).
START_BATCH = 100


def _start_boxes(state: LabState, layout: LabLayout, to_start: Sequence[BoxLayout],
                 releases: dict[str, ReleaseCache], public_key: str,
                 hierarchies: list[cgroups.Hierarchy], paths: LabPaths, light: bool) -> None:
    state_file = paths.state_file(layout.fleet)
    units = {b.name: cgroups.cgroup_paths(hierarchies, layout.fleet, b.name) for b in to_start}
    for box in to_start:  # recorded before any of it exists
        state.boxes[box.name] = LabBoxState(fingerprint=fingerprint(box), netns=box.netns,
                                         cgroups=[str(p) for p in units[box.name]])
    save(state, state_file)
    for box in to_start:
        cgroups.create(units[box.name], box.memory_limit)
    network.create_box_links(to_start, layout.network.router_ns)
    mounted = cgroups.box_hierarchies(hierarchies)
    for box in to_start:
        dirs = BoxDirs(paths.box_dir(layout.fleet, box.name))
        release = releases[box.suite]
        boxes.prepare(box, dirs, release.rootfs, public_key,
                      layout.network.repo_url_for(box.suite))
        # A light box's layer is its own release's: layers are built from a rootfs.
        layers = (tuple(p for p in map(Path, state.layers)
                        if p.name == light_layer_name(release.rootfs, release.repo))
                  if light else ())
        write(dirs.script, boxes.start_script(box, dirs, release.rootfs, mounted, layers),
              0o755)
        state.boxes[box.name].launcher = boxes.start(box, dirs, units[box.name])
    save(state, state_file)
    deadline = time.monotonic() + 60 + 0.5 * len(to_start)

    def ready(box: BoxLayout) -> processes.Proc:
        recorded = state.boxes[box.name]
        assert recorded.launcher is not None
        dirs = BoxDirs(paths.box_dir(layout.fleet, box.name))
        return boxes.wait_ready(box, recorded.launcher, dirs.console, deadline)

    with ThreadPoolExecutor(max_workers=min(32, len(to_start))) as pool:
        inits = list(pool.map(ready, to_start))
    for box, init in zip(to_start, inits, strict=True):
        state.boxes[box.name].init = init
        state.boxes[box.name].complete = True
    save(state, state_file)


def _write_known_hosts(layout: LabLayout, paths: LabPaths) -> None:
    lines = []
    for box in layout.boxes:
        public = (BoxDirs(paths.box_dir(layout.fleet, box.name)).upper / f"{HOST_KEY}.pub")
        lines.append(known_hosts_line(box.address, box.ssh_port, public.read_text()))
    write_known_hosts(paths.known_hosts(layout.fleet), lines)


def _stop_box(recorded: LabBoxState) -> None:
    # Killing PID 1 of the box's PID namespace ends every process in it at once.
    processes.kill(recorded.init)
    processes.kill(recorded.launcher)
    units = [Path(p) for p in recorded.cgroups]
    cgroups.kill_all(units)
    network.delete_netns(recorded.netns)
    cgroups.remove(units)


def _teardown(state: LabState, paths: LabPaths) -> None:
    """Processes first (they hold namespaces and mounts), then links, cgroups, files."""
    for recorded in state.boxes.values():
        processes.kill(recorded.init)
        processes.kill(recorded.launcher)
    if state.network is not None:
        processes.kill(state.network.server)
    units = [Path(p) for b in state.boxes.values() for p in b.cgroups]
    if state.network is not None:
        units += [Path(p) for p in state.network.cgroups]
    cgroups.kill_all(units)
    for recorded in state.boxes.values():
        network.delete_netns(recorded.netns)
    if state.network is not None:
        network.delete_netns(state.network.router_ns)
        network.delete_link(state.network.host_link)  # gone with the router, unless half-made
    cgroups.remove(units)
    remove_tree(paths.fleet_dir(state.fleet))


def _derived_resources(fleet: Fleet, paths: LabPaths) -> LabState:
    """The resources the inventory implies, for a lab whose state file is lost."""
    try:
        layout = plan_lab(fleet, paths)
    except DnaboxError:
        return LabState(fleet=fleet.name)
    hierarchies = cgroups.host_hierarchies()
    net = layout.network
    state = LabState(fleet=fleet.name)
    state.network = NetworkState(
        fingerprint="", router_ns=net.router_ns, host_link=net.host_link, repo_dir="",
        cgroups=[str(p) for p in cgroups.cgroup_paths(hierarchies, fleet.name, ROUTER_UNIT)],
    )
    for box in layout.boxes:
        state.boxes[box.name] = LabBoxState(
            fingerprint="", netns=box.netns,
            cgroups=[str(p) for p in cgroups.cgroup_paths(hierarchies, fleet.name, box.name)],
        )
    return state


def _any_exists(state: LabState) -> bool:
    if state.network is not None and (network.netns_exists(state.network.router_ns)
                                      or network.link_exists(state.network.host_link)):
        return True
    return any(network.netns_exists(b.netns) or any(Path(p).exists() for p in b.cgroups)
               for b in state.boxes.values())
