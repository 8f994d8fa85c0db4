"""SSH to boxes with asyncssh: one reused connection per box, strict host keys.

One event loop per :class:`ConnectionPool`, in a thread of its own, holds every connection:
a thousand boxes cost a thousand sockets, not a thousand threads (paramiko needed one
thread per transport and serialised its handshakes on the GIL: ~3 s at 100 boxes).
Callers keep the synchronous API (``BoxConnection.run``) or hand the pool a whole batch
(``ConnectionPool.run_many``), which runs inside the loop without a thread per box.

Host keys come from the fleet's known_hosts file (and an optional pinned fingerprint per
box); an unknown or changed key is refused, never accepted. Transient failures (refused,
reset, timeouts) are retried with jittered backoff and counted; a host-key or
authentication problem never is.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncssh

from dnabox.adapters.jobs import CommandResult, Job, JobResult, RetryPolicy
from dnabox.adapters.kept_shell import KeptShell, KeptShellLost
from dnabox.errors import HostKeyMismatch, RemoteError
from dnabox.inventory.model import ResolvedSsh

# X25519 first: measured here ~0.15 s per handshake against ~0.24 s for the defaults.
PREFERRED_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")
CONNECT_TIMEOUT = 10.0
# A link that drops mid-command (a site's WAN) sends no reset: without keepalives the run
# would wait out the command's own timeout (up to an hour for a package step). sshd answers
# keepalives however busy the box is, so 3 unanswered at 5 s mean the box is gone.
KEEPALIVE_INTERVAL = 5.0
KEEPALIVE_COUNT_MAX = 3
# Handshakes in flight per pool: beyond a few per core they only queue in sshd's accept
# backlog and hit their own timeouts (the CPU, not the network, is the limit here).
HANDSHAKES_AT_ONCE = 48

T = TypeVar("T")


def fingerprint(key: asyncssh.SSHKey) -> str:
    """OpenSSH's ``SHA256:...`` form (``ssh-keygen -lf``), without base64 padding."""
    return key.get_fingerprint("sha256").rstrip("=")


class _Client(asyncssh.SSHClient):
    """Remembers the key a box presented when known_hosts did not hold it (for the error)
    and whether the connection is gone; never accepts a key itself."""

    def __init__(self) -> None:
        self.refused_key: asyncssh.SSHKey | None = None
        self.lost = False

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.refused_key = key
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class _Loop:
    """An asyncio loop running in a daemon thread; the pool's connections live in it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="dnabox-ssh",
                                        daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


@dataclass
class _Trust:
    """Parsed known_hosts files and private keys, shared by every box of a pool (parsing a
    1,000-line known_hosts file once per box would cost more than the handshakes)."""

    known_hosts: dict[tuple[str, float], asyncssh.SSHKnownHosts] = field(default_factory=dict)
    keys: dict[str, asyncssh.SSHKey] = field(default_factory=dict)

    def known_hosts_for(self, path: str) -> asyncssh.SSHKnownHosts:
        try:
            stamp = os.stat(path).st_mtime
        except OSError:
            stamp = -1.0
        if (path, stamp) not in self.known_hosts:
            text = b""
            if stamp >= 0:
                with open(path, "rb") as handle:
                    text = handle.read()
            self.known_hosts[(path, stamp)] = asyncssh.import_known_hosts(text.decode())
        return self.known_hosts[(path, stamp)]

    def key(self, path: str) -> asyncssh.SSHKey:
        if path not in self.keys:
            try:
                self.keys[path] = asyncssh.read_private_key(path)
            except (OSError, asyncssh.KeyImportError) as exc:
                raise RemoteError(f"cannot read the SSH key {path}: {exc}",
                                  hint="check defaults.ssh.key / boxes[].ssh.key") from None
        return self.keys[path]


class BoxConnection:
    """One SSH connection to one box, opened on first use and reused for every command."""

    def __init__(self, box: str, ssh: ResolvedSsh, pool: ConnectionPool) -> None:
        self.box = box
        self.ssh = ssh
        self._pool = pool
        self._conn: asyncssh.SSHClientConnection | None = None
        self._client: _Client | None = None
        self._lock: asyncio.Lock | None = None  # made in the loop, on first use
        self._shell: KeptShell | None = None
        self.handshakes = 0  # completed connects; the connection agent reports reuse with it

    def _known_hosts_path(self) -> str:
        return os.path.expanduser(self.ssh.known_hosts or "~/.ssh/known_hosts")

    # -- inside the loop ------------------------------------------------------------------

    def _box_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _open(self) -> asyncssh.SSHClientConnection:
        trust = self._pool.trust
        known = trust.known_hosts_for(self._known_hosts_path())
        key_file = os.path.expanduser(self.ssh.key) if self.ssh.key else None
        client = _Client()
        keys: dict[str, Any] = {"client_keys": [trust.key(key_file)]} if key_file else {}
        try:
            conn = await asyncssh.connect(
                self.ssh.host, self.ssh.port, username=self.ssh.user, known_hosts=known,
                client_factory=lambda: client, config=[], agent_path=None,
                x509_trusted_certs=None, kex_algs=[*PREFERRED_KEX, "ecdh-sha2-nistp256",
                                                   "diffie-hellman-group14-sha256"],
                connect_timeout=CONNECT_TIMEOUT, login_timeout=CONNECT_TIMEOUT,
                keepalive_interval=KEEPALIVE_INTERVAL,
                keepalive_count_max=KEEPALIVE_COUNT_MAX, preferred_auth="publickey", **keys)
        except asyncssh.HostKeyNotVerifiable:
            raise self._host_key_error(known, client.refused_key) from None
        presented = conn.get_server_host_key()
        if self.ssh.host_key and presented is not None and \
                fingerprint(presented) != self.ssh.host_key.rstrip("="):
            conn.close()
            raise HostKeyMismatch(
                f"{self.box} presented {fingerprint(presented)}, but the inventory pins "
                f"{self.ssh.host_key}",
                hint="update boxes[].ssh.host_key only after verifying the new key",
            )
        self._client = client
        return conn

    def _host_key_error(self, known: asyncssh.SSHKnownHosts,
                        key: asyncssh.SSHKey | None) -> HostKeyMismatch:
        shown = fingerprint(key) if key is not None else "an unverifiable key"
        port = self.ssh.port if self.ssh.port != 22 else None
        recorded = known.match(self.ssh.host, "", port)[0]
        if recorded:
            return HostKeyMismatch(
                f"{self.box} ({self.ssh.host}) presented a CHANGED host key {shown}; "
                f"expected {fingerprint(recorded[0])}",
                hint="the box may have been replaced or someone is intercepting; verify it, "
                     "then update the fleet's known_hosts (dnabox never accepts it for you)",
            )
        return HostKeyMismatch(
            f"{self.ssh.host} presented a host key that is not in known_hosts ({shown})",
            hint="verify the box's key out of band, then add it to the fleet's known_hosts",
        )

    def _alive(self) -> bool:
        return self._conn is not None and self._client is not None and not self._client.lost

    async def _ensure(self) -> asyncssh.SSHClientConnection:
        if self._conn is None or not self._alive():
            self._drop()
            async with self._pool.handshake_slots():
                self._conn = await self._pool.with_retries(self.box, self.ssh, self._open)
            self.handshakes += 1
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._client = None
        self._shell = None  # it lived in that connection

    async def aconnect(self) -> None:
        async with self._box_lock():
            await self._ensure()

    async def arun(self, command: str, *, timeout: float = 600.0, stdin: bytes = b"",
                   on_output: Callable[[str], None] | None = None) -> CommandResult:
        """Run ``command`` through the box's shell; stream stdout lines to ``on_output``."""
        async with self._box_lock():
            reused = self._alive()
            conn = await self._ensure()
            started = time.monotonic()
            try:
                try:
                    process = await conn.create_process(command, encoding=None)
                except (OSError, asyncssh.Error):
                    if not reused:
                        raise
                    # A kept connection can die unnoticed (box rebooted, NAT forgot us); no
                    # command ran yet, so one fresh connection is safe and cheap.
                    self._drop()
                    process = await (await self._ensure()).create_process(command,
                                                                         encoding=None)
                try:
                    return await asyncio.wait_for(
                        _collect(process, stdin, on_output, started), timeout)
                except TimeoutError:
                    process.close()
                    raise RemoteError(f"{self.box}: command timed out after {timeout:.0f}s") \
                        from None
            except (OSError, asyncssh.Error) as exc:
                self._drop()
                raise RemoteError(f"{self.box}: connection lost while running a command: "
                                  f"{exc or type(exc).__name__}") from None

    async def arun_kept(self, command: str, *, timeout: float = 600.0) -> CommandResult:
        """``command`` in the box's kept shell, started on first use; over a session of its
        own when that shell cannot answer (see :attr:`Job.kept_shell` for what may run here)."""
        async with self._box_lock():
            try:
                if self._shell is None or not self._shell.alive:
                    conn = await self._ensure()
                    self._shell = await KeptShell.start(conn, min(timeout, CONNECT_TIMEOUT))
                rc, out, err, seconds = await self._shell.run(command, timeout)
            except KeptShellLost:
                self._shell = None
            except TimeoutError:
                self._shell = None
                raise RemoteError(f"{self.box}: command timed out after {timeout:.0f}s") \
                    from None
            else:
                return CommandResult(rc, out.decode(errors="replace"),
                                     err.decode(errors="replace"), seconds)
        return await self.arun(command, timeout=timeout)

    @property
    def kept_shell_commands(self) -> int:
        """Commands the box's current kept shell answered (0: none is kept)."""
        shell = self._shell
        return shell.commands if shell is not None and shell.alive else 0

    async def aclose(self) -> None:
        self._shell = None
        conn, self._conn, self._client = self._conn, None, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    # -- from any other thread --------------------------------------------------------------

    def connect(self) -> None:
        """Authenticate now (the connection agent warms its pool); raises like :meth:`run`."""
        self._pool.loop().call(self.aconnect())

    @property
    def is_open(self) -> bool:
        return self._alive()

    def run(self, command: str, *, timeout: float = 600.0, stdin: bytes = b"",
            on_output: Callable[[str], None] | None = None) -> CommandResult:
        return self._pool.loop().call(self.arun(command, timeout=timeout, stdin=stdin,
                                                on_output=on_output))

    def close(self) -> None:
        if self._conn is not None:
            self._pool.loop().call(self.aclose())


async def _collect(process: asyncssh.SSHClientProcess[bytes], stdin: bytes,
                   on_output: Callable[[str], None] | None, started: float) -> CommandResult:
    if stdin:
        process.stdin.write(stdin)
    process.stdin.write_eof()
    out, pending = bytearray(), b""

    async def errors() -> bytes:
        return await process.stderr.read()

    err_task = asyncio.ensure_future(errors())
    # Read until EOF, not until the exit status: OpenSSH may send the status before the
    # last of stdout (measured: 116 of 200 `cat`s truncated otherwise).
    while chunk := await process.stdout.read(65536):
        out.extend(chunk)
        if on_output:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                on_output(line.decode(errors="replace"))
    err = await err_task
    await process.wait_closed()
    if on_output and pending:
        on_output(pending.decode(errors="replace"))
    status = process.exit_status
    return CommandResult(status if status is not None else -1, out.decode(errors="replace"),
                         err.decode(errors="replace"), time.monotonic() - started)


class ConnectionPool:
    """One :class:`BoxConnection` per box for the whole run, all in one event loop."""

    def __init__(self, on_retry: Callable[[str, int, str], None] | None = None,
                 retry: RetryPolicy | None = None) -> None:
        self._connections: dict[str, BoxConnection] = {}
        self._lock = threading.Lock()
        self._on_retry = on_retry
        self.retry = retry or RetryPolicy()
        self.trust = _Trust()
        self.retries = 0  # transient failures retried, for the run summary
        self._loop: _Loop | None = None
        self._slots: asyncio.Semaphore | None = None

    def loop(self) -> _Loop:
        with self._lock:
            if self._loop is None:
                raise_nofile_limit()
                self._loop = _Loop()
            return self._loop

    def handshake_slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
        return self._slots

    async def with_retries(self, box: str, ssh: ResolvedSsh,
                           action: Callable[[], Awaitable[T]]) -> T:
        delays = self.retry.delays()
        for attempt in range(len(delays) + 1):
            try:
                return await action()
            except HostKeyMismatch:
                raise
            except asyncssh.PermissionDenied as exc:
                raise RemoteError(
                    f"{box}: SSH authentication failed as {ssh.user}: {exc.reason}",
                    hint="check defaults.ssh.key / boxes[].ssh.key in the inventory",
                ) from None
            except (OSError, asyncssh.Error, TimeoutError, EOFError) as exc:
                reason = _reason(exc)
                if attempt == len(delays):
                    raise RemoteError(
                        f"{box} ({ssh.host}:{ssh.port}) unreachable after {attempt + 1} "
                        f"attempts: {reason}",
                        hint="is the box up and its sshd running? "
                             "`dnabox status` shows which boxes answer",
                    ) from None
                with self._lock:
                    self.retries += 1
                if self._on_retry:
                    self._on_retry(box, attempt + 1, reason)
                await asyncio.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def get(self, box: str, ssh: ResolvedSsh) -> BoxConnection:
        with self._lock:
            if box not in self._connections:
                self._connections[box] = BoxConnection(box, ssh, self)
            return self._connections[box]

    def connections(self) -> list[BoxConnection]:
        with self._lock:
            return list(self._connections.values())

    def run_many(self, jobs: list[Job], *, parallel: int = 256,
                 on_line: Callable[[str, str], None] | None = None,
                 on_result: Callable[[JobResult], None] | None = None) -> list[JobResult]:
        """Run every job (at most ``parallel`` at once) inside the loop; results in order.

        ``on_line(box, line)`` gets stdout lines as they arrive and ``on_result`` each result
        as it ends, both called in the loop's thread: keep them short.
        """
        if not jobs:
            return []
        return self.loop().call(self._run_many(jobs, parallel, on_line, on_result))

    async def _run_many(self, jobs: list[Job], parallel: int,
                        on_line: Callable[[str, str], None] | None,
                        on_result: Callable[[JobResult], None] | None) -> list[JobResult]:
        slots = asyncio.Semaphore(max(1, parallel))

        async def one(job: Job) -> JobResult:
            async with slots:
                connection = self.get(job.box, job.ssh)

                def line(text: str) -> None:
                    if on_line is not None:
                        on_line(job.box, text)

                try:
                    if job.kept_shell and not job.stdin and on_line is None:
                        answer = await connection.arun_kept(job.command, timeout=job.timeout)
                    else:
                        answer = await connection.arun(job.command, timeout=job.timeout,
                                                       stdin=job.stdin,
                                                       on_output=line if on_line else None)
                    result = JobResult(job.box, answer)
                except HostKeyMismatch as exc:
                    result = JobResult(job.box, None, exc.message, "hostkey")
                except RemoteError as exc:
                    result = JobResult(job.box, None, exc.message, "remote")
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(job) for job in jobs)))

    def connect_many(self, boxes: list[tuple[str, ResolvedSsh]]) -> dict[str, str]:
        """Authenticate to every box now; the reason for each box that failed."""
        async def all_of() -> dict[str, str]:
            async def one(box: str, ssh: ResolvedSsh) -> tuple[str, str]:
                try:
                    await self.get(box, ssh).aconnect()
                except RemoteError as exc:
                    return box, exc.message
                return box, ""

            answers = await asyncio.gather(*(one(box, ssh) for box, ssh in boxes))
            return {box: reason for box, reason in answers if reason}

        return self.loop().call(all_of()) if boxes else {}

    def close(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
            loop, self._loop = self._loop, None
        if loop is None:
            return

        async def close_all() -> None:
            await asyncio.gather(*(c.aclose() for c in connections), return_exceptions=True)

        loop.call(close_all())
        loop.stop()

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's text hides it ("Connect call failed")
    return str(exc) or type(exc).__name__


def raise_nofile_limit() -> None:
    """Lift the soft descriptor limit to the hard one: a socket per box adds up."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
