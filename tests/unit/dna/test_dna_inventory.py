"""The fleet's `dna:` section: valid fleets load, each broken reference is refused at the
line that breaks it (file:line: field: message), with what would be valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnabox.errors import InventoryError
from dnabox.inventory import load_fleet
from dnabox.inventory.model import bytes_of, seconds_of

BASE = """\
name: t
planes:
  - {name: M, purpose: management, cidr: 10.1.0.0/16}
  - {name: D, purpose: data, cidr: 10.3.0.0/16, bridge: br-data}
sites:
  - {name: core, tier: core}
  - {name: edge, tier: edge}
  - {name: edge-b, tier: edge}
  - {name: end, tier: end, uplink: edge}
boxes:
  - name: core-1
    site: core
    address: 10.1.1.11
    interfaces: {D: {nic: eth1, address: 10.3.1.11/24}}
  - name: edge-1
    site: edge
    address: 10.1.2.11
    disk: 1GiB
    interfaces: {D: {nic: eth1, address: 10.3.2.11/24}}
  - name: edge-b-1
    site: edge-b
    address: 10.1.3.11
    interfaces: {D: {nic: eth1, address: 10.3.3.11/24}}
  - name: end-1
    site: end
    address: 10.1.4.11
    interfaces: {D: {nic: eth1, address: 10.3.4.11/24}}
dna:
  datasets:
    - name: traffic
      producers: {tiers: [end]}
      retention: {max_bytes: 64MiB, max_age: 24h}
  lake: {site: core}
  models:
    - name: speed
      dataset: traffic
      train_at: core
      serve_at: [edge, edge-b]
      retrain: {every_samples: 500}
"""


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(text, encoding="utf-8")
    load_fleet(path)


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        _load(tmp_path, text)
    return [str(p).split(":", 1)[1] for p in caught.value.problems]


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_base_is_valid(tmp_path: Path) -> None:
    _load(tmp_path, BASE)


def test_sizes_and_durations() -> None:
    assert bytes_of("64MiB") == 64 << 20
    assert bytes_of("3B") == 3
    assert bytes_of("2TiB") == 2 << 40
    assert seconds_of("24h") == 86400
    assert seconds_of("30d") == 30 * 86400
    assert seconds_of("90s") == 90


CASES = [
    # (edit: old -> new, line marker in the edited text, field, words in the message)
    ("serve_at: [edge, edge-b]", "serve_at: [edge, end]", "serve_at: [edge, end]",
     "dna.models[0].serve_at[1]", "tier end; inference needs a edge site"),
    ("serve_at: [edge, edge-b]", "serve_at: [edge, nowhere]", "serve_at: [edge, nowhere]",
     "dna.models[0].serve_at[1]", "unknown site 'nowhere'; valid edge sites: edge, edge-b"),
    ("producers: {tiers: [end]}", "producers: {sites: [core]}", "producers: {sites: [core]}",
     "dna.datasets[0].producers.sites[0]", "core site"),
    ("  - {name: end, tier: end, uplink: edge}", "  - {name: end, tier: end}",
     "  - {name: end, tier: end}", "sites[3].uplink", "has no uplink edge site"),
    ("uplink: edge}", "uplink: core}", "uplink: core}", "sites[3].uplink",
     "tier core; an uplink needs a edge site"),
    ("dataset: traffic", "dataset: trafic", "dataset: trafic", "dna.models[0].dataset",
     "unknown dataset 'trafic'; valid: traffic"),
    ("train_at: core", "train_at: edge", "train_at: edge", "dna.models[0].train_at",
     "training needs a core site"),
    ("lake: {site: core}", "lake: {site: edge}", "lake: {site: edge}", "dna.lake.site",
     "the lake needs a core site"),
    ("retrain: {every_samples: 500}", "retrain: {every_samples: 0}",
     "retrain: {every_samples: 0}", "dna.models[0].retrain", "no retrain trigger"),
    ("max_bytes: 64MiB", "max_bytes: 2GiB", "max_bytes: 2GiB",
     "dna.datasets[0].retention.max_bytes", "need 2.0GiB on box edge-1, which has disk 1GiB"),
    ("max_bytes: 64MiB", "max_bytes: 64MB", "max_bytes: 64MB",
     "dna.datasets[0].retention.max_bytes", "not a valid size"),
    ("max_age: 24h", "max_age: 1w", "max_age: 1w",
     "dna.datasets[0].retention.max_age", "not a valid duration"),
    ("    interfaces: {D: {nic: eth1, address: 10.3.4.11/24}}\n", "",
     "  - name: end-1", "boxes[3]", "no overlay address or data-plane interface"),
]


@pytest.mark.parametrize(("old", "new", "marker", "field", "words"), CASES,
                         ids=[c[3] + ":" + c[1][:20] for c in CASES])
def test_refused_at_the_line(tmp_path: Path, old: str, new: str, marker: str, field: str,
                             words: str) -> None:
    text = BASE.replace(old, new, 1)
    assert text != BASE
    problems = _problems(tmp_path, text)
    want_line = _line(text, marker)
    hits = [p for p in problems if p.startswith(f"{want_line}: {field}") and words in p]
    assert hits, problems


def test_dataset_produced_nowhere(tmp_path: Path) -> None:
    text = BASE.replace("producers: {tiers: [end]}", "producers: {sites: []}")
    problems = _problems(tmp_path, text)
    line = _line(text, "producers:")
    assert any(p.startswith(f"{line}: dna.datasets[0].producers") and "produced nowhere" in p
               for p in problems), problems


def test_duplicate_dataset(tmp_path: Path) -> None:
    dup = ("    - name: traffic\n      producers: {tiers: [edge]}\n"
           "      retention: {max_bytes: 1MiB, max_age: 1h}\n  lake:")
    text = BASE.replace("  lake:", dup, 1)
    problems = _problems(tmp_path, text)
    assert any("duplicate dataset name traffic" in p for p in problems), problems


def test_lake_retention_against_core_disk(tmp_path: Path) -> None:
    text = BASE.replace("    address: 10.1.1.11\n", "    address: 10.1.1.11\n    disk: 512MiB\n")
    problems = _problems(tmp_path, text)
    assert any("dna.lake.retention.max_bytes" in p and "core-1" in p for p in problems), problems


def test_a_mistyped_key_names_the_valid_keys(tmp_path: Path) -> None:
    text = BASE.replace("train_at: core", "train_on: core")
    problems = _problems(tmp_path, text)
    assert any("unknown key 'train_on'" in p and "train_at" in p for p in problems), problems


@pytest.mark.parametrize("sample", ["inventory/lab.yaml", "inventory/smartx-playground.yaml"])
def test_samples_declare_the_vip_scenario(repo_root: Path, sample: str) -> None:
    fleet = load_fleet(repo_root / sample)
    assert fleet.dna is not None
    assert any(d.name == "traffic" for d in fleet.dna.datasets)
    assert any(m.name == "speed" and m.serve_at for m in fleet.dna.models)
