"""Hostile fleet files: the reader refuses them quickly, with a line, and leaks nothing.

One section per class of hostile input (issue 12, part 2): unbounded expansion and
nesting, bytes that are not UTF-8 text, merge keys, redaction of secrets in errors,
path fields, syntax errors far from their cause, and `validate --json` on a bad file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dnabox.cli.app import app
from dnabox.errors import InventoryError, Problem
from dnabox.inventory import load_fleet
from dnabox.inventory.file_text import MAX_BYTES
from dnabox.inventory.loader import MAX_PROBLEMS
from dnabox.inventory.yaml_bounds import MAX_DEPTH
from dnabox.redact import PREFIX, shown

runner = CliRunner()

# A small valid fleet the cases below extend; `{extra}` is appended at the top level.
VALID = """\
name: t
sites:
  - {name: core, tier: core}
  - {name: edge, tier: edge}
boxes:
  - {name: core-1, site: core, address: 10.10.1.11}
  - {name: edge-1, site: edge, address: 10.10.2.11}
"""

# Generous bounds for refusing a hostile file: the real cost is milliseconds and a few MB.
SECONDS = 1.0
MEGABYTES = 200


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(InventoryError) as caught:
        load_fleet(path)
    return caught.value.problems


def write(tmp_path: Path, text: str | bytes, name: str = "fleet.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def line_with(text: str, fragment: str) -> int:
    [line] = [n for n, t in enumerate(text.splitlines(), 1) if fragment in t]
    return line


# --- 1. YAML that expands or nests without bound -------------------------------------

def _laughs(levels: int, width: int) -> str:
    """The billion laughs: each level an anchored list of `width` aliases of the last."""
    lines = ['x-l0: &l0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return VALID + "\n".join(lines) + "\n"


def _merge_bomb() -> str:
    keys = ", ".join(f"k{i}: {i}" for i in range(50))
    lines = [f"x-m0: &m0 {{{keys}}}"]
    for i in range(1, 6):
        merged = ", ".join(f"*m{i - 1}" for _ in range(10))
        lines.append(f"x-m{i}: &m{i} {{<<: [{merged}], own{i}: [{merged}]}}")
    return VALID + "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Unbounded:
    id: str
    text: str
    field: str
    fragment: str
    marker: str  # the start of the line the problem must be reported at


UNBOUNDED = [
    Unbounded("billion-laughs", _laughs(9, 9), "(aliases)", "at most 100,000 are read",
              "x-l6: &l6"),
    Unbounded("quadratic-blowup",
              VALID + 'x-text: &t "' + "x" * 20_000 + '"\nx-copies: ['
              + ", ".join(["*t"] * 1000) + "]\n",
              "(aliases)", "characters of text", "x-copies:"),
    Unbounded("merge-key-bomb", _merge_bomb(), "(aliases)", "at most 100,000 are read",
              "x-m3: &m3"),
    Unbounded("self-referencing-list", VALID + "x-loop: &loop [a, [b, *loop]]\n",
              "(aliases)", "alias *loop is used inside the value it names", "x-loop:"),
    Unbounded("self-referencing-mapping", VALID + "x-loop: &me\n  child:\n    again: *me\n",
              "(aliases)", "alias *me is used inside the value it names", "    again: *me"),
    Unbounded("self-merging-mapping", VALID + "x-loop: &me {a: 1, b: {<<: *me}}\n",
              "(aliases)", "alias *me is used inside", "x-loop:"),
    Unbounded("alias-chain-depth",
              VALID + "x-c0: &c0 [end]\n" + "".join(f"x-c{i}: &c{i} [*c{i - 1}]\n"
                                                     for i in range(1, 200)),
              # c0 is a list holding a text (2 levels), each next list one more.
              "(nesting)", f"more than {MAX_DEPTH} levels deep", f"x-c{MAX_DEPTH - 1}: "),
    Unbounded("nested-brackets", VALID + "x-deep: " + "[" * 10_000 + "]" * 10_000 + "\n",
              "(nesting)", f"more than {MAX_DEPTH} levels deep", "x-deep:"),
    Unbounded("nested-braces", VALID + "x-deep: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
              "(nesting)", f"more than {MAX_DEPTH} levels deep", "x-deep:"),
    Unbounded("nested-block-lists", VALID + "x-deep:\n" + "".join(
        "  " * i + "-\n" for i in range(1000)) + "  " * 1000 + "- x\n",
              # The document is level 1, x-deep's list 2: the list at indent 63 is too deep.
              "(nesting)", f"more than {MAX_DEPTH} levels deep",
              "  " * (MAX_DEPTH - 1) + "-\n"),
]


@pytest.mark.parametrize("case", UNBOUNDED, ids=[c.id for c in UNBOUNDED])
def test_unbounded_yaml_is_refused_fast_and_small_with_its_line(
    case: Unbounded, tmp_path: Path
) -> None:
    path = write(tmp_path, case.text)
    tracemalloc.start()
    started = time.process_time()
    try:
        problems = problems_of(path)
    finally:
        seconds = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < SECONDS, f"took {seconds:.2f} s of CPU"
    assert peak < MEGABYTES * 2**20, f"peak {peak / 2**20:.0f} MB"
    [problem] = problems
    assert (problem.field, problem.file) == (case.field, str(path))
    assert case.fragment in problem.message
    expected = [n for n, t in enumerate(case.text.splitlines(keepends=True), 1)
                if t.startswith(case.marker)]
    assert problem.line == expected[0], problem


def _this_checkout(repo_root: Path) -> dict[str, str]:
    """The environment for a child Python that imports this checkout's dnabox."""
    return {**os.environ, "PYTHONPATH": str(repo_root / "src")}


def test_a_billion_laughs_costs_a_process_little_memory(tmp_path: Path, repo_root: Path) -> None:
    """The whole process, measured by the kernel: the refusal must not expand the bomb.
    A cap on the child's address space makes a regression fail instead of swapping."""
    path = write(tmp_path, _laughs(10, 10))
    cap = 2 * 2**30
    script = ("import resource, sys\n"
              f"resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))\n"
              "from dnabox.errors import InventoryError\n"
              "from dnabox.inventory import load_fleet\n"
              "try:\n    load_fleet(sys.argv[1])\nexcept InventoryError as e:\n"
              "    print(e.problems[0].field)\n")
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE,
                             text=True, env=_this_checkout(repo_root))
    _, status, usage = os.wait4(child.pid, 0)
    output = child.stdout.read() if child.stdout else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, output
    assert output.strip() == "(aliases)"
    assert usage.ru_maxrss < MEGABYTES * 1024, f"{usage.ru_maxrss // 1024} MB"  # KB on Linux
    assert time.monotonic() - started < 60


def test_templates_within_bounds_still_load(tmp_path: Path) -> None:
    """The bound counts values after expansion, so 300 boxes sharing a template load."""
    boxes = "".join(f"  - {{<<: *box, name: edge-{i}, address: 10.10.{2 + i // 250}."
                    f"{1 + i % 250}}}\n" for i in range(300))
    text = ("name: t\nx-box: &box {site: edge, size: small, ssh: {user: ops, port: 2222}}\n"
            "sites: [{name: edge, tier: edge}]\nboxes:\n" + boxes)
    fleet = load_fleet(write(tmp_path, text))
    assert len(fleet.boxes) == 300
    assert {(b.size, b.ssh.user) for b in fleet.boxes} == {("small", "ops")}


def test_a_flood_of_problems_is_cut_to_the_first_ones(tmp_path: Path) -> None:
    boxes = "".join(f"  - {{name: b{i}, site: nowhere, address: 10.10.0.{i % 250 + 1}}}\n"
                    for i in range(400))
    text = "name: t\nsites: [{name: s, tier: edge}]\nboxes:\n" + boxes
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].field == "(more)"
    assert "more problems" in problems[-1].message
    # 400 unknown sites and 150 duplicate addresses: the summary counts what was cut.
    assert problems[-1].message.startswith(f"{400 + 150 - MAX_PROBLEMS:,} more")
    # Hundreds of choices are summarised, not listed on every line.
    site = next(p for p in problems if p.field == "boxes[0].site")
    assert site.message == "unknown site 'nowhere'; valid: s"


# --- 2. Bytes that are not UTF-8 text --------------------------------------------------

@dataclass(frozen=True)
class Undecodable:
    id: str
    raw: bytes
    line: int
    fragment: str


UTF8 = VALID.encode()
UNDECODABLE = [
    Undecodable("latin-1", UTF8.replace(b"{name: edge, tier: edge}",
                                        b"{name: edge, tier: edge, region: K\xf6ln}"),
                4, "byte 0xF6 at column 39 is not UTF-8"),
    Undecodable("nul-byte", UTF8.replace(b"name: t\n", b"name: t\x00\n"), 1,
                "a NUL byte at column 8"),
    Undecodable("nul-later", UTF8.replace(b"core-1,", b"core\x00-1,"), 6, "a NUL byte"),
    Undecodable("utf-16-le-bom", VALID.encode("utf-16"), 1, "the file is UTF-16"),
    Undecodable("utf-16-be-bom", b"\xfe\xff" + VALID.encode("utf-16-be"), 1,
                "the file is UTF-16"),
    Undecodable("utf-16-no-bom", VALID.encode("utf-16-le"), 1, "UTF-16 without a byte-order"),
    Undecodable("utf-32", VALID.encode("utf-32"), 1, "the file is UTF-32"),
    Undecodable("control-character", UTF8.replace(b"tier: core}", b"tier: co\x07re}"), 3,
                "character U+0007 is a control character"),
    Undecodable("escape-sequence", UTF8.replace(b"core-1,", b"core-1\x1b[2J,"), 6,
                "character U+001B"),
]


@pytest.mark.parametrize("case", UNDECODABLE, ids=[c.id for c in UNDECODABLE])
def test_bytes_that_are_not_utf8_text_are_refused_at_their_line(
    case: Undecodable, tmp_path: Path
) -> None:
    [problem] = problems_of(write(tmp_path, case.raw))
    assert (problem.line, problem.field) == (case.line, "(encoding)"), problem
    assert case.fragment in problem.message


@pytest.mark.parametrize("escape,code", [("\\e[2J", "001B"), ("\\x9b2J", "009B"),
                                         ("\\0", "0000"), ("\\b", "0008")])
def test_control_characters_written_as_escapes_are_refused(
    escape: str, code: str, tmp_path: Path
) -> None:
    """Raw control bytes are refused by YAML; its escapes can still produce them."""
    text = VALID.replace("tier: edge}", f'tier: edge, region: "kr{escape}"}}')
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.field) == (4, "sites[1].region")
    assert f"control character U+{code}" in problem.message
    assert "\x1b" not in str(problem)


def test_a_file_too_big_to_be_a_fleet_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, b"# padding\n" * (MAX_BYTES // 10 + 1))
    tracemalloc.start()
    try:
        [problem] = problems_of(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (problem.line, problem.field) == (0, "(file)")
    assert f"larger than {MAX_BYTES // 2**20} MiB" in problem.message
    assert peak < 3 * MAX_BYTES  # read once, never parsed


def test_a_utf8_byte_order_mark_is_read_and_lines_stay_right(tmp_path: Path) -> None:
    assert load_fleet(write(tmp_path, b"\xef\xbb\xbf" + UTF8)).name == "t"
    bad = b"\xef\xbb\xbf" + UTF8.replace(b"tier: edge}", b"tier: far}")
    [problem] = problems_of(write(tmp_path, bad, "bad.yaml"))
    assert (problem.line, problem.field) == (4, "sites[1].tier")


# Every command that loads a fleet, with the file in the place of `F`.
COMMANDS = [
    ["inventory", "validate", "F"],
    ["inventory", "validate", "F", "--json"],
    ["inventory", "show", "F"],
    ["inventory", "show", "F", "--json"],
    ["inventory", "graph", "F", "-o", "out.dot"],
    ["plan", "-i", "F"],
    ["up", "-i", "F"],
    ["status", "-i", "F"],
    ["drift", "-i", "F"],
    ["exec", "-i", "F", "--", "true"],
    ["bootstrap", "-i", "F"],
    ["stack", "config", "-i", "F"],
    ["bundle", "build", "-i", "F"],
    ["runbook", "run", "drain", "-i", "F"],
    ["lab", "status", "-i", "F"],
    ["view", "-i", "F", "--offline"],
]
HOSTILE_FILES = {"latin-1": UNDECODABLE[0].raw, "utf-16": VALID.encode("utf-16"),
                 "bomb": _laughs(9, 9).encode()}


@pytest.mark.parametrize("kind", HOSTILE_FILES)
@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_every_command_that_loads_a_fleet_reports_hostile_bytes(
    command: list[str], kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing a command might write lands in the repository
    path = write(tmp_path, HOSTILE_FILES[kind])
    args = [str(path) if a == "F" else a for a in command]
    result = runner.invoke(app, args)
    assert result.exit_code == 4, result.output  # invalid inventory (docs/CLI.md)
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"{path}:" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.dot").exists()


def test_exec_reports_hostile_bytes_through_the_fast_path_entry(
    tmp_path: Path, repo_root: Path
) -> None:
    """`dnabox exec` first tries the agent without the full CLI; it must fall back cleanly."""
    path = write(tmp_path, HOSTILE_FILES["utf-16"])
    result = subprocess.run([sys.executable, "-m", "dnabox", "exec", "-i", str(path), "--",
                             "true"], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120, check=False, env=_this_checkout(repo_root))
    assert result.returncode == 4, result.stderr  # invalid inventory (docs/CLI.md)
    assert f"{path}:1: (encoding): the file is UTF-16" in result.stderr
    assert "Traceback" not in result.stderr


# --- 3. Merge keys ---------------------------------------------------------------------

MERGED = """\
name: t
x-templates:
  edge: &edge
    site: edge
    size: small
    ssh: {user: ops}
  big: &big
    size: large
    smartx_type: Type-B
sites:
  - {name: edge, tier: edge}
boxes:
  - <<: *edge
    name: edge-1
    address: 10.10.2.11
  - <<: *edge
    name: edge-2
    size: medium
    address: 10.10.2.12
  - <<: [*big, *edge]
    name: edge-3
    address: 10.10.2.13
  - {<<: *edge, name: edge-4, address: 10.10.2.14}
"""


def test_merge_keys_give_templates_with_overrides(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, MERGED))
    got = {b.name: (b.site, b.size, b.ssh.user, b.smartx_type) for b in fleet.boxes}
    assert got == {
        "edge-1": ("edge", "small", "ops", None),
        "edge-2": ("edge", "medium", "ops", None),
        "edge-3": ("edge", "large", "ops", "Type-B"),
        "edge-4": ("edge", "small", "ops", None),
    }


def test_an_error_in_an_overriding_key_names_the_overriding_line(tmp_path: Path) -> None:
    text = MERGED.replace("    size: medium\n", "    size: huge\n")
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.field) == (line_with(text, "size: huge"), "boxes[1].size")
    assert "(got 'huge')" in problem.message


def test_an_error_in_a_merged_value_names_the_template_line(tmp_path: Path) -> None:
    text = MERGED.replace("    ssh: {user: ops}\n", "    ssh: {user: ops, port: 0}\n")
    problems = problems_of(write(tmp_path, text))
    # Every box that merges the template inherits the bad port, from the template's line.
    assert {p.field for p in problems} == {f"boxes[{i}].ssh.port" for i in range(4)}
    assert {p.line for p in problems} == {line_with(text, "port: 0")}


def test_a_key_written_twice_is_still_a_duplicate_next_to_a_merge(tmp_path: Path) -> None:
    text = MERGED.replace("    name: edge-1\n", "    name: edge-1\n    name: edge-9\n")
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.field) == (line_with(text, "edge-9"), "boxes[0].name")
    assert "duplicate key" in problem.message


def test_only_top_level_x_keys_are_free_for_templates(tmp_path: Path) -> None:
    text = MERGED.replace("    name: edge-1\n", "    name: edge-1\n    x-note: mine\n")
    [problem] = problems_of(write(tmp_path, text))
    assert problem.field == "boxes[0].x-note"
    assert "unknown key 'x-note'" in problem.message


# --- 4. Errors never echo secrets or long values ---------------------------------------

PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBLyc1n5V0dQhL2cXw1Dk9zM2Q5K8V1vS0xVbYw1cN2eAAAAJgq0m1aKtJt\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEvJzWflXR1CEvZxfDUOT3MzZDkrxXW9LTFVtjDVw3Z4 "
              "op@laptop")
TOKEN = "ghp_R7t2Kq9XbV4mLw8Zp1Yc6Hn3Jd5Fs0Ga2Ue"
BLOB = "QyNTUxOQAAACBLyc1n5V0dQhL2cXw1Dk9zM2Q5K8V1vS0xVbYw1cN2eAAAAJgq0m1aKtJt"
HEX = "3f1c9a7be2d44e0f8b6a5c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7"
SECRETS = {"PEM": PRIVATE_KEY, "OpenSSH": PUBLIC_KEY, "token": TOKEN, "base64": BLOB, "hex": HEX}
KINDS = {"PEM": "PEM block 'OPENSSH PRIVATE KEY'", "OpenSSH": "OpenSSH key (ssh-ed25519)",
         "token": "token-like string", "base64": "token-like string", "hex": "long hex string"}


@pytest.mark.parametrize("kind", SECRETS)
def test_shown_gives_the_kind_and_length_of_a_secret(kind: str) -> None:
    secret = SECRETS[kind]
    assert shown(secret) == f"<{KINDS[kind]}, {len(secret)} characters>"
    assert shown(f"prefix {secret} suffix") == f"<{KINDS[kind]}, {len(secret) + 14} characters>"


def test_shown_cuts_long_values_to_a_short_prefix() -> None:
    value = "the quick brown fox jumps over the lazy dog " * 10
    assert shown(value) == f"{value[:PREFIX]!r}... ({len(value)} characters)"
    assert shown("edge-a-1") == "'edge-a-1'"
    assert shown(True) == "True"
    assert shown("a\x1b[2Jb", quote=False) == "'a\\x1b[2Jb'"  # no terminal escapes


def _leaks(secret: str, text: str) -> bool:
    """Whether any 12 consecutive characters of the secret's body appear in ``text``."""
    body = "".join(line for line in secret.splitlines() if "-----" not in line)
    body = body.replace(" ", "")
    return any(body[i:i + 12] in text.replace(" ", "") for i in range(len(body) - 11))


def _placed(secret: str) -> list[tuple[str, str]]:
    """Fleets with ``secret`` in places that produce an error, each with the error's field."""
    quoted = json.dumps(secret)  # a YAML double-quoted scalar
    return [
        (VALID.replace("tier: edge}", f"tier: {quoted}}}"), "sites[1].tier"),
        (VALID.replace("address: 10.10.1.11", f"address: {quoted}"), "boxes[0].address"),
        (VALID.replace("{name: core-1,", f"{{name: {quoted},"), "boxes[0].name"),
        (VALID + f"clusters: [{{name: c, control_planes: [{quoted}]}}]\n",
         "clusters[0].control_planes[0]"),
        (VALID + f"{quoted}: 1\n", "(unknown key)"),
    ]


@pytest.mark.parametrize("kind", ["OpenSSH", "token", "base64", "hex"])
def test_no_error_path_echoes_a_secret(kind: str, tmp_path: Path) -> None:
    secret = SECRETS[kind]
    for index, (text, field) in enumerate(_placed(secret)):
        path = write(tmp_path, text, f"f{index}.yaml")
        problems = problems_of(path)
        listing = "\n".join(map(str, problems))
        assert not _leaks(secret, listing), listing
        assert f"{len(secret)} characters" in listing, listing
        if field != "(unknown key)":
            assert field in {p.field for p in problems}, listing
        for args in (["inventory", "validate", str(path), "--json"],
                     ["inventory", "show", str(path)]):
            result = runner.invoke(app, args)
            assert result.exit_code == 4
            assert not _leaks(secret, result.stdout + result.stderr), result.output


def test_a_syntax_error_never_echoes_a_secret_tag(tmp_path: Path) -> None:
    text = VALID.replace("tier: edge}", f"tier: !{TOKEN}{TOKEN} edge}}")
    [problem] = problems_of(write(tmp_path, text))
    assert not _leaks(TOKEN, str(problem)), problem
    assert problem.line == 4


def test_a_long_bad_value_shows_only_a_prefix(tmp_path: Path) -> None:
    value = "medium-but-written-by-someone-who-never-stops-typing-" * 20
    [problem] = problems_of(write(tmp_path, VALID.replace(
        "address: 10.10.2.11}", f"address: 10.10.2.11, size: {value}}}")))
    assert value[:PREFIX] in problem.message
    assert value[:PREFIX + 1] not in problem.message
    assert f"({len(value)} characters)" in problem.message


def test_inventory_errors_show_values_only_through_the_redaction_function(
    repo_root: Path
) -> None:
    """One home for redaction: no message in the reader formats a value with !r or repr()."""
    offenders = []
    for source in sorted((repo_root / "src/dnabox/inventory").glob("*.py")):
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if ("!r}" in line and "close[0]!r" not in line) or "repr(" in line:
                offenders.append(f"{source.name}:{number}: {line.strip()}")
    assert offenders == []


# --- 5. Paths are paths, never the key itself -------------------------------------------

@pytest.mark.parametrize("field,setting", [
    ("defaults.ssh.key", "defaults:\n  ssh:\n    key: {value}\n"),
    ("defaults.ssh.known_hosts", "defaults:\n  ssh:\n    known_hosts: {value}\n"),
    ("artifacts.bundle_dir", "artifacts:\n  bundle_dir: {value}\n"),
])
@pytest.mark.parametrize("kind", ["OpenSSH", "base64"])
def test_key_material_in_a_path_field_is_refused(
    field: str, setting: str, kind: str, tmp_path: Path
) -> None:
    text = VALID + setting.format(value=json.dumps(SECRETS[kind]))
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.field, problem.line) == (field, len(text.splitlines()))
    assert "never the key itself" in problem.message
    assert not _leaks(SECRETS[kind], str(problem))


def test_key_material_in_a_box_ssh_key_is_refused(tmp_path: Path) -> None:
    text = VALID.replace("address: 10.10.2.11}",
                         f"address: 10.10.2.11, ssh: {{key: {json.dumps(PUBLIC_KEY)}}}}}")
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.field, problem.line) == ("boxes[1].ssh.key", 7)
    assert "must be the path to a private key file, never the key itself" in problem.message


@pytest.mark.parametrize("where", ["key", "description"])
def test_a_private_key_anywhere_is_refused_without_echo(where: str, tmp_path: Path) -> None:
    block = textwrap.indent(PRIVATE_KEY, "      ")
    setting = (f"defaults:\n  ssh:\n    key: |\n{block}" if where == "key"
               else f"description: |\n{textwrap.indent(PRIVATE_KEY, '  ')}")
    text = VALID + setting
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == line_with(text, ": |")
    assert "a private key" in problem.message
    assert "give that file's path" in problem.message
    assert not _leaks(PRIVATE_KEY, str(problem))
    assert "PRIVATE KEY'," in problem.message  # its kind and length, never its body


def test_relative_paths_resolve_against_the_fleet_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    fleet_dir = tmp_path / "fleets" / "prod"
    fleet_dir.mkdir(parents=True)
    (fleet_dir / "keys").mkdir()
    (fleet_dir / "keys" / "id_ed25519").write_text("not read\n")
    text = VALID.replace("address: 10.10.2.11}",
                         "address: 10.10.2.11, ssh: {known_hosts: /etc/ssh/known}}") + (
        "defaults:\n  ssh: {key: keys/id_ed25519, known_hosts: ~/.ssh/known_hosts}\n"
        "artifacts: {source: offline, bundle_dir: ../bundle}\n")
    path = write(fleet_dir, text)
    monkeypatch.chdir(tmp_path)  # not the fleet's directory: the working directory is no base
    fleet = load_fleet(Path("fleets/prod/fleet.yaml"))
    assert fleet.defaults.ssh.key == str(fleet_dir / "keys" / "id_ed25519")
    assert fleet.defaults.ssh.known_hosts == str(home / ".ssh" / "known_hosts")
    assert fleet.artifacts.bundle_dir == str(tmp_path / "fleets" / "bundle")
    assert fleet.boxes[1].ssh.known_hosts == "/etc/ssh/known"
    assert fleet.ssh_for(fleet.boxes[0]).key == str(fleet_dir / "keys" / "id_ed25519")

    shown_json = json.loads(runner.invoke(app, ["inventory", "show", str(path), "--json"]).stdout)
    assert shown_json["defaults"]["ssh"]["key"] == str(fleet_dir / "keys" / "id_ed25519")
    result = runner.invoke(app, ["inventory", "show", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
            for line in result.stdout.splitlines() if line.count("│") == 4}
    assert rows["defaults.ssh.key"] == [str(fleet_dir / "keys" / "id_ed25519"), "found"]
    assert rows["artifacts.bundle_dir"] == [str(tmp_path / "fleets" / "bundle"), "missing"]
    assert rows["boxes[1].ssh.known_hosts"] == ["/etc/ssh/known", "missing"]


# --- 6. Syntax errors at the line of their cause ------------------------------------------

def test_an_unclosed_quote_names_its_line_and_where_the_parser_stopped(tmp_path: Path) -> None:
    text = VALID.replace("tier: core}", 'tier: core, region: "kr-daejeon}') + (
        '  - {name: end-1, site: edge, address: 10.10.2.12, smartx_type: "Type-A"}\n')
    [problem] = problems_of(write(tmp_path, text))
    opened, stopped = line_with(text, "kr-daejeon"), line_with(text, "Type-A")
    assert (problem.line, problem.field) == (opened, "(syntax)")
    assert stopped - opened >= 4  # far apart: the point of naming both
    assert f"runs on to line {stopped}, where the parser stopped" in problem.message
    assert "closing quote" in problem.message


def test_an_unclosed_quote_at_the_end_names_its_opening_line(tmp_path: Path) -> None:
    text = VALID + "description: 'never closed\n"
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == line_with(text, "never closed")
    assert "the end of the file" in problem.message


def test_an_unclosed_bracket_names_the_error_and_the_opening_line(tmp_path: Path) -> None:
    text = VALID.replace("{name: core, tier: core}", "{name: core, tier: core")
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == line_with(text, "name: edge, tier")
    assert f"that starts on line {line_with(text, 'name: core, tier')}" in problem.message


def test_a_syntax_error_before_endless_brackets_is_reported_fast(tmp_path: Path) -> None:
    """The line is found by scanning the file again; that scan is bounded like the parse
    (PyYAML reads brackets ahead: unbounded, 20,000 of them take seconds)."""
    text = VALID + " bad: " + "[" * 20_000 + "\n"
    started = time.process_time()
    [problem] = problems_of(write(tmp_path, text))
    assert time.process_time() - started < SECONDS
    assert (problem.line, problem.field) == (8, "(syntax)")


def test_a_language_specific_tag_is_refused_by_name(tmp_path: Path) -> None:
    text = VALID.replace("name: t\n", 'name: !!python/object/apply:os.system ["true"]\n')
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.field) == (1, "(syntax)")
    assert "'!!python/object/apply:os.system'" in problem.message
    assert "plain YAML values only" in problem.message


def test_a_plain_syntax_error_is_at_its_own_line(tmp_path: Path) -> None:
    text = VALID.replace("boxes:\n", "boxes: oops: here\n")
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.field) == (5, "(syntax)")
    assert "mapping values are not allowed here" in problem.message


@pytest.mark.parametrize("value,fragment", [
    ("2024-13-45", "as a date or time"),
    ("1" + "0" * 5000, "as a number"),
])
def test_a_value_yaml_cannot_convert_is_reported_at_its_line(
    value: str, fragment: str, tmp_path: Path
) -> None:
    [problem] = problems_of(write(tmp_path, VALID + f"description: {value}\n"))
    assert (problem.line, problem.field) == (8, "(value)")
    assert fragment in problem.message
    assert "quote it" in problem.message


# --- 7. validate --json on an invalid file ---------------------------------------------

@pytest.mark.parametrize("raw,line,field", [
    (VALID.replace("tier: edge}", "tier: far}").encode(), 4, "sites[1].tier"),
    (VALID.encode("utf-16"), 1, "(encoding)"),
    (_laughs(9, 9).encode(), line_with(_laughs(9, 9), "x-l6: &l6"), "(aliases)"),
])
def test_validate_json_prints_an_error_document(
    raw: bytes, line: int, field: str, tmp_path: Path
) -> None:
    path = write(tmp_path, raw)
    result = runner.invoke(app, ["inventory", "validate", str(path), "--json"])
    assert result.exit_code == 4
    document = json.loads(result.stdout)
    assert document["file"] == str(path)
    assert document["valid"] is False
    [problem] = document["problems"]
    assert problem == {"file": str(path), "line": line, "field": field,
                       "message": problem["message"]}
    assert problem["message"]
    assert f"{path}:{line}: {field}: " in result.stderr  # people still read stderr


# --- 8. What the file says is shown as written, never read as terminal markup ---------

def test_rich_markup_in_values_and_paths_is_shown_as_written(tmp_path: Path) -> None:
    folder = tmp_path / "[" / "b]"  # the path reads [/b]: a closing tag to Rich
    folder.mkdir(parents=True)
    text = VALID.replace("tier: edge}", 'tier: edge, region: "[/bold] [red]x[/red]"}') + (
        "defaults: {ssh: {key: '[old]/id'}}\n")
    path = write(folder, text)
    result = runner.invoke(app, ["inventory", "show", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "[/bold] [red]x[/red]" in result.stdout
    assert f"{folder}/[old]/id" in result.stdout
    result = runner.invoke(app, ["inventory", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"valid: {path} - ")
    out = folder / "[old].dot"
    result = runner.invoke(app, ["inventory", "graph", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
