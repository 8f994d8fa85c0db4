"""The connection agent: keeps a fleet's authenticated SSH connections between `dnabox exec`s.

Like OpenSSH's ControlPersist, with asyncssh. Started in the background by `dnabox exec` and
`dnabox up` (``python -m dnabox.provision.agent.server``), one per fleet state dir, it listens on
``<state dir>/agent.sock`` (0600 in a 0700 dir) and serves only clients of its own uid
(SO_PEERCRED). Each request runs one channel per box over the kept transports; host keys are
checked exactly as everywhere else (dnabox.adapters.ssh). It exits after ``--persist``
seconds without a request, on `dnabox agent stop`, on SIGTERM, or when its socket is gone.
It logs counts and reasons, never commands, output or keys.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from dnabox.adapters.jobs import Job, JobResult
from dnabox.errors import DnaboxError
from dnabox.inventory import load_fleet
from dnabox.plan.selection import select_boxes
from dnabox.provision.agent.batch import result_message
from dnabox.provision.agent.fleet import FleetConnections
from dnabox.provision.agent.protocol import (
    LOCK_NAME,
    PROTOCOL_VERSION,
    Message,
    ProtocolError,
    receive,
    send,
    socket_path,
)
from dnabox.provision.agent.requests import Fallback, parse_batch, parse_exec
from dnabox.provision.fanout import fan_out_over

# A client sends its request and its "go" at once; waiting longer means it is gone.
CLIENT_TIMEOUT = 5.0
# A client that stops reading must not stall the boxes' commands forever.
SEND_TIMEOUT = 60.0


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} agent[{os.getpid()}] {message}\n")
    sys.stderr.flush()


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (kernel-reported)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class Agent:
    def __init__(self, connections: FleetConnections, persist: float, cwd: str,
                 uid: int) -> None:
        self.connections = connections
        self.persist = persist
        self.cwd = cwd
        self.uid = uid
        self.started = time.monotonic()
        self.last_request = self.started
        self.requests = 0
        self.refused = 0
        self._active = 0
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._wake_read, self._wake_write = os.pipe()

    def stop(self) -> None:
        self.stopping.set()
        os.write(self._wake_write, b"x")

    def idle_left(self) -> float:
        with self._lock:
            if self._active:
                return self.persist
            return self.persist - (time.monotonic() - self.last_request)

    def serve(self, server: socket.socket, path: str, inode: int) -> None:
        while not self.stopping.is_set():
            left = self.idle_left()
            if left <= 0:
                log("idle timeout")
                return
            ready, _, _ = select.select([server.fileno(), self._wake_read], [], [],
                                        min(left, 5.0))
            if self._wake_read in ready:
                os.read(self._wake_read, 64)
            if server.fileno() in ready:
                conn, _ = server.accept()
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
            if not _same_inode(path, inode):
                log("socket removed; exiting")
                return

    def handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ProtocolError), conn, conn.makefile("rb") as stream:
            uid = peer_uid(conn)
            if uid != self.uid:
                with self._lock:
                    self.refused += 1
                log(f"refused a client of uid {uid}")
                send(conn, {"t": "refused"})
                _linger(conn)
                return
            conn.settimeout(CLIENT_TIMEOUT)
            request = receive(stream)
            if request is not None:
                self.dispatch(conn, stream, request)

    def dispatch(self, conn: socket.socket, stream: BinaryIO, request: Message) -> None:
        if request.get("v") != PROTOCOL_VERSION:
            # A client from other dnabox code: let it use the full CLI, and make room for an
            # agent of its version.
            send(conn, {"t": "fallback", "reason": "other protocol version"})
            self.stop()
        elif request.get("op") == "status":
            send(conn, self.status())
        elif request.get("op") == "stop":
            log("stop requested")
            send(conn, {"t": "stopping"})
            self.stop()
        elif request.get("op") == "exec":
            with self._busy():
                self.run_exec(conn, stream, request)
        elif request.get("op") == "batch":
            with self._busy():
                self.run_batch(conn, request)
        else:
            send(conn, {"t": "fallback", "reason": "unknown request"})

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
            self.requests += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self.last_request = time.monotonic()
            os.write(self._wake_write, b"x")  # the idle deadline moved

    def run_exec(self, conn: socket.socket, stream: BinaryIO, request: Message) -> None:
        try:
            job = parse_exec(request, self.cwd)
            with self.connections.lease(job.inventory) as (fleet, pool):
                try:
                    boxes = select_boxes(fleet, boxes=job.boxes, sites=job.sites,
                                         tiers=job.tiers)
                except DnaboxError:
                    raise Fallback("the selection is not valid") from None
                send(conn, {"t": "ready", "boxes": [b.name for b in boxes]})
                go = receive(stream)
                if not go or go.get("go") is not True:
                    return  # the client gave up: nothing ran
                started = time.monotonic()
                results = fan_out_over(pool, fleet, boxes, job.command,
                                       _LineSender(conn).line, parallel=job.parallel)
        except Fallback as answer:
            log(f"fallback: {answer}")
            send(conn, {"t": "fallback", "reason": str(answer)})
            return
        failed = sum(1 for r in results if r.rc != 0)
        log(f"exec on {len(results)} boxes, {failed} failed, {time.monotonic() - started:.2f}s")
        send(conn, {"t": "end", "results": [
            {"box": r.box, "rc": r.rc, "seconds": r.seconds, "error": r.error}
            for r in results]})

    def run_batch(self, conn: socket.socket, request: Message) -> None:
        """Commands chosen by the full CLI (status, `up`'s preflight) over kept connections.

        Each answer goes out as its box ends; a client that loses the stream runs the boxes
        it has no answer for itself, so every command here must be safe to run twice (reads,
        and the lease, which its own run may take again)."""
        try:
            inventory, jobs, parallel = parse_batch(request, self.cwd)
            with self.connections.lease(inventory) as (fleet, pool):
                known = {b.name for b in fleet.boxes}
                if any(job.box not in known for job in jobs):
                    raise Fallback("a box of the batch is not in the fleet")
                sender = _LineSender(conn)
                started = time.monotonic()
                # A batch holds only dnabox's own reads and lease steps (see above), so
                # they run in each box's kept shell: no SSH session, no login shell each.
                answers = pool.run_many(
                    [Job(j.box, fleet.ssh_for(fleet.box(j.box)), j.command, j.stdin, j.timeout,
                         kept_shell=True) for j in jobs],
                    parallel=parallel, on_result=sender.result)
        except Fallback as answer:
            log(f"fallback: {answer}")
            send(conn, {"t": "fallback", "reason": str(answer)})
            return
        failed = sum(1 for a in answers if a.result is None)
        log(f"batch on {len(answers)} boxes, {failed} unreachable, "
            f"{time.monotonic() - started:.2f}s")
        sender.send({"t": "end"})

    def status(self) -> Message:
        with self._lock:
            idle = time.monotonic() - self.last_request
            counts = {"requests": self.requests, "refused": self.refused}
        return {"t": "status", "pid": os.getpid(), "fleet": self.connections.name,
                "uptime": round(time.monotonic() - self.started, 1),
                "idle": round(idle, 1), "persist": self.persist, **counts,
                **self.connections.counts()}


def _linger(conn: socket.socket) -> None:
    """Let the client read our answer: closing a Unix socket with its request still unread
    makes the client's read fail with ECONNRESET and lose the answer (seen under load)."""
    conn.shutdown(socket.SHUT_WR)
    conn.settimeout(1.0)
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass


class _LineSender:
    """Streams output lines to the client; a client that went away stops the stream only."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._broken = False
        conn.settimeout(SEND_TIMEOUT)

    def line(self, box: str, line: str) -> None:
        self.send({"t": "line", "box": box, "line": line})

    def result(self, answer: JobResult) -> None:
        self.send(result_message(answer))

    def send(self, message: Message) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                send(self._conn, message)
            except OSError:
                self._broken = True


def _same_inode(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _warm(connections: FleetConnections, inventory: str) -> None:
    """Connect to every box up front, so even the first exec after `up` reuses connections."""
    with connections.lease(inventory) as (fleet, pool):
        failed = pool.connect_many([(b.name, fleet.ssh_for(b)) for b in fleet.boxes])
        for name, reason in sorted(failed.items()):
            log(f"{name}: not connected: {reason}")


def listen(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a dead agent's socket: we hold the lock, so no live agent owns it
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # born 0600: no window in which others could connect
    try:
        server.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    server.listen(64)
    return server


def run(inventory: str, state_dir: str, persist: float) -> int:
    path = socket_path(state_dir)
    if path is None:
        log(f"state dir path too long for a Unix socket: {state_dir}")
        return 1
    lock = os.open(os.path.join(state_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another agent serves this fleet
    try:
        fleet = load_fleet(inventory)
    except DnaboxError as exc:
        log(f"not started: {exc.message}")
        return 1
    connections = FleetConnections(fleet.name)
    agent = Agent(connections, persist, os.getcwd(), os.getuid())
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    server = listen(path)
    inode = os.stat(path).st_ino
    log(f"serving fleet {fleet.name} ({len(fleet.boxes)} boxes), idle timeout {persist:.0f}s")
    threading.Thread(target=_warm_quietly, args=(connections, inventory), daemon=True).start()
    try:
        agent.serve(server, path, inode)
    finally:
        server.close()
        if _same_inode(path, inode):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        connections.close()
        log("stopped")
    return 0


def _warm_quietly(connections: FleetConnections, inventory: str) -> None:
    with contextlib.suppress(Fallback):
        _warm(connections, inventory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dnabox.provision.agent.server")
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--persist", type=float, required=True)
    args = parser.parse_args(argv)
    return run(os.path.abspath(args.inventory), args.state_dir, args.persist)


if __name__ == "__main__":
    sys.exit(main())
