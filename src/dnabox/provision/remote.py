"""What dnabox keeps on each box and reads back in one round trip.

``fingerprints.json`` in the on-box state dir (``dnabox.locations.ON_BOX_STATE_DIR``) holds
the fingerprint of every role that converged.
Preflight reads it, the box's facts and the hashes of every managed file with a single
command, so a converged box costs one round trip and nothing else.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dnabox.adapters.jobs import JobResult
from dnabox.errors import HostKeyMismatch, RemoteError
from dnabox.inventory.model import Fleet
from dnabox.inventory.platforms import RELEASES, architecture_of
from dnabox.locations import ON_BOX_STATE_DIR
from dnabox.plan.catalogue import role_spec
from dnabox.plan.desired import BoxPlan

if TYPE_CHECKING:
    from dnabox.adapters.ssh import BoxConnection

FINGERPRINTS = f"{ON_BOX_STATE_DIR}/fingerprints.json"
_MARK = "@@dnabox-section@@"


@dataclass(frozen=True)
class BoxFacts:
    hostname: str
    kernel: str
    arch: str
    cpus: int
    memory_kb: int
    os_id: str
    # VERSION_CODENAME of /etc/os-release (bookworm, trixie); '' when absent.
    os_codename: str = ""
    # `containerd --version` of the containerd the box runs; '' when none is installed.
    containerd: str = ""


@dataclass(frozen=True)
class BoxState:
    facts: BoxFacts
    fingerprints: dict[str, str]
    # sha256 of each managed file as it is on the box; missing files are absent.
    file_hashes: dict[str, str] = field(default_factory=dict)
    # Roles whose liveness probe failed (a daemon of theirs is not running).
    down: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RoleDecision:
    role: str
    reason: str  # new | changed | drifted | down | converged

    @property
    def needs_run(self) -> bool:
        return self.reason != "converged"


_DOWN = "@@dnabox-down "


def _probes(plan: BoxPlan) -> str:
    """Each planned role's liveness probe; a failing one prints its role."""
    checks = []
    for role in plan.roles:
        probe = role_spec(role.role).liveness
        if probe:
            checks.append(f"{{ {probe}; }} >/dev/null 2>&1 || echo '{_DOWN}{role.role}'; ")
    return "".join(checks)


# The box's facts with the shell's own builtins: every process here runs on every box of
# every preflight (a thousand boxes: thousands of forks on 2 cores), so only sha256sum and
# a containerd's --version (where one is installed) start one.
_FACTS = (
    'read -r h < /proc/sys/kernel/hostname; echo "$h"; '
    'read -r k < /proc/sys/kernel/osrelease; echo "$k"; '
    # /proc/sys/kernel/arch is Linux >= 6.1's `uname -m`.
    "{ read -r a < /proc/sys/kernel/arch; } 2>/dev/null || a=$(uname -m); echo \"$a\"; "
    # The online CPUs (`0-3,6`): what nproc counts, without starting it.
    "n=0; if read -r o < /sys/devices/system/cpu/online; then IFS=,; for r in $o; do "
    'case $r in *-*) n=$((n + ${r#*-} - ${r%-*} + 1));; ?*) n=$((n + 1));; esac; done; '
    "unset IFS; fi 2>/dev/null; echo \"$n\"; "
    'while read -r n v _; do [ "$n" = MemTotal: ] && echo "$v" && break; '
    "done < /proc/meminfo; "
    "ID= VERSION_CODENAME=; [ -r /etc/os-release ] && . /etc/os-release; "
    'echo "$ID"; echo "$VERSION_CODENAME"; '
    # The containerd 2 static release (the glob's last: newest), else the Debian package's.
    "c=/usr/bin/containerd; for b in /opt/dnabox/containerd-*/bin/containerd; do "
    '[ -x "$b" ] && c=$b; done; '
    'if [ -x "$c" ]; then set -- $("$c" --version); echo "$3"; else echo; fi'
)


def preflight_command(plan: BoxPlan) -> str:
    files = " ".join(shlex.quote(f.dest) for f in plan.files)
    hashes = f"sha256sum {files} 2>/dev/null; " if files else ""
    return (
        # The stored fingerprints, read by the shell (a `cat` less per box).
        f"if [ -r {FINGERPRINTS} ]; then while IFS= read -r l || [ -n \"$l\" ]; do "
        f"printf '%s\\n' \"$l\"; done < {FINGERPRINTS}; else echo '{{}}'; fi; echo {_MARK}; "
        f"{hashes}{_probes(plan)}echo {_MARK}; {_FACTS}"
    )


def parse_preflight(output: str, box: str) -> BoxState:
    parts = output.split(_MARK + "\n")
    if len(parts) != 3:
        raise RemoteError(f"{box}: unexpected preflight output", hint="is /bin/sh a POSIX shell?")
    try:
        stored = json.loads(parts[0] or "{}")
    except json.JSONDecodeError:
        stored = {}  # a corrupt state file means: converge everything again
    hashes = {}
    down = set()
    for line in parts[1].splitlines():
        if line.startswith(_DOWN):
            down.add(line[len(_DOWN):])
            continue
        digest, _, path = line.partition("  ")
        if path:
            hashes[path] = digest
    lines = parts[2].splitlines() + [""] * 8
    facts = BoxFacts(
        hostname=lines[0], kernel=lines[1], arch=lines[2],
        cpus=int(lines[3]) if lines[3].isdigit() else 0,
        memory_kb=int(lines[4]) if lines[4].isdigit() else 0, os_id=lines[5],
        os_codename=lines[6], containerd=lines[7],
    )
    fingerprints = stored.get("fingerprints", {}) if isinstance(stored, dict) else {}
    return BoxState(facts, {str(k): str(v) for k, v in fingerprints.items()}, hashes,
                    frozenset(down))


def fact_problems(fleet: Fleet, box_name: str, facts: BoxFacts) -> list[str]:
    """Where the box is not what the inventory says it is (its Debian release, its CPU
    architecture): the plan was made for the declaration, so the box must not be touched."""
    box = fleet.box(box_name)
    index = fleet.boxes.index(box)
    problems = []
    declared_os = fleet.os_of(box)
    if facts.os_codename and facts.os_codename != declared_os:
        supported = ", ".join(RELEASES)
        fix = (f"set boxes[{index}].os: {facts.os_codename}" if facts.os_codename in RELEASES
               else f"dnabox supports {supported}")
        problems.append(f"{box_name} runs Debian {facts.os_codename} but the inventory says "
                        f"{declared_os}: {fix}")
    arch = architecture_of(facts.arch)
    declared_arch = fleet.arch_of(box)
    if facts.arch and arch != declared_arch:
        fix = f"set boxes[{index}].arch: {arch}" if arch else "dnabox supports amd64 and arm64"
        problems.append(f"{box_name} is {facts.arch} but the inventory says {declared_arch}: "
                        f"{fix}")
    return problems


def read_state(connection: BoxConnection, plan: BoxPlan) -> BoxState:
    result = connection.run(preflight_command(plan), timeout=60)
    return state_from(JobResult(connection.box, result))


def state_from(answer: JobResult) -> BoxState:
    """The box's state from its preflight answer; RemoteError (or HostKeyMismatch) when the
    box could not be read."""
    result = answer.result
    if result is None:
        if answer.error_kind == "hostkey":
            raise HostKeyMismatch(answer.error)
        raise RemoteError(answer.error)
    if result.rc != 0:
        raise RemoteError(f"{answer.box}: preflight failed: {result.stderr.strip()}")
    return parse_preflight(result.stdout, answer.box)


def decide(plan: BoxPlan, state: BoxState) -> list[RoleDecision]:
    decisions = []
    for role in plan.roles:
        stored = state.fingerprints.get(role.role)
        if stored is None:
            reason = "new"
        elif stored != role.fingerprint:
            reason = "changed"
        elif any(state.file_hashes.get(f.dest) != f.sha256 for f in role.files):
            reason = "drifted"
        elif role.role in state.down:
            reason = "down"
        else:
            reason = "converged"
        decisions.append(RoleDecision(role.role, reason))
    return decisions


def fingerprints_document(fingerprints: dict[str, str]) -> bytes:
    """The content of the box's fingerprint file."""
    return json.dumps({"fingerprints": fingerprints}, sort_keys=True).encode()


def write_fingerprints(connection: BoxConnection, fingerprints: dict[str, str]) -> None:
    """Atomically replace the box's fingerprint file (write, then rename)."""
    body = fingerprints_document(fingerprints)
    result = connection.run(
        f"mkdir -p {ON_BOX_STATE_DIR} && cat > {FINGERPRINTS}.tmp && mv {FINGERPRINTS}.tmp "
        f"{FINGERPRINTS}", stdin=body, timeout=60)
    if result.rc != 0:
        raise RemoteError(f"{connection.box}: cannot record fingerprints: {result.stderr.strip()}")
