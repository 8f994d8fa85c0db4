"""Desired state per box: the roles that apply, their rendered files and fingerprints.

A role's fingerprint covers everything that can change what the role does on a box: the
role's own files, the templates it renders (rendered for this box), and the values of the
variables its files mention. Variables a role never mentions stay out, so adding a box
changes only the ``ovs`` fingerprint of its overlay peers, not every role of every box.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from dnabox.inventory.model import Box, Fleet
from dnabox.locations import Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.catalogue import role_spec
from dnabox.plan.managed_files import read_table
from dnabox.plan.roles import roles_for


@dataclass(frozen=True)
class ManagedFile:
    role: str
    src: str
    dest: str
    mode: str


@dataclass(frozen=True)
class RenderedFile:
    role: str
    dest: str
    mode: str
    content: str
    # Made in Python (the role's RoleSpec.generated), not rendered from templates/: Ansible
    # copies it instead of rendering it.
    generated: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


@dataclass(frozen=True)
class RolePlan:
    role: str
    fingerprint: str
    files: tuple[RenderedFile, ...]


@dataclass(frozen=True)
class BoxPlan:
    box: str
    site: str
    tier: str
    roles: tuple[RolePlan, ...]

    def role(self, name: str) -> RolePlan:
        return next(r for r in self.roles if r.role == name)

    @property
    def fingerprints(self) -> dict[str, str]:
        return {r.role: r.fingerprint for r in self.roles}

    @property
    def files(self) -> list[RenderedFile]:
        return [f for r in self.roles for f in r.files]


def load_managed_files(templates: Path) -> list[ManagedFile]:
    return [ManagedFile(e["role"], e["src"], e["dest"], e["mode"]) for e in read_table(templates)]


class _FragmentLoader(jinja2.FileSystemLoader):
    """A file that is not a ``.j2`` template is a plain fragment included into one. Ansible
    keeps the trailing newline of the template it renders but drops an included one's
    (its environment does not keep trailing newlines): so does the planner."""

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not template.endswith(".j2") and source.endswith("\n"):
            source = source[:-1]
        return source, filename, uptodate


class _TemplateEnvironment(jinja2.Environment):
    """Ansible's template action also finds an ``{% include %}`` beside the template that
    includes it (``templates/apply/header.sh`` for ``apply/*.sh.j2``): so does the planner."""

    def __init__(self, templates: Path) -> None:
        # Match Ansible's template module: trim_blocks on, trailing newline kept.
        super().__init__(
            loader=_FragmentLoader(str(templates)), undefined=jinja2.StrictUndefined,
            trim_blocks=True, keep_trailing_newline=True, autoescape=False,
        )
        self.templates = templates

    def join_path(self, template: str, parent: str) -> str:
        beside = posixpath.join(posixpath.dirname(parent), template)
        return beside if (self.templates / beside).is_file() else template


def template_environment(templates: Path) -> jinja2.Environment:
    return _TemplateEnvironment(templates)


@cache
def _role_text(role_dir: Path) -> tuple[str, str]:
    """(content hash, all text) of a role directory; cached per process."""
    digest = hashlib.sha256()
    texts = []
    for path in sorted(p for p in role_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        digest.update(str(path.relative_to(role_dir)).encode() + b"\0" + data + b"\0")
        texts.append(data.decode(errors="replace"))
    return digest.hexdigest(), "\n".join(texts)


def _role_defaults(role_dir: Path) -> dict[str, Any]:
    defaults = role_dir / "defaults" / "main.yml"
    if not defaults.exists():
        return {}
    loaded = yaml.safe_load(defaults.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def box_variables(inventory: dict[str, Any], box: str) -> dict[str, Any]:
    """Inventory variables as Ansible sees them for ``box`` (all < groups < host)."""
    root = inventory["all"]
    merged: dict[str, Any] = dict(root.get("vars", {}))
    for group in root["children"].values():
        if box in group.get("hosts", {}):
            merged.update(group.get("vars", {}))
    merged.update(root["hosts"][box])
    return merged


def plan_fleet(fleet: Fleet, locations: Locations, inventory: dict[str, Any] | None = None,
               secret_digests: Mapping[str, Mapping[str, str]] | None = None,
               ) -> dict[str, BoxPlan]:
    """Plan every box; pass the rendered ``inventory`` when the caller has it already.

    ``secret_digests``: box -> role -> a digest of the secrets the role writes on the box
    (never the secrets: the planner does not see them). It joins the role's fingerprint, so
    credentials that changed on the controller re-run the role that carries them.
    """
    inventory = inventory or render_ansible_inventory(fleet, locations)
    managed = load_managed_files(locations.templates)
    env = template_environment(locations.templates)
    assets: dict[str, _RoleAssets] = {}
    digests = secret_digests or {}
    return {
        box.name: _plan_box(fleet, box, inventory, managed, env, locations, assets,
                            digests.get(box.name, {}))
        for box in fleet.boxes
    }


@dataclass(frozen=True)
class _RoleAssets:
    """What a role is made of, the same for every box: read once per plan, not per box
    (per box it was 9 of the 12 s a 1,000-box plan took)."""

    content_hash: str
    defaults: dict[str, Any]
    words: frozenset[str]  # every name the role's files and templates mention


def _role_assets(role: str, locations: Locations, managed: list[ManagedFile],
                 cache: dict[str, _RoleAssets]) -> _RoleAssets:
    if role not in cache:
        role_dir = locations.roles / role
        content_hash, text = _role_text(role_dir) if role_dir.is_dir() else ("", "")
        corpus = [text] + [(locations.templates / m.src).read_text(encoding="utf-8")
                           for m in managed if m.role == role]
        cache[role] = _RoleAssets(content_hash, _role_defaults(role_dir),
                                  frozenset(_WORD.findall("\n".join(corpus))))
    return cache[role]


def _plan_box(fleet: Fleet, box: Box, inventory: dict[str, Any], managed: list[ManagedFile],
              env: jinja2.Environment, locations: Locations,
              cache: dict[str, _RoleAssets], secret_digests: Mapping[str, str]) -> BoxPlan:
    variables = box_variables(inventory, box.name)
    roles = []
    for role in roles_for(fleet, box):
        assets = _role_assets(role, locations, managed, cache)
        content_hash = assets.content_hash
        context = {**assets.defaults, **variables}
        files = []
        for entry in (m for m in managed if m.role == role):
            content = env.get_template(entry.src).render(context)
            files.append(RenderedFile(role, entry.dest, entry.mode, content))
        generate = role_spec(role).generated
        if generate is not None:
            files += [RenderedFile(role, g.dest, g.mode, g.content, generated=True)
                      for g in generate(fleet, box)]
        mentioned = _mentioned(variables, assets.words)
        digest = hashlib.sha256()
        digest.update(content_hash.encode())
        digest.update(json.dumps(mentioned, sort_keys=True, default=str).encode())
        for rendered in files:
            digest.update(f"{rendered.dest}\0{rendered.mode}\0{rendered.sha256}".encode())
        if role in secret_digests:
            digest.update(f"secrets\0{secret_digests[role]}".encode())
        roles.append(RolePlan(role, digest.hexdigest()[:16], tuple(files)))
    site = fleet.site(box.site)
    return BoxPlan(box.name, site.name, site.tier, tuple(roles))


# Variables every role sees but whose value never changes what a role does on the box:
# connection settings, and where things live on the controller (an installed dnabox, another
# checkout or another state dir must not re-run converged roles).
_CONNECTION_VARS = re.compile(r"^(ansible_|dnabox_templates_dir$|dnabox_kubeconfig_dir$)")


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _mentioned(variables: dict[str, Any], words: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in variables.items()
            if name in words and not _CONNECTION_VARS.match(name)}

