"""The SSH adapter against a real SSH server (asyncssh's, in this process, on loopback).

Host keys stay strict (unknown and changed keys refused, pinned fingerprints enforced);
commands keep their stdout, stderr, stdin and exit code; a burst of refused/reset
connections is retried with jittered backoff and counted; a box that never answers is
reported unreachable with the reason while the other boxes of the batch get their answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from dnabox.adapters.jobs import Job, RetryPolicy
from dnabox.adapters.ssh import ConnectionPool, fingerprint
from dnabox.errors import HostKeyMismatch, RemoteError
from dnabox.inventory.model import ResolvedSsh

FAST = RetryPolicy(attempts=3, first_delay=0.01)


async def _handle(process: asyncssh.SSHServerProcess[bytes], sessions: list[str],
                  children: list[asyncio.subprocess.Process]) -> None:
    """A tiny sshd: runs each session's command with the host's sh, input and output
    streamed both ways (a kept shell talks to it command by command). ``sessions`` gets
    every session's command, ``children`` its shell."""
    command = process.command or "true"
    sessions.append(command)
    child = await asyncio.create_subprocess_shell(
        command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    children.append(child)
    assert child.stdin and child.stdout and child.stderr

    async def feed() -> None:
        assert child.stdin
        with contextlib.suppress(OSError):
            while data := await process.stdin.read(65536):
                child.stdin.write(data)
                await child.stdin.drain()
            child.stdin.close()

    async def pump(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
        while data := await source.read(65536):
            sink.write(data)

    feeding = asyncio.ensure_future(feed())
    await asyncio.gather(pump(child.stdout, process.stdout), pump(child.stderr, process.stderr))
    rc = await child.wait()
    feeding.cancel()
    process.exit(rc)


@dataclass
class Server:
    port: int
    host_key: asyncssh.SSHKey
    client_key: Path
    known_hosts: Path
    loop: asyncio.AbstractEventLoop
    sessions: list[str]  # every session's command, in order: what the server was asked

    def ssh(self, port: int | None = None, host_key: str | None = None,
            known_hosts: Path | None = None) -> ResolvedSsh:
        return ResolvedSsh(host="127.0.0.1", user="root", port=port or self.port,
                           key=str(self.client_key), host_key=host_key,
                           known_hosts=str(known_hosts or self.known_hosts))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("sshd")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_path = tmp / "id_ed25519"
    client_key.write_private_key(str(client_path))
    sessions: list[str] = []
    children: list[asyncio.subprocess.Process] = []
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                client_key.export_public_key().decode()),
            process_factory=lambda process: _handle(process, sessions, children),
            encoding=None)

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result()
    port = acceptor.sockets[0].getsockname()[1]
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text(
        f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    yield Server(port, host_key, client_path, known_hosts, loop, sessions)
    acceptor.close()

    async def end_children() -> None:
        # A command the client gave up on (a timeout) may still run: end it and its shell.
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
            await child.wait()

    asyncio.run_coroutine_threadsafe(end_children(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_command_keeps_stdout_stderr_stdin_and_exit_code(server: Server) -> None:
    lines: list[str] = []
    with ConnectionPool() as pool:
        box = pool.get("b1", server.ssh())
        result = box.run("cat; echo oops >&2; exit 3", stdin=b"one\ntwo\n",
                         on_output=lines.append)
        again = box.run("echo again")
        assert box.handshakes == 1  # the second command reused the connection
    assert (result.rc, result.stdout, result.stderr) == (3, "one\ntwo\n", "oops\n")
    assert lines == ["one", "two"]
    assert again.stdout == "again\n"


def test_unknown_host_key_is_refused(server: Server, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with ConnectionPool(retry=FAST) as pool, pytest.raises(HostKeyMismatch) as caught:
        pool.get("b1", server.ssh(known_hosts=empty)).run("true")
    assert "not in known_hosts" in caught.value.message
    assert fingerprint(server.host_key) in caught.value.message
    assert pool.retries == 0  # a key problem is never retried


def test_changed_host_key_is_refused_naming_both(server: Server, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    swapped = tmp_path / "known_hosts"
    swapped.write_text(f"[127.0.0.1]:{server.port} "
                       f"{other.export_public_key().decode().strip()}\n")
    with ConnectionPool(retry=FAST) as pool, pytest.raises(HostKeyMismatch) as caught:
        pool.get("b1", server.ssh(known_hosts=swapped)).run("true")
    assert "CHANGED host key" in caught.value.message
    assert fingerprint(other) in caught.value.message


def test_pinned_fingerprint_is_enforced(server: Server) -> None:
    wrong = fingerprint(asyncssh.generate_private_key("ssh-ed25519"))
    with ConnectionPool(retry=FAST) as pool:
        with pytest.raises(HostKeyMismatch, match="pins"):
            pool.get("b1", server.ssh(host_key=wrong)).run("true")
        right = fingerprint(server.host_key)
        assert pool.get("b2", server.ssh(host_key=right)).run("true").rc == 0


def test_jittered_delays_grow_and_stay_in_bounds() -> None:
    policy = RetryPolicy(attempts=5, first_delay=1.0, factor=2.0, jitter=0.5)
    rng = random.Random(7)
    runs = [policy.delays(rng) for _ in range(50)]
    for delays in runs:
        assert len(delays) == 4
        for step, delay in enumerate(delays):
            assert 0.5 * 2**step <= delay <= 1.5 * 2**step
    assert len({tuple(d) for d in runs}) == 50  # jittered: no two runs retry in lockstep


class FlakyFront:
    """A TCP front for the server that resets its first ``failures`` connections (a box's
    sshd overrun in a burst), then forwards."""

    def __init__(self, target: int, failures: int) -> None:
        self.target = target
        self.failures = failures
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.failures:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()  # RST: "connection reset by peer"
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.mark.fault
def test_reset_burst_is_retried_and_counted_while_a_dead_box_is_reported(
        server: Server) -> None:
    front = FlakyFront(server.port, failures=2)
    known = server.known_hosts.parent / "known_hosts_front"
    known.write_text(server.known_hosts.read_text() + f"[127.0.0.1]:{front.port} "
                     f"{server.host_key.export_public_key().decode().strip()}\n")
    dead = _free_port()
    retried: list[tuple[str, int, str]] = []
    try:
        with ConnectionPool(retry=FAST, on_retry=lambda *a: retried.append(a)) as pool:
            results = pool.run_many([
                Job("flaky", server.ssh(port=front.port, known_hosts=known), "echo ok"),
                Job("dead", server.ssh(port=dead), "echo never"),
                Job("fine", server.ssh(), "echo fine"),
            ])
            retries = pool.retries
    finally:
        front.close()
    by_box = {r.box: r for r in results}
    assert by_box["flaky"].result is not None and by_box["flaky"].result.stdout == "ok\n"
    assert by_box["fine"].result is not None and by_box["fine"].result.stdout == "fine\n"
    assert by_box["dead"].result is None
    assert "unreachable after 3 attempts" in by_box["dead"].error
    assert "refused" in by_box["dead"].error.lower()
    # flaky: 2 resets retried; dead: 2 refusals retried before giving up.
    assert retries == 4
    assert sorted(b for b, _, _ in retried) == ["dead", "dead", "flaky", "flaky"]


def test_sync_run_raises_remote_error_for_a_dead_box(server: Server) -> None:
    with ConnectionPool(retry=FAST) as pool, pytest.raises(RemoteError, match="unreachable"):
        pool.get("dead", server.ssh(port=_free_port())).run("true")


def test_many_boxes_share_one_loop_thread(server: Server) -> None:
    def client_threads() -> set[threading.Thread]:
        # The test server's subprocess watchers ("waitpid-N") are not the client's.
        return {t for t in threading.enumerate() if not t.name.startswith("waitpid")}

    before = client_threads()
    with ConnectionPool() as pool:
        results = pool.run_many([Job(f"b{i}", server.ssh(), f"echo {i}") for i in range(60)])
        during = client_threads()
    assert [r.result.stdout if r.result else r.error for r in results] == \
        [f"{i}\n" for i in range(60)]
    # One loop thread for 60 connections (and asyncio's bounded executor, where asyncssh
    # builds its options), not a thread per connection.
    added = [t.name for t in during - before]
    assert added.count("dnabox-ssh") == 1, added
    assert len(added) <= 1 + 2 * min(32, (os.cpu_count() or 1) + 4), added


def _kept(pool: ConnectionPool, box: str, ssh: ResolvedSsh, command: str,
          timeout: float = 30.0) -> tuple[int, str, str]:
    [answer] = pool.run_many([Job(box, ssh, command, timeout=timeout, kept_shell=True)])
    assert answer.result is not None, answer.error
    return answer.result.rc, answer.result.stdout, answer.result.stderr


def test_a_kept_shell_answers_each_command_as_a_session_of_its_own_would(
        server: Server) -> None:
    commands = [
        "echo out; echo err >&2; exit 3",
        "printf 'no newline'",
        "echo 'unclosed",  # does not parse: fails alone, the shell goes on
        "cd /; x=1; cat",  # reads its input: gets none, and eats no later command
        "pwd; echo ${x:-unset}",  # nothing of the command before leaks into this one
        "printf '\\n%s\\n' 0123456789abcdef; echo still here",  # looks like an end
    ]
    with ConnectionPool() as pool:
        plain = [pool.get("plain", server.ssh()).run(c) for c in commands[:2]]
        server.sessions.clear()
        kept = [_kept(pool, "kept", server.ssh(), c) for c in commands]
        used = pool.get("kept", server.ssh()).kept_shell_commands
    assert server.sessions == ["exec /bin/sh"]  # one session for all of them
    assert used == len(commands)
    assert kept[:2] == [(p.rc, p.stdout, p.stderr) for p in plain]
    assert kept[2][0] != 0 and kept[2][2]  # the shell's syntax error
    assert kept[3] == (0, "", "")
    assert kept[4][0] == 0 and kept[4][1] != "/\n" and kept[4][1].endswith("unset\n")
    assert kept[5] == (0, "\n0123456789abcdef\nstill here\n", "")


def test_a_kept_shell_that_dies_mid_command_is_replaced_and_the_command_rerun(
        server: Server, tmp_path: Path) -> None:
    mark = tmp_path / "first-try"
    # The first try kills its kept shell ($$ is the kept shell, even in its subshell).
    command = f"if [ -e {mark} ]; then echo second try; else touch {mark}; kill -9 $$; fi"
    with ConnectionPool() as pool:
        server.sessions.clear()
        first = _kept(pool, "b", server.ssh(), "echo warm")
        rerun = _kept(pool, "b", server.ssh(), command)
        after = _kept(pool, "b", server.ssh(), "echo after")
    assert first == (0, "warm\n", "")
    assert rerun == (0, "second try\n", "")  # over a session of its own
    assert after == (0, "after\n", "")
    assert server.sessions == ["exec /bin/sh", command, "exec /bin/sh"]


def test_a_kept_shell_command_that_times_out_ends_that_shell_only(server: Server) -> None:
    with ConnectionPool() as pool:
        server.sessions.clear()
        [slow] = pool.run_many([Job("b", server.ssh(), "sleep 30", timeout=0.5,
                                    kept_shell=True)])
        after = _kept(pool, "b", server.ssh(), "echo after")
    assert slow.result is None and "timed out" in slow.error
    assert after == (0, "after\n", "")
    assert server.sessions == ["exec /bin/sh", "exec /bin/sh"]
