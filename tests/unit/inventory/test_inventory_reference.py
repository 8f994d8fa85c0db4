"""docs/inventory.md is generated from the model and stays in step with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnabox.errors import InventoryError
from dnabox.inventory import load_fleet
from dnabox.inventory import model as model_module
from dnabox.inventory.reference import MINIMAL_FLEET, generate


def test_checked_in_reference_matches_the_model(repo_root: Path) -> None:
    checked_in = (repo_root / "docs/inventory.md").read_text(encoding="utf-8")
    assert checked_in == generate(), (
        "docs/inventory.md is stale: python -m dnabox.inventory.reference > docs/inventory.md"
    )


def test_reference_documents_every_key_of_every_model() -> None:
    text = generate()
    # Every model of the file format; ResolvedSsh is computed, never written by users.
    models = [cls for cls in vars(model_module).values()
              if isinstance(cls, type) and issubclass(cls, model_module.Strict)
              and cls not in (model_module.Strict, model_module.ResolvedSsh)]
    assert len(models) == 23
    for model in models:
        assert f"\n## {model.__name__}\n" in text
        section = text.split(f"\n## {model.__name__}\n")[1].split("\n## ")[0]
        for key, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{key} has no docstring"
            assert f"| `{key}` |" in section, f"{model.__name__}.{key} is not documented"


def test_reference_states_defaults_and_required_keys() -> None:
    text = generate()
    assert "| `vni` | integer 1-16777215 | **required** |" in text
    assert "| `mtu` | integer 576-9000 | `1450` |" in text
    assert "| `runtimes` | list of one of `runc`, `kata`, `apptainer` | `[runc]` |" in text
    assert "  cidr: 10.10.0.0/16\n" in text  # the default planes, as YAML


def test_minimal_example_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(MINIMAL_FLEET, encoding="utf-8")
    fleet = load_fleet(path)
    assert [p.name for p in fleet.planes] == ["P+M", "C", "D"]


def test_example_error_in_the_reference_is_what_validate_prints(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = (repo_root / "inventory/lab.yaml").read_text(encoding="utf-8")
    assert lab.count("    site: edge-a\n") == 1
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory/lab.yaml").write_text(
        lab.replace("    site: edge-a\n", "    site: edge-c\n"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InventoryError) as caught:
        load_fleet(Path("inventory/lab.yaml"))
    [problem] = caught.value.problems
    assert f"\n{problem}\n" in generate()
