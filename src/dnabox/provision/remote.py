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

from dnabox.adapters.ssh import BoxConnection, JobResult
from dnabox.errors import HostKeyMismatch, RemoteError
from dnabox.locations import ON_BOX_STATE_DIR
from dnabox.plan.desired import BoxPlan

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


@dataclass(frozen=True)
class BoxState:
    facts: BoxFacts
    fingerprints: dict[str, str]
    # sha256 of each managed file as it is on the box; missing files are absent.
    file_hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RoleDecision:
    role: str
    reason: str  # new | changed | drifted | converged

    @property
    def needs_run(self) -> bool:
        return self.reason != "converged"


def preflight_command(plan: BoxPlan) -> str:
    files = " ".join(shlex.quote(f.dest) for f in plan.files)
    hashes = f"sha256sum {files} 2>/dev/null; " if files else ""
    return (
        f"cat {FINGERPRINTS} 2>/dev/null || echo '{{}}'; echo {_MARK}; "
        f"{hashes}echo {_MARK}; "
        "hostname; uname -r; uname -m; nproc; "
        "awk '/MemTotal/ {print $2}' /proc/meminfo; "
        ". /etc/os-release 2>/dev/null && echo \"$ID\""
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
    for line in parts[1].splitlines():
        digest, _, path = line.partition("  ")
        if path:
            hashes[path] = digest
    lines = parts[2].splitlines() + [""] * 6
    facts = BoxFacts(
        hostname=lines[0], kernel=lines[1], arch=lines[2],
        cpus=int(lines[3]) if lines[3].isdigit() else 0,
        memory_kb=int(lines[4]) if lines[4].isdigit() else 0, os_id=lines[5],
    )
    fingerprints = stored.get("fingerprints", {}) if isinstance(stored, dict) else {}
    return BoxState(facts, {str(k): str(v) for k, v in fingerprints.items()}, hashes)


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
