"""`dnabox init --from-ansible`: an existing Ansible inventory (INI or YAML) as a fleet file.

What it can tell it fills in: hosts become boxes (address from ``ansible_host`` or an IP host
name; ``ansible_user``/``ansible_port``/``ansible_ssh_private_key_file`` as SSH settings),
the group a host sits in directly becomes its site, and a tier comes from a group name
saying core, edge or end (the group's own or an ancestor's). Everything else is written as
the literal ``TODO`` with a ``# TODO:`` comment saying what belongs there; ``TODO`` is no
valid tier, address or site, so `dnabox inventory validate` fails on each one, naming its
line, until it is filled in.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dnabox.errors import DnaboxError

TODO = "TODO"
_TIER_WORDS = {"core": "core", "edge": "edge", "mec": "edge", "end": "end", "device": "end",
               "iot": "end"}
_NAME = re.compile(r"[^a-z0-9-]+")


@dataclass
class Host:
    name: str
    variables: dict[str, str] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # direct groups, in file order


@dataclass
class AnsibleInventory:
    hosts: dict[str, Host] = field(default_factory=dict)
    parents: dict[str, set[str]] = field(default_factory=dict)  # group -> parent groups
    group_vars: dict[str, dict[str, str]] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        return self.hosts.setdefault(name, Host(name))

    def add_to_group(self, host: str, group: str) -> None:
        entry = self.host(host)
        if group not in ("all", "ungrouped") and group not in entry.groups:
            entry.groups.append(group)

    def effective(self, host: Host) -> dict[str, str]:
        """Ansible's precedence, simplified: all < ancestor groups < direct groups < host."""
        merged = dict(self.group_vars.get("all", {}))
        for group in host.groups:
            for source in (*reversed(self.ancestors(group)), group):
                merged.update(self.group_vars.get(source, {}))
        return {**merged, **host.variables}

    def ancestors(self, group: str) -> list[str]:
        seen: list[str] = []
        todo = [group]
        while todo:
            current = todo.pop()
            for parent in sorted(self.parents.get(current, ())):
                if parent not in seen:
                    seen.append(parent)
                    todo.append(parent)
        return seen


def read(path: Path) -> AnsibleInventory:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DnaboxError(f"cannot read {path}: {exc}",
                          hint="name an Ansible inventory file") from None
    if path.suffix in (".yaml", ".yml"):
        return _from_yaml(text, path)
    return _from_ini(text, path)


def _from_ini(text: str, path: Path) -> AnsibleInventory:
    inventory = AnsibleInventory()
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip() if not raw.lstrip().startswith(
            ("#", ";")) else ""
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]:]+)(?::(children|vars))?\]", line)
        if header:
            section, kind = header.group(1), header.group(2) or "hosts"
            inventory.parents.setdefault(section, set())
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise DnaboxError(f"{path}:{number}: cannot parse: {exc}",
                              hint="fix the line, or export YAML with ansible-inventory -y "
                                   "--list") from None
        if kind == "vars":
            inventory.group_vars.setdefault(section, {}).update(_assignments(
                [line.replace(" = ", "=", 1)]))
        elif kind == "children":
            inventory.parents.setdefault(words[0], set()).add(section)
        elif kind == "hosts":
            if re.search(r"\[\d+:\d+\]", words[0]):
                raise DnaboxError(f"{path}:{number}: host ranges ({words[0]}) are not expanded",
                                  hint="expand them: ansible-inventory -i FILE -y --list > "
                                       "hosts.yaml, then import hosts.yaml")
            host = inventory.host(words[0])
            host.variables.update(_assignments(words[1:]))
            inventory.add_to_group(words[0], section)
    return inventory


def _assignments(words: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (w.partition("=") for w in words) if k}


def _from_yaml(text: str, path: Path) -> AnsibleInventory:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DnaboxError(f"{path}: not valid YAML: {exc}", hint="fix the file") from None
    if not isinstance(loaded, dict):
        raise DnaboxError(f"{path}: an Ansible YAML inventory is a mapping of groups",
                          hint="e.g. all: {hosts: {box1: {ansible_host: 10.0.0.1}}}")
    inventory = AnsibleInventory()

    def walk(group: str, body: Any, parent: str | None) -> None:
        inventory.parents.setdefault(group, set())
        if parent is not None and parent != "all":
            inventory.parents[group].add(parent)
        body = body if isinstance(body, dict) else {}
        if isinstance(body.get("vars"), dict):
            inventory.group_vars.setdefault(group, {}).update(
                {str(k): str(v) for k, v in body["vars"].items()})
        for name, variables in (body.get("hosts") or {}).items():
            host = inventory.host(str(name))
            if isinstance(variables, dict):
                host.variables.update({str(k): str(v) for k, v in variables.items()})
            inventory.add_to_group(str(name), group)
        for child, child_body in (body.get("children") or {}).items():
            walk(str(child), child_body, group)

    for group, body in loaded.items():
        walk(str(group), body, None)
    return inventory


def fleet_name(text: str) -> str:
    cleaned = _NAME.sub("-", text.lower()).strip("-")[:63].strip("-")
    return cleaned or "fleet"


def _tier(inventory: AnsibleInventory, group: str) -> str | None:
    for candidate in (group, *inventory.ancestors(group)):
        for word in re.split(r"[^a-z]+", candidate.lower()):
            if word in _TIER_WORDS:
                return _TIER_WORDS[word]
    return None


def _address(host: Host) -> str | None:
    for candidate in (host.variables.get("ansible_host"), host.name):
        try:
            return str(ipaddress.IPv4Address(candidate or ""))
        except ValueError:
            continue
    return None


def _management_plane(inventory: AnsibleInventory) -> list[str]:
    """The management plane, just wide enough for every known address (the model checks
    each box's address lies in it)."""
    known = [ipaddress.IPv4Address(a) for h in inventory.hosts.values() if (a := _address(h))]
    if not known:
        return ["planes:", "  - name: P+M", "    purpose: management",
                f"    cidr: {TODO}  # TODO: the management network, e.g. 10.10.0.0/16"]
    low, high = min(known), max(known)
    network = ipaddress.IPv4Network(f"{low}/32")
    while high not in network:
        network = network.supernet()
    network = network if network.prefixlen <= 24 else network.supernet(new_prefix=24)
    return ["# Only the management plane could be told (it spans every imported address); add",
            "# the control (C) and data (D) planes when the boxes get those interfaces.",
            "planes:", "  - name: P+M", "    purpose: management", f"    cidr: {network}"]


def to_fleet(inventory: AnsibleInventory, name: str) -> tuple[str, int]:
    """The fleet file's text and how many TODOs it holds."""
    if not inventory.hosts:
        raise DnaboxError("the Ansible inventory has no hosts", hint="name another file")
    todos = 0
    for host in inventory.hosts.values():
        host.variables = inventory.effective(host)
    users = Counter(h.variables.get("ansible_user", "root") for h in inventory.hosts.values())
    default_user = users.most_common(1)[0][0]
    sites: dict[str, str | None] = {}
    for host in inventory.hosts.values():
        if host.groups:
            group = host.groups[-1]  # the most specific group comes last in most files
            sites.setdefault(group, _tier(inventory, group))
    lines = [
        "# yaml-language-server: $schema=../schema/inventory.schema.json",
        "# Imported by `dnabox init --from-ansible`. Every TODO is a value the Ansible",
        "# inventory could not tell; `dnabox inventory validate` fails on each until filled in.",
        f"name: {fleet_name(name)}",
        "description: Imported from an Ansible inventory",
        "",
        "defaults:",
        "  ssh:",
        f"    user: {default_user}",
        "",
        *(plane := _management_plane(inventory)),
        "",
        "sites:",
    ]
    todos += sum(TODO in line for line in plane)
    for site, tier in sites.items():
        lines.append(f"  - name: {fleet_name(site)}")
        if tier is None:
            todos += 1
            lines.append(f"    tier: {TODO}  # TODO: core, edge or end "
                         f"(Ansible group {site} does not say)")
        else:
            lines.append(f"    tier: {tier}  # from Ansible group {site}")
    if any(not h.groups for h in inventory.hosts.values()):
        todos += 1
        lines += [f"  - name: {TODO.lower()}",
                  f"    tier: {TODO}  # TODO: ungrouped hosts: make a site per location"]
    lines += ["", "boxes:"]
    for host in inventory.hosts.values():
        lines.append(f"  - name: {fleet_name(host.name)}")
        site = fleet_name(host.groups[-1]) if host.groups else TODO.lower()
        lines.append(f"    site: {site}")
        address = _address(host)
        if address is None:
            todos += 1
            was = host.variables.get("ansible_host", host.name)
            lines.append(f"    address: {TODO}  # TODO: management IPv4 address (was {was})")
        else:
            lines.append(f"    address: {address}")
        ssh = {}
        if host.variables.get("ansible_user", default_user) != default_user:
            ssh["user"] = host.variables["ansible_user"]
        if "ansible_port" in host.variables:
            ssh["port"] = host.variables["ansible_port"]
        if "ansible_ssh_private_key_file" in host.variables:
            ssh["key"] = host.variables["ansible_ssh_private_key_file"]
        if ssh:
            lines.append("    ssh: {" + ", ".join(f"{k}: {v}" for k, v in ssh.items()) + "}")
    lines += ["", "# TODO (optional): planes and site subnets, overlays, clusters - see the",
              "# starter of `dnabox init` without --from-ansible, and docs/inventory.md.", ""]
    return "\n".join(lines), todos
