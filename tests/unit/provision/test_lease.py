"""The lease a run takes on each box, run with the real shell against a directory here."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from dnabox.provision.lease import (
    Holder,
    break_command,
    parse_lease,
    parse_take,
    read_command,
    release_command,
    take_command,
)


def sh(command: str) -> str:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                          check=True).stdout


def holder(run: str, owner: str, ttl: int = 600) -> Holder:
    return Holder(run, owner, "ctl-" + run, "ops", 4242, ttl)


def test_a_free_box_is_taken_and_records_the_holder(tmp_path: Path) -> None:
    before = int(time.time())
    assert parse_take(sh(take_command(holder("r1", "hostA:/a"), str(tmp_path)))) == (True, None)
    lease = parse_lease(sh(read_command(str(tmp_path))))
    assert lease is not None
    assert (lease.run, lease.owner, lease.host, lease.user, lease.pid) == \
        ("r1", "hostA:/a", "ctl-r1", "ops", 4242)
    assert before <= lease.started <= int(time.time())
    assert lease.expires == lease.started + 600


def test_a_second_controller_is_refused_with_the_holder(tmp_path: Path) -> None:
    sh(take_command(holder("r1", "hostA:/a"), str(tmp_path)))
    taken, other = parse_take(sh(take_command(holder("r2", "hostB:/b"), str(tmp_path))))
    assert not taken and other is not None
    assert (other.run, other.host, other.pid) == ("r1", "ctl-r1", 4242)
    assert "run r1 of ops@ctl-r1 (pid 4242, state dir /a)" in other.describe()
    # The refused run changed nothing: the lease is still r1's.
    lease = parse_lease(sh(read_command(str(tmp_path))))
    assert lease is not None and lease.run == "r1"


def test_the_same_run_and_the_same_controller_may_take_it_again(tmp_path: Path) -> None:
    sh(take_command(holder("r1", "hostA:/a"), str(tmp_path)))
    assert parse_take(sh(take_command(holder("r1", "hostA:/a"), str(tmp_path))))[0]
    # A crashed run's successor from the same state dir (it holds that dir's fleet lock).
    assert parse_take(sh(take_command(holder("r3", "hostA:/a"), str(tmp_path))))[0]
    lease = parse_lease(sh(read_command(str(tmp_path))))
    assert lease is not None and lease.run == "r3"


def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / "lease").write_text(
        f"run=old\nowner=hostA:/a\nhost=a\nuser=u\npid=1\nstarted=1\n"
        f"expires={int(time.time()) - 1}\n")
    assert parse_take(sh(take_command(holder("r2", "hostB:/b"), str(tmp_path))))[0]


@pytest.mark.parametrize("expires", ["", "soon", "-5"])
def test_a_lease_without_a_valid_expiry_counts_as_expired(tmp_path: Path, expires: str) -> None:
    (tmp_path / "lease").write_text(f"run=old\nowner=x:/y\nexpires={expires}\n")
    assert parse_take(sh(take_command(holder("r2", "hostB:/b"), str(tmp_path))))[0]


def test_release_removes_only_the_runs_own_lease(tmp_path: Path) -> None:
    sh(take_command(holder("r1", "hostA:/a"), str(tmp_path)))
    sh(release_command("someone-else", str(tmp_path)))
    assert (tmp_path / "lease").exists()
    sh(release_command("r1", str(tmp_path)))
    assert (tmp_path / "lease").read_text() == ""  # emptied: no lease
    assert parse_lease(sh(read_command(str(tmp_path)))) is None
    assert parse_take(sh(take_command(holder("r2", "hostB:/b"), str(tmp_path))))[0]
    sh(release_command("r1", str(tmp_path)))  # nothing to release: still fine


def test_break_removes_any_lease(tmp_path: Path) -> None:
    sh(take_command(holder("r1", "hostA:/a"), str(tmp_path)))
    sh(break_command(str(tmp_path)))
    assert parse_lease(sh(read_command(str(tmp_path)))) is None
    sh(break_command(str(tmp_path)))


def test_names_with_quotes_and_newlines_stay_one_field_each(tmp_path: Path) -> None:
    tricky = Holder("r1", "h:/dir with 'quote'", "h\nrun=evil", "o'neil", 1, 60)
    assert parse_take(sh(take_command(tricky, str(tmp_path))))[0]
    lease = parse_lease(sh(read_command(str(tmp_path))))
    assert lease is not None
    assert (lease.run, lease.owner, lease.host, lease.user) == \
        ("r1", "h:/dir with 'quote'", "h run=evil", "o'neil")


def test_holder_here_names_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNABOX_LEASE_TTL", "90")
    me = Holder.here(str(tmp_path))
    assert me.owner.endswith(f":{tmp_path.resolve()}") and me.ttl == 90 and me.pid > 0
    assert Holder.here(str(tmp_path)).run != me.run
