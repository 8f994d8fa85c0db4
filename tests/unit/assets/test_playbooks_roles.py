"""The roles' shape: plain prefixed defaults, argument specs that match them, tags, handlers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from dnabox.inventory import load_fleet
from dnabox.locations import ASSETS, Locations
from dnabox.plan.ansible_inventory import render_ansible_inventory
from dnabox.plan.catalogue import CATALOGUE, ROLE_ORDER
from dnabox.plan.desired import box_variables
from dnabox.plan.roles import roles_for

ROOT = Path(__file__).resolve().parents[3]
ROLES = ASSETS / "playbooks" / "roles"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def task_files(role: str) -> list[Path]:
    return sorted((ROLES / role / "tasks").glob("*.yml"))


def tasks_of(role: str) -> list[dict[str, Any]]:
    return [task for path in task_files(role) for task in load(path) or []]


def test_every_planned_role_exists_with_its_parts() -> None:
    assert sorted(p.name for p in ROLES.iterdir()) == sorted(ROLE_ORDER)
    for role in ROLE_ORDER:
        for part in ("defaults/main.yml", "tasks/main.yml", "handlers/main.yml",
                     "meta/main.yml", "meta/argument_specs.yml"):
            assert (ROLES / role / part).is_file(), f"{role}/{part}"


@pytest.mark.parametrize("role", ROLE_ORDER)
def test_defaults_are_plain_prefixed_and_commented(role: str) -> None:
    path = ROLES / role / "defaults" / "main.yml"
    text = path.read_text(encoding="utf-8")
    # The planner merges defaults in Python: Jinja there would render differently.
    assert "{{" not in text and "{%" not in text
    defaults = load(path) or {}
    for key in defaults:
        assert key.startswith(f"{role}_"), f"{role}: {key} is not role-prefixed"
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[a-z_]+:", line) and not lines[index - 1].startswith(("#", "  ", "- ")):
            # A key right after another key shares its comment; after a blank line it needs one.
            assert lines[index - 1].strip() != "", f"{role}: {line} has no comment"


@pytest.mark.parametrize("role", ROLE_ORDER)
def test_argument_specs_cover_every_default_with_the_same_value(role: str) -> None:
    defaults = load(ROLES / role / "defaults" / "main.yml") or {}
    options = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"][
        "options"]
    python_types = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict}
    for key, value in defaults.items():
        assert key in options, f"{role}: {key} missing from argument_specs"
        assert options[key]["default"] == value, f"{role}: {key} default differs"
        assert isinstance(value, python_types[options[key]["type"]]), f"{role}: {key} type"
        assert options[key]["description"] not in ("", key)


@pytest.mark.parametrize("sample", ["lab", "smartx-playground"])
def test_inventory_provides_every_required_variable(sample: str) -> None:
    fleet = load_fleet(ROOT / "inventory" / f"{sample}.yaml")
    inventory = render_ansible_inventory(fleet, Locations.discover())
    for box in fleet.boxes:
        variables = box_variables(inventory, box.name)
        for role in roles_for(fleet, box):
            spec = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]
            for name, option in spec["options"].items():
                if option.get("required"):
                    assert name in variables, f"{box.name}/{role}: {name} not in the inventory"
                    if "choices" in option:
                        assert variables[name] in option["choices"], (box.name, name)


@pytest.mark.parametrize("role", ROLE_ORDER)
def test_task_names_are_role_prefixed_and_managed_files_come_from_one_task_file(role: str) -> None:
    title = load(ROLES / role / "tasks" / "main.yml")[0]["name"].split(" | ")[0]
    for task in tasks_of(role):
        assert task["name"].startswith(f"{title} | "), f"{role}: {task['name']}"
    # Managed files: the one shared task file of the base role, told which role's entries.
    shared = load(ROLES / "base" / "tasks" / "files.yml")
    assert all("selectattr('role', 'equalto', base_files_role)" in t["loop"] for t in shared)
    imports = [t for t in load(ROLES / role / "tasks" / "main.yml")
               if t.get("vars", {}).get("base_files_role") is not None]
    assert [t["vars"]["base_files_role"] for t in imports] == [role]
    source = imports[0].get("ansible.builtin.import_role") or {"name": "base",
                                                               "tasks_from": "files"}
    assert (source["name"], source["tasks_from"]) == ("base", "files")
    assert not (ROLES / role / "tasks" / "files.yml").exists() or role == "base"


def _handler_topics() -> set[str]:
    topics = set()
    for role in ROLE_ORDER:
        for handler in load(ROLES / role / "handlers" / "main.yml") or []:
            topics.add(handler["name"])
            listen = handler.get("listen", handler["name"])
            topics.update([listen] if isinstance(listen, str) else listen)
    return topics


def test_every_notification_reaches_a_handler() -> None:
    topics = _handler_topics()
    for role in ROLE_ORDER:
        for task in tasks_of(role):
            notify = task.get("notify")
            for name in [notify] if isinstance(notify, str) else notify or []:
                # The shared managed-files tasks notify the handlers of the role they render
                # for: each role's name must reach one of its own handlers.
                for told in {jinja2.Template(name).render(base_files_role=r) for r in ROLE_ORDER}:
                    assert told in topics, f"{role}: notifies {told!r}, which no handler hears"


def test_site_playbook_tags_each_role_and_honours_the_plan() -> None:
    plays = load(ASSETS / "playbooks" / "site.yml")
    seen = []
    for play in plays:
        for entry in play["roles"]:
            role = entry["role"]
            seen.append(role)
            assert entry["tags"] == [role]
            # One condition: the planner's list already leaves out the fleet's skip_roles.
            assert entry["when"] == f"'{role}' in dnabox_roles"
    # Bootstrap roles in the catalogue's order; formation roles for control planes, then
    # workers.
    bootstrap = [spec.name for spec in CATALOGUE if not spec.formation]
    formation = [spec.name for spec in CATALOGUE if spec.formation]
    assert seen == [*bootstrap, *formation, *formation]
    assert [p["hosts"] for p in plays] == ["all", "role_control_plane", "role_worker"]


def test_secret_tasks_never_log() -> None:
    for task in tasks_of("kubernetes"):
        text = yaml.safe_dump(task)
        if "token" in text or "certificate-key" in text or "join_command" in text:
            if task["name"].endswith("has joined"):
                continue
            assert task.get("no_log") is True, task["name"]
