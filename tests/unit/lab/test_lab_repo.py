"""The local package repository: keyed by what it holds, indexed the way apt expects."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dnabox.lab.paths import LabPaths
from dnabox.lab.repo import (
    download_script,
    release_file,
    repo_key,
    served_tree,
    server_argv,
    sources_list,
)


def rootfs_with(tmp_path: Path, status: str) -> Path:
    root = tmp_path / status
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(status)
    return root


def test_key_follows_the_package_list_the_rootfs_and_the_release(tmp_path: Path) -> None:
    one = rootfs_with(tmp_path, "a")
    assert repo_key(["runc", "containerd"], one, "bookworm") == repo_key(
        ["containerd", "runc"], one, "bookworm")
    assert repo_key(["runc"], one, "bookworm") != repo_key(["runc", "crun"], one, "bookworm")
    assert repo_key(["runc"], one, "bookworm") != repo_key(
        ["runc"], rootfs_with(tmp_path, "b"), "bookworm")
    assert repo_key(["runc"], one, "bookworm") != repo_key(["runc"], one, "trixie")


def test_release_lists_each_index_with_its_hash_and_size() -> None:
    text = release_file({"Packages": b"abc", "Packages.gz": b"xy"}, "trixie", now=0)
    assert "Date: Thu, 01 Jan 1970 00:00:00 UTC" in text
    assert "Suite: trixie\nCodename: trixie\n" in text
    assert f" {hashlib.sha256(b'abc').hexdigest()} 3 Packages\n" in text
    assert f" {hashlib.sha256(b'xy').hexdigest()} 2 Packages.gz\n" in text


def test_boxes_trust_the_lab_repository() -> None:
    assert sources_list("http://10.201.255.254:80/") == \
        "deb [trusted=yes] http://10.201.255.254:80/ ./\n"


def test_download_resolves_the_closure_in_a_throwaway_overlay(tmp_path: Path) -> None:
    script = download_script(Path("/cache/rootfs"), tmp_path, ["containerd", "o'dd"])
    assert f"lowerdir=/cache/rootfs,upperdir={tmp_path}/upper" in script
    assert script.splitlines()[-1].endswith("--download-only containerd 'o'\"'\"'dd'")


def test_server_binds_only_the_lab_address() -> None:
    argv = server_argv("/usr/bin/python3", Path("/repo"), "10.201.255.254", 80)
    assert argv[argv.index("--bind") + 1] == "10.201.255.254"


def test_server_queues_a_fleet_of_clients_and_keeps_connections(tmp_path: Path) -> None:
    """100 fresh boxes fetch at once: `python -m http.server` queued 5 and the rest timed
    out (measured). The accept queue (ss shows it as Send-Q) and HTTP/1.1 are what fixed it."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    (tmp_path / "Packages").write_bytes(b"x" * 1000)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(server_argv(sys.executable, tmp_path, "127.0.0.1", port),
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as ready:
                if ready.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/Packages", timeout=10) as answer:
            assert answer.read() == b"x" * 1000
            assert answer.version == 11  # keep-alive: apt reuses one connection
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                                   text=True, check=True).stdout.split()
        assert int(listening[2]) >= 1000, f"accept queue {listening[2]}"
    finally:
        server.terminate()
        server.wait(10)


def test_one_served_tree_links_each_release_to_its_repository(tmp_path: Path) -> None:
    paths = LabPaths(state_root=tmp_path / "state", cache_root=tmp_path / "cache")
    repos = {"bookworm": tmp_path / "repo-12", "trixie": tmp_path / "repo-13"}
    tree = served_tree(paths, repos)
    assert {p.name: p.resolve() for p in tree.iterdir()} == {
        s: r.resolve() for s, r in repos.items()}
    assert served_tree(paths, repos) == tree, "the same releases serve from the same tree"
    assert served_tree(paths, {"bookworm": repos["bookworm"]}) != tree
