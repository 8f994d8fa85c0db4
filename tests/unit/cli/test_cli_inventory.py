"""`dnabox inventory validate | show | graph` through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from dnabox.cli.app import app
from dnabox.inventory import load_fleet

SAMPLES = ["inventory/lab.yaml", "inventory/smartx-playground.yaml"]

runner = CliRunner()


def sample_copy(repo_root: Path, tmp_path: Path, old: str, new: str) -> Path:
    """The lab sample with one unique piece of text changed."""
    text = (repo_root / "inventory/lab.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize("sample", SAMPLES)
def test_validate_accepts_the_samples(repo_root: Path, sample: str) -> None:
    result = runner.invoke(app, ["inventory", "validate", str(repo_root / sample)])
    assert result.exit_code == 0, result.output
    fleet = load_fleet(repo_root / sample)
    assert result.stdout.startswith(f"valid: {repo_root / sample} - {len(fleet.sites)} sites, ")
    assert result.stdout.count("\n") == 1  # one line, never wrapped


def test_validate_json(repo_root: Path) -> None:
    result = runner.invoke(app, ["inventory", "validate", str(repo_root / SAMPLES[0]), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "schema": "dnabox/v1", "command": "inventory.validate", "ok": True,
        "file": str(repo_root / SAMPLES[0]), "valid": True, "sites": 4, "boxes": 4,
        "clusters": 2}


def test_validate_lists_every_problem_and_exits_1(repo_root: Path, tmp_path: Path) -> None:
    text = (repo_root / "inventory/lab.yaml").read_text(encoding="utf-8")
    bad = text.replace("    site: edge-a\n", "    site: edge-c\n").replace(
        "runtimes: [runc, kata, apptainer]", "runtimes: [kata, apptainer]")
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    lines = bad.splitlines()
    site_line = lines.index("    site: edge-c") + 1
    runtimes_line = lines.index("    runtimes: [kata, apptainer]") + 1

    result = runner.invoke(app, ["inventory", "validate", str(path)])

    assert result.exit_code == 4
    assert "2 problems in the inventory" in result.stderr
    assert f"{path}:{site_line}: boxes[1].site: unknown site 'edge-c'" in result.stderr
    assert f"{path}:{runtimes_line}: clusters[0].runtimes: runc must stay" in result.stderr
    assert "Traceback" not in result.output


def test_validate_reports_a_syntax_error(repo_root: Path, tmp_path: Path) -> None:
    path = sample_copy(repo_root, tmp_path, "    tier: edge\n    region: lab-west\n",
                       "    tier: edge\n\tregion: lab-west\n")
    line = path.read_text().splitlines().index("\tregion: lab-west") + 1
    result = runner.invoke(app, ["inventory", "validate", str(path)])
    assert result.exit_code == 4
    assert f"{path}:{line}: (syntax): invalid YAML" in result.stderr


def test_validate_missing_file_exits_4(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inventory", "validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 4
    assert "cannot read" in result.stderr


def test_show_json_is_the_model(repo_root: Path) -> None:
    path = repo_root / "inventory/smartx-playground.yaml"
    result = runner.invoke(app, ["inventory", "show", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    fleet = load_fleet(path)
    assert data["name"] == fleet.name
    assert [b["name"] for b in data["boxes"]] == [b.name for b in fleet.boxes]
    assert data["overlays"][0]["vni"] == fleet.overlays[0].vni


def test_show_tables_name_every_box(repo_root: Path) -> None:
    result = runner.invoke(app, ["inventory", "show", str(repo_root / "inventory/lab.yaml")])
    assert result.exit_code == 0, result.output
    for box in ("core-1", "edge-a-1", "edge-b-1", "end-a-1"):
        assert box in result.stdout


def test_show_refuses_an_invalid_file(repo_root: Path, tmp_path: Path) -> None:
    path = sample_copy(repo_root, tmp_path, "vni: 1001", "vni: 0")
    result = runner.invoke(app, ["inventory", "show", str(path), "--json"])
    assert result.exit_code == 4
    assert "overlays[0].vni: must be greater than or equal to 1" in result.stderr
    # Under --json the error is a JSON document on stdout too, naming the same problem.
    error = json.loads(result.stdout)
    assert error["schema"] == "dnabox/v1" and error["command"] == "inventory.show"
    assert error["ok"] is False and error["error"]["exit_code"] == 4
    assert [p["field"] for p in error["error"]["problems"]] == ["overlays[0].vni"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_graph_dot_names_every_box(repo_root: Path, tmp_path: Path, sample: str) -> None:
    out = tmp_path / "fleet.dot"
    result = runner.invoke(app, ["inventory", "graph", str(repo_root / sample), "-o", str(out)])
    assert result.exit_code == 0, result.output
    dot = out.read_text(encoding="utf-8")
    assert dot.startswith("graph ")
    for box in load_fleet(repo_root / sample).boxes:
        assert f'"{box.name}" [id="box-{box.name}"' in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_renders_an_svg_with_every_box(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "fleet.svg"
    result = runner.invoke(app, ["inventory", "graph", str(repo_root / SAMPLES[0]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    root = ElementTree.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    assert {b.name for b in load_fleet(repo_root / SAMPLES[0]).boxes} <= titles


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_renders_a_png(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "fleet.png"
    result = runner.invoke(app, ["inventory", "graph", str(repo_root / SAMPLES[0]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG\r\n")


def test_graph_refuses_an_unknown_format(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "fleet.gif"
    result = runner.invoke(app, ["inventory", "graph", str(repo_root / SAMPLES[0]), "-o", str(out)])
    assert result.exit_code == 2
    assert ".svg" in result.stderr
    assert not out.exists()
