"""The state file survives crashes (atomic writes) and one lab command runs at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnabox.errors import LockHeld
from dnabox.lab.processes import Proc
from dnabox.lab.state import LabBoxState, LabState, NetworkState, load, locked, save


def test_state_round_trips(tmp_path: Path) -> None:
    state = LabState(fleet="lab", inventory="/x/lab.yaml")
    state.network = NetworkState(fingerprint="f", router_ns="r", host_link="h", repo_dir="d",
                                 cgroups=["/sys/fs/cgroup/memory/dnabox/lab/_router"],
                                 server=Proc(pid=10, start=20))
    state.boxes["core-1"] = LabBoxState(fingerprint="b", netns="dnabox.lab.core-1", cgroups=[])
    path = tmp_path / "lab" / "state.json"
    save(state, path)
    assert load(path) == state
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary left


def test_no_state_file_means_no_lab(tmp_path: Path) -> None:
    assert load(tmp_path / "state.json") is None


def test_a_second_lab_command_is_refused_while_one_runs(tmp_path: Path) -> None:
    with locked(tmp_path), pytest.raises(LockHeld), locked(tmp_path):
        pass
    with locked(tmp_path):  # released: free again
        pass
