"""The CLI contract (docs/CLI.md), checked over every command of the Typer app: a command
added later meets it or this test names it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from dnabox import __version__
from dnabox.cli.app import app
from dnabox.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "inventory" / "lab.yaml"
SCHEMA = json.loads((ROOT / "docs" / "json" / "dnabox-v1.schema.json").read_text())
CLI_DOC = (ROOT / "docs" / "CLI.md").read_text()
SELECTORS = ("--box", "--site", "--tier", "--cluster", "--limit")
# Commands that touch boxes take every selector; every other command says why it does not.
SELECTING = {"plan", "up", "status", "drift", "exec", "bootstrap", "runbook run", "unlock"}
NOT_SELECTING = {
    "inventory validate": "reads the file only",
    "inventory show": "reads the file only",
    "inventory graph": "draws the whole fleet",
    "lab up": "builds the lab of the whole fleet",
    "lab down": "removes the lab of the whole fleet",
    "lab status": "lists the lab of the whole fleet",
    "lab replace": "names the boxes to swap with --box",
    "lab freeze": "names the lab boxes to freeze with --box",
    "lab thaw": "names the lab boxes to thaw with --box",
    "lab ssh": "one box, by name",
    "lab cache": "caches the Debian releases the whole fleet runs",
    "stack config": "stacks are per cluster: --cluster",
    "stack preview": "stacks are per cluster: --cluster",
    "stack up": "stacks are per cluster: --cluster",
    "stack destroy": "stacks are per cluster: --cluster",
    "runbook list": "no fleet",
    "runbook show": "no fleet",
    "demo": "the whole lab fleet",
    "bundle build": "packages for the whole fleet",
    "agent status": "the fleet's agent",
    "agent stop": "the fleet's agent",
    "ssh": "one box, by name",
    "kubeconfig": "one cluster, by name",
    "locations": "no boxes",
    "init": "writes files only",
    "view": "shows the whole fleet",
    "dna status": "reads the D-N-A hub",
    "dna publish": "one producing box, by name (--box)",
    "dna train": "one model's trainer, by name (--model)",
    "dna predict": "one edge site's inference server (--site, --model)",
    "lab partition": "one lab site, by name (--site)",
    "lab heal": "one lab site, by name (--site)",
}
# Commands that read no fleet (everything else takes -i/--inventory).
NO_FLEET = {"runbook list", "runbook show", "init"}
# One meaning per short flag, and none that means something else to an Ansible user
# (-b become, -t tags, -s sudo, -u user, -k/-K passwords, -C check, -e extra vars, ...).
SHORT_FLAGS = {"-h": {"--help"}, "-i": {"--inventory"}, "-l": {"--limit"},
               "-c": {"--cluster"}, "-f": {"--forks"}, "-o": {"--output", "--out"},
               "-p": {"--parallel"}, "-v": {"--verbose"}, "-q": {"--quiet"},
               "-y": {"--yes"}}
# Arguments a command needs before it reads the inventory.
REQUIRED_ARGS = {"exec": ["--", "true"], "runbook run": ["drain"], "kubeconfig": ["-c", "core"],
                 "stack up": ["--yes"], "stack destroy": ["--yes"], "unlock": ["--yes"],
                 "dna publish": ["--box", "end-a-1", "--count", "1"],
                 "dna train": ["--model", "speed"],
                 "dna predict": ["--model", "speed", "--site", "edge-a"],
                 "lab partition": ["--site", "edge-a"], "lab heal": ["--site", "edge-a"]}


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield " ".join(path), command
        return
    for name, sub in sorted(subcommands.items()):
        yield from walk(sub, (*path, name))


ROOT_COMMAND = typer.main.get_command(app)
COMMANDS = dict(walk(ROOT_COMMAND))
runner = CliRunner()


def options(command: Any) -> dict[str, Any]:
    return {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}


def test_the_walk_sees_every_command() -> None:
    assert {"up", "plan", "stack config", "runbook run", "ssh", "kubeconfig"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_classified_and_documented(name: str) -> None:
    assert (name in SELECTING) != (name in NOT_SELECTING), (
        f"`dnabox {name}`: add it to SELECTING (it touches boxes) or NOT_SELECTING (why not)")
    assert f"`dnabox {name}`" in CLI_DOC, f"docs/CLI.md does not describe `dnabox {name}`"


@pytest.mark.parametrize("name", sorted(SELECTING))
def test_box_commands_take_the_same_selectors(name: str) -> None:
    found = options(COMMANDS[name])
    for selector in SELECTORS:
        assert selector in found, f"`dnabox {name}` lacks {selector}"
        param = found[selector]
        assert param.multiple == (selector != "--limit"), f"{name} {selector} repeatable"
        assert param.help == options(COMMANDS["up"])[selector].help, "one wording everywhere"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_fleet_is_always_dash_i_with_its_variable(name: str) -> None:
    found = options(COMMANDS[name])
    if name in NO_FLEET:
        assert "--inventory" not in found
        return
    param = found.get("--inventory")
    assert param is not None, f"`dnabox {name}` must take -i/--inventory"
    assert set(param.opts) == {"-i", "--inventory"} and param.envvar == "DNABOX_INVENTORY"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_short_flags_mean_one_thing_everywhere(name: str) -> None:
    for param in COMMANDS[name].params:
        shorts = [o for o in (*param.opts, *param.secondary_opts) if re.fullmatch(r"-\w", o)]
        longs = {o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")}
        for short in shorts:
            assert short in SHORT_FLAGS, f"`dnabox {name}` {short}: not an agreed short flag"
            assert longs & SHORT_FLAGS[short], f"`dnabox {name}` {short} means {longs}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_ends_with_the_exit_code_table(name: str) -> None:
    result = runner.invoke(app, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {meaning}" in text, f"`dnabox {name} --help` lacks exit code {code}"


def test_docs_carry_the_same_exit_code_table() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", CLI_DOC, re.M))
    assert {int(code): meaning for code, meaning in rows.items()} == EXIT_CODES


def document(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, f"one JSON document expected on stdout, got: {output!r}"
    value: dict[str, Any] = json.loads(lines[0])
    jsonschema.validate(value, SCHEMA)
    return value


def test_every_json_command_is_in_the_published_schema() -> None:
    published = set(SCHEMA["properties"]["command"]["enum"])
    for name, command in COMMANDS.items():
        if "--json" in options(command):
            assert name.replace(" ", ".") in published, (
                f"`dnabox {name} --json`: describe it in docs/json/dnabox-v1.schema.json")


JSON_FAILING = sorted(n for n, c in COMMANDS.items()
                      if "--json" in options(c) and "--inventory" in options(c))


@pytest.mark.parametrize("name", JSON_FAILING)
def test_errors_under_json_are_one_json_document_on_stdout(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    args = [*name.split(), *REQUIRED_ARGS.get(name, []), "-i", str(missing), "--json"]
    if "--" in args:  # options before the command's own `--`
        cut = args.index("--")
        args = [*args[:cut], *args[cut + 2:], "--", *args[cut + 1:cut + 2]]
    result = runner.invoke(app, args, env={"PATH": str(tmp_path)})
    assert result.exit_code in EXIT_CODES and result.exit_code != 0, result.output
    value = document(result.stdout)
    assert value["schema"] == "dnabox/v1" and value["command"] == name.replace(" ", ".")
    assert value["ok"] is False and value["error"]["exit_code"] == result.exit_code


@pytest.mark.parametrize("args", [
    ["inventory", "validate", str(LAB), "--json"],
    ["inventory", "show", "-i", str(LAB), "--json"],
    ["runbook", "list", "--json"],
    ["locations", "-i", str(LAB), "--json"],
])
def test_json_output_follows_the_published_schema(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    value = document(result.stdout)
    assert value["command"] == ".".join(a for a in args[:2] if not a.startswith(("-", "/")))


def test_stack_config_json_follows_the_schema(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stack", "config", "-i", str(LAB), "-o", str(tmp_path),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert set(document(result.stdout)["files"]) == {"Pulumi.lab-core.yaml",
                                                     "Pulumi.lab-edge.yaml"}


def test_version_and_global_verbosity() -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"dnabox {__version__}\n")
    for flag in ("-q", "-v", "-vv", "--quiet", "--verbose"):
        assert runner.invoke(app, [flag, "runbook", "list"]).exit_code == 0, flag


def test_the_inventory_variable_sets_the_default(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inventory", "validate", "--json"],
                           env={"DNABOX_INVENTORY": str(LAB)})
    assert result.exit_code == 0, result.output
    assert document(result.stdout)["file"] == str(LAB)


def test_selectors_take_globs_and_ansible_patterns() -> None:
    from dnabox.inventory import load_fleet
    from dnabox.plan.selection import NoMatch, Selection, select

    fleet = load_fleet(ROOT / "inventory" / "smartx-playground.yaml")

    def names(**given: Any) -> list[str]:
        return [b.name for b in select(fleet, Selection(**given))]

    assert names(boxes=("edge-*-1",)) == ["edge-kaist-1", "edge-postech-1", "edge-jnu-1"]
    assert names(clusters=("edge-jnu",)) == ["edge-jnu-1", "edge-jnu-2"]
    assert names(tiers=("e*",), sites=("jnu-*",)) == ["edge-jnu-1", "edge-jnu-2"]
    assert names(limit="tier_end:!end-gist-pi-1") == ["end-gist-nuc-1", "end-gist-nuc-2"]
    assert names(limit="tier_edge:&role_control_plane") == [
        "edge-kaist-1", "edge-postech-1", "edge-jnu-1"]
    assert names(limit="~^core-gist-[12]$") == ["core-gist-1", "core-gist-2"]
    assert names(limit="!tier_edge:!tier_core") == [
        "end-gist-nuc-1", "end-gist-nuc-2", "end-gist-pi-1"]
    with pytest.raises(NoMatch, match="--cluster mars"):
        names(clusters=("mars",))
    with pytest.raises(NoMatch, match="--limit: nope matches no box"):
        names(limit="nope")


def test_ssh_is_strict_and_uses_the_inventory() -> None:
    result = runner.invoke(app, ["ssh", "-i", str(LAB), "core-1", "--print", "--", "uptime"])
    assert result.exit_code == 0, result.output
    argv = result.stdout.split()
    assert argv[:3] == ["ssh", "-F", "/dev/null"]
    assert "StrictHostKeyChecking=yes" in argv and argv[-2:] == ["10.201.1.11", "uptime"]
    assert runner.invoke(app, ["ssh", "-i", str(LAB), "nope-9"]).exit_code == 2


def test_the_checked_in_output_schema_is_generated() -> None:
    from dnabox.cli.output_schema import generate

    assert (ROOT / "docs" / "json" / "dnabox-v1.schema.json").read_text() == generate(), (
        "stale: python -m dnabox.cli.output_schema > docs/json/dnabox-v1.schema.json")


@pytest.mark.parametrize(("verbosity", "shown"), [
    (-1, {"edge-1: ovs: apply failed"}),
    (0, {"edge-1: ovs: apply failed", "edge-1: state forgotten"}),
    (1, {"edge-1: ovs: apply failed", "edge-1: state forgotten", "edge-1: base: packages"}),
])
def test_quiet_and_verbose_decide_what_progress_prints(verbosity: int, shown: set[str]) -> None:
    from io import StringIO

    from rich.console import Console

    from dnabox.cli.progress import SiteProgress
    from dnabox.provision.events import Event

    buffer = StringIO()
    with SiteProgress(Console(file=buffer, width=200), verbosity) as progress:
        progress(Event("box", "info", box="edge-1", message="state forgotten"))
        progress(Event("task", "info", box="edge-1", message="base: packages"))
        progress(Event("task", "failed", box="edge-1", message="ovs: apply failed"))
    lines = {line.strip() for line in buffer.getvalue().splitlines() if "edge-1:" in line}
    assert lines == shown
