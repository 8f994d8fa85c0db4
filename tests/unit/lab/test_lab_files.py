"""Removing a tree never goes through a mount left inside it."""

from __future__ import annotations

from pathlib import Path

from dnabox.lab.files import mounts_under, remove_tree

MOUNTINFO = """\
24 1 0:22 / / rw - ext4 /dev/sda rw
40 24 0:5 / /var/cache/x.partial/proc rw - proc proc rw
41 24 0:6 / /var/cache/x.partial/dev rw - devtmpfs udev rw
42 41 0:7 / /var/cache/x.partial/dev/pts rw - devpts devpts rw
43 24 0:8 / /var/cache/x.partial2 rw - tmpfs t rw
"""


def test_mounts_under_a_path_deepest_first() -> None:
    found = mounts_under(Path("/var/cache/x.partial"), MOUNTINFO)
    assert found == [Path("/var/cache/x.partial/dev/pts"), Path("/var/cache/x.partial/proc"),
                     Path("/var/cache/x.partial/dev")]


def test_remove_tree(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/c").write_text("x")
    remove_tree(tmp_path / "a")
    assert not (tmp_path / "a").exists()
    remove_tree(tmp_path / "missing")  # nothing to do is fine
