"""Shell as shell files: shellcheck over every shell file and every script dnabox renders.

The static files are checked as they are; the fragments that templates include
(``templates/apply/*.sh``) on their own too, but without the warnings a fragment cannot
avoid (variables its includer sets or reads); then every rendered apply script, daemon
script and direct program of the sample fleets, as the box receives it, with nothing
excluded.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dnabox.inventory import load_fleet
from dnabox.locations import ASSETS, Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.catalogue import CATALOGUE
from dnabox.plan.desired import box_variables, plan_fleet
from dnabox.plan.direct_program import STEP_MARK, ProgramAssets, build_program, direct_capable
from dnabox.provision.remote import FINGERPRINTS, fingerprints_document

ROOT = Path(__file__).resolve().parents[3]
PROJECT = Locations(ROOT, ROOT / ".dnabox")
SAMPLES = ["lab", "smartx-playground"]
FRAGMENTS = sorted((ASSETS / "templates" / "apply").glob("*.sh"))
# Whole scripts kept as files: checked exactly as they run.
SCRIPTS = [ROOT / ".ci" / "run", ROOT / "setup.sh",
           ASSETS / "playbooks" / "files" / "dpkg-recover.sh",
           ASSETS / "playbooks" / "roles" / "base" / "files" / "policy-rc.d"]
# A fragment's own variables are used by its includer, and it uses the includer's.
FRAGMENT_EXCLUDES = "SC2034,SC2154"

needs_shellcheck = pytest.mark.skipif(shutil.which("shellcheck") is None,
                                      reason="shellcheck is not installed (setup.sh installs it)")


def shellcheck(paths: list[Path], *options: str) -> str:
    done = subprocess.run(["shellcheck", "--format=gcc", *options, *map(str, paths)],
                          capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def test_every_shell_file_of_the_repository_is_listed_here() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    shells = set()
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or name.endswith(".j2"):
            continue
        head = path.read_bytes()[:40]
        if name.endswith(".sh") or head.startswith((b"#!/bin/sh", b"#!/usr/bin/env bash",
                                                    b"#!/bin/bash")):
            shells.add(path)
    assert shells == set(SCRIPTS) | set(FRAGMENTS)


@needs_shellcheck
def test_static_shell_files_pass_shellcheck() -> None:
    assert shellcheck(SCRIPTS) == ""
    assert shellcheck(FRAGMENTS, f"--exclude={FRAGMENT_EXCLUDES}") == ""


def test_fragments_are_plain_shell_without_template_syntax() -> None:
    for fragment in FRAGMENTS:
        text = fragment.read_text()
        assert not any(mark in text for mark in ("{{", "{%", "{#")), fragment.name
        assert text.startswith("# shellcheck shell=sh\n"), fragment.name
    # The program's steps are what provision.direct_run reads back.
    assert f'echo "{STEP_MARK}$*"' in (ASSETS / "templates/apply/direct-program.sh").read_text()


def rendered_scripts(tmp_path: Path) -> list[Path]:
    """Every distinct shell script the sample fleets' boxes receive or run."""
    assets = ProgramAssets.load(PROJECT)
    seen: dict[str, Path] = {}

    def keep(name: str, text: str) -> None:
        if text not in seen:
            path = tmp_path / f"{len(seen):03d}-{name}"
            path.write_text(text)
            seen[text] = path

    for sample in SAMPLES:
        fleet = load_fleet(ROOT / "inventory" / f"{sample}.yaml")
        inventory = render_ansible_inventory(fleet, PROJECT)
        plans = plan_fleet(fleet, PROJECT, inventory)
        for box, plan in plans.items():
            for rendered in plan.files:
                if rendered.content.startswith("#!/bin/sh"):
                    keep(rendered.dest.rsplit("/", 1)[-1], rendered.content)
            variables = box_variables(inventory, box)
            direct = [s.name for s in CATALOGUE
                      if s.name in plan.fingerprints and direct_capable(s.name, variables)]
            program = build_program(plan, direct, variables, assets=assets,
                                    fingerprints_document=fingerprints_document(
                                        plan.fingerprints), state_file=FINGERPRINTS)
            keep("direct-program", "#!/bin/sh\n" + program.script)
    return list(seen.values())


@needs_shellcheck
def test_every_rendered_script_and_direct_program_passes_shellcheck(tmp_path: Path) -> None:
    scripts = rendered_scripts(tmp_path)
    names = {p.name.split("-", 1)[1] for p in scripts}
    # The dna services' start scripts (generated: dnabox.plan.dna_container), one per
    # long-running service of the sample fleets.
    starts = {n for n in names if n.endswith(".start")}
    assert {"trainer-speed.start", "inference-speed-edge-a.start"} <= starts
    assert names - starts == {"dnabox-base-apply", "dnabox-containerd-apply",
                              "dnabox-ovs-apply", "dnabox-dna-apply",
                              "dnabox-dna-services-apply", "dnabox-daemon", "direct-program"}
    assert shellcheck(scripts) == ""
