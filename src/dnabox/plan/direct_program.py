"""The direct path: a box's pending roles as one shell program, run in one SSH round trip.

Ansible spends ~0.25 CPU-s per task and box (controller and box together, measured in
docs/PERFORMANCE.md); a fresh box runs ~30 tasks. Every role that can take this path keeps
its logic where Ansible finds it too: packages in ``plan.catalogue`` (the ``<role>_packages``
variables), files in ``templates/files.yml`` (rendered here byte-identically), and the
remaining steps in the role's managed apply script (``dnabox-<role>-apply``), which the
role's single command task runs as well. The program only strings these together: all
packages in one apt transaction, every file compared and replaced atomically, the apply
scripts in role order, the scripts' ``--reload`` where a role's files changed (what the
role's handlers do), then the new fingerprints.
``tests/unit/plan/test_plan_direct_program.py`` fails when a direct role gains an Ansible task
this program does not cover.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dnabox.locations import Locations
from dnabox.plan.catalogue import CATALOGUE
from dnabox.plan.desired import BoxPlan, RenderedFile

# Roles the direct path can run, with the managed script holding their remaining steps
# (None: packages and files are the whole role): a view of the catalogue.
DIRECT_ROLES: dict[str, str | None] = {
    spec.name: spec.apply_script for spec in CATALOGUE if spec.direct}
POLICY_RC = "/usr/sbin/policy-rc.d"
# Lines the program prints between steps, so a failure names the step it happened in.
STEP_MARK = "@@dnabox-step "


def direct_capable(role: str, variables: Mapping[str, Any]) -> bool:
    """Whether ``role`` can run on the box with these inventory variables without Ansible.

    Artifacts (downloads checked against a sha256, or copies from an offline bundle) stay
    with Ansible's get_url/copy/unarchive: only online package sources go direct.
    """
    if role not in DIRECT_ROLES or variables.get("dnabox_artifact_source") == "offline":
        return False
    if (variables.get("dnabox_required_artifacts") or {}).get(role):
        return False  # e.g. containerd's static release, the NVIDIA toolkit
    artifacts = variables.get("dnabox_artifacts") or []
    return not any(a.get("role") == role for a in artifacts)


@dataclass(frozen=True)
class DirectProgram:
    box: str
    roles: tuple[str, ...]
    script: str

    @property
    def stdin(self) -> bytes:
        return self.script.encode()


@dataclass(frozen=True)
class ProgramAssets:
    """Shell files the program embeds, so each has one copy: the apply scripts' header
    (``templates/apply/header.sh``) and the program's functions (``direct-program.sh``)
    beside it; the base role's ``files/policy-rc.d`` and ``playbooks/files/dpkg-recover.sh``,
    which the Ansible side runs too."""

    header: str
    functions: str
    policy_rc: str
    dpkg_recover: str

    @classmethod
    def load(cls, locations: Locations) -> ProgramAssets:
        apply = locations.templates / "apply"
        return cls(header=(apply / "header.sh").read_text(),
                   functions=(apply / "direct-program.sh").read_text(),
                   policy_rc=(locations.roles / "base" / "files" / "policy-rc.d").read_text(),
                   dpkg_recover=(locations.playbooks / "files" / "dpkg-recover.sh").read_text())


def _heredoc(content: bytes) -> str:
    encoded = base64.encodebytes(content).decode()
    return f"<<'@@dnabox-eof'\n{encoded}@@dnabox-eof\n"


def _flag(role: str) -> str:
    return f"changed_{role}"


def _put(rendered: RenderedFile) -> str:
    return (f"put {shlex.quote(rendered.dest)} {rendered.mode} {_flag(rendered.role)} "
            + _heredoc(rendered.content.encode()))


def _packages(roles: Iterable[str], variables: Mapping[str, Any]) -> list[str]:
    wanted: list[str] = []
    for role in roles:
        for package in variables.get(f"{role}_packages") or []:
            if package not in wanted:
                wanted.append(str(package))
    return wanted


def build_program(plan: BoxPlan, roles: Iterable[str], variables: Mapping[str, Any], *,
                  assets: ProgramAssets, fingerprints_document: bytes,
                  state_file: str,
                  secrets: Mapping[str, Mapping[str, str]] | None = None) -> DirectProgram:
    """The program converging ``roles`` on ``plan``'s box and recording its fingerprints.

    ``assets`` are the files shared with the playbooks; ``fingerprints_document`` the
    whole fingerprint file to write at the end (it is only written when every step passed).
    ``secrets``: role -> {path: content} written 0600 after the role's files (they never
    appear in a plan, a diff or an event: only their path does when they change).
    """
    asked = set(roles)
    ordered = [r.role for r in plan.roles if r.role in asked]
    unknown = sorted(asked - set(ordered))  # not planned for this box at all
    unknown += [r for r in ordered if not direct_capable(r, variables)]
    if unknown:
        raise ValueError(f"{plan.box}: roles {unknown} cannot take the direct path")
    parts = [assets.header, assets.functions]
    # Flags of roles with an apply script: only they have a reload to run.
    parts += [f"{_flag(role)}=0\n" for role in ordered if DIRECT_ROLES[role]]
    if "base" in ordered:
        # Before any package: maintainer scripts must not start daemons on boxes without
        # systemd (dnabox-daemon starts them with the managed configuration).
        parts.append(f"step base: {POLICY_RC}\n")
        parts.append('if [ "$systemd" = 0 ]; then put ' + f"{POLICY_RC} 0755 policy_rc "
                     + _heredoc(assets.policy_rc.encode()) + "fi\n")
    wanted = _packages(ordered, variables)
    if wanted:
        parts.append("step packages\n")
        parts.append(assets.dpkg_recover)
        parts.append(f"install_missing {' '.join(shlex.quote(p) for p in wanted)}\n")
    for role in ordered:
        files = plan.role(role).files
        if files:
            parts.append(f"step {role}: files\n")
            parts += [_put(rendered) for rendered in files]
        hidden = (secrets or {}).get(role, {})
        if hidden:
            parts.append(f"step {role}: secrets\n")
            parts += [_put(RenderedFile(role, path, "0600", content))
                      for path, content in sorted(hidden.items())]
    for role in ordered:
        script = DIRECT_ROLES[role]
        if script:
            parts.append(f"step {role}: apply\n{script}\n")
    for role in ordered:
        script = DIRECT_ROLES[role]
        if script:
            parts.append(f'if [ "${_flag(role)}" = 1 ]; then step {role}: reload; '
                         f"{script} --reload; fi\n")
    parts.append("step fingerprints\n")
    state_dir = state_file.rsplit("/", 1)[0]
    parts.append(f"mkdir -p {state_dir}\ncat > {state_file}.tmp "
                 + _heredoc_text(fingerprints_document.decode())
                 + f"mv -f {state_file}.tmp {state_file}\n")
    # One brace group: the shell parses all of it before running any of it, and no command
    # inside can read the rest of the program from stdin (the program arrives on stdin).
    return DirectProgram(plan.box, tuple(ordered), "{\n" + "".join(parts) + "} </dev/null\n")


def _heredoc_text(text: str) -> str:
    return f"<<'@@dnabox-eof'\n{text}\n@@dnabox-eof\n"
