"""The files of a new fleet repository (`dnabox init DIR`).

The repo holds only what is the operator's: the fleet file, the Pulumi project (whose
program is a two-line shim calling the installed dnabox), the stacks' config, CI, and an
editor schema. Playbooks, roles, templates and the stack program come from the installed
dnabox (package data), so upgrading dnabox upgrades them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnabox import __version__
from dnabox.errors import DnaboxError
from dnabox.inventory import load_fleet
from dnabox.inventory.json_schema import generate as inventory_schema
from dnabox.layers import stack_config
from dnabox.locations import STATE_DIR_NAME
from dnabox.scaffold.ansible_import import fleet_name, read, to_fleet
from dnabox.scaffold.starter import starter_inventory

INVENTORY = "inventory/fleet.yaml"
SCHEMA = "schema/inventory.schema.json"
WORKFLOW = ".github/workflows/dnabox.yml"


@dataclass(frozen=True)
class InitReport:
    directory: Path
    files: list[str]
    todos: int

    def as_json(self) -> dict[str, object]:
        return {"directory": str(self.directory), "files": self.files, "todos": self.todos}


GITIGNORE = f"""\
# dnabox's state (journal, lock, Ansible runs, the local Pulumi backend, kubeconfigs with
# cluster-admin credentials): never commit it.
/{STATE_DIR_NAME}/
__pycache__/
"""

README = """\
# {name}: a dnabox fleet

This repository describes the fleet; the tool is installed (`pip install dnabox=={version}`)
and brings the playbooks, roles, templates and the Pulumi program with it.

| file | what |
| --- | --- |
| `{inventory}` | the fleet: sites, boxes, planes, overlays, clusters (editors validate it against `{schema}`) |
| `Pulumi.yaml`, `stacks/__main__.py` | the Pulumi project; the program is dnabox's (`dnabox.layers.program`) |
| `Pulumi.{name}-<cluster>.yaml` | one stack per cluster; dnabox owns its `dnabox:*` keys, Pulumi and you own the rest |
| `{workflow}` | CI: validate, check the stack config, `pulumi preview` on pull requests, `pulumi up` on main |

```bash
export DNABOX_INVENTORY={inventory}
dnabox inventory validate          # every problem with file, line and field
dnabox plan                        # per box: the roles `up` would run and why
dnabox up                          # converge the boxes, form the clusters, run the stacks
dnabox status                      # converged / pending / unreachable per box
dnabox kubeconfig -c core --merge  # the cluster's admin kubeconfig into ~/.kube/config
dnabox stack config                # after changing clusters: regenerate the stack files
```

State (runs, locks, the local Pulumi backend, kubeconfigs) lives in `{state}/`, git-ignored.
The command-line contract (selectors, exit codes, `--json`): `dnabox --help`.
"""

WORKFLOW_TEXT = """\
# dnabox fleet CI: validate the fleet and its stack config on every change; then, one job per
# cluster stack, `pulumi preview` on pull requests and `pulumi up` on main.
# Needs the repository secrets PULUMI_BACKEND_URL (e.g. s3://bucket/{name}) and
# PULUMI_CONFIG_PASSPHRASE, and per stack a GitHub environment named after it holding
# KUBECONFIG (the content of `dnabox kubeconfig -c CLUSTER`).
name: dnabox

on:
  pull_request:
  push:
    branches: [main]

permissions:
  contents: read

# Never cancel a running `pulumi up`: a half-applied stack is worse than a late one.
concurrency:
  group: dnabox-${{{{ github.ref }}}}
  cancel-in-progress: false

env:
  DNABOX_INVENTORY: {inventory}
  PULUMI_SKIP_UPDATE_CHECK: "true"

jobs:
  check:
    runs-on: ubuntu-latest
    outputs:
      stacks: ${{{{ steps.list.outputs.stacks }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - run: pip install "dnabox=={version}"
      - run: dnabox inventory validate
      - run: dnabox stack config --check
      - id: list
        run: |
          echo "stacks=$(dnabox stack config --json | python -c 'import json,sys; print(json.dumps([n[len("Pulumi."):-len(".yaml")] for n in json.load(sys.stdin)["files"]]))')" >> "$GITHUB_OUTPUT"

  stacks:
    needs: check
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pull-requests: write
    strategy:
      fail-fast: false  # one cluster's failure must not stop the others
      matrix:
        stack: ${{{{ fromJSON(needs.check.outputs.stacks) }}}}
    environment: ${{{{ matrix.stack }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - run: pip install "dnabox=={version}"
      - name: Kubeconfig where Pulumi.${{{{ matrix.stack }}}}.yaml expects it
        env:
          KUBECONFIG_CONTENT: ${{{{ secrets.KUBECONFIG }}}}
        run: |
          path=$(python -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["config"]["dnabox:kubeconfig"])' "Pulumi.${{{{ matrix.stack }}}}.yaml")
          mkdir -p "$(dirname "$path")" && umask 077 && printf '%s' "$KUBECONFIG_CONTENT" > "$path"
      - uses: pulumi/actions@v6
        with:
          command: ${{{{ github.event_name == 'pull_request' && 'preview' || 'up' }}}}
          stack-name: ${{{{ matrix.stack }}}}
          cloud-url: ${{{{ secrets.PULUMI_BACKEND_URL }}}}
          upsert: true
          comment-on-pr: ${{{{ github.event_name == 'pull_request' }}}}
          github-token: ${{{{ secrets.GITHUB_TOKEN }}}}
        env:
          PULUMI_CONFIG_PASSPHRASE: ${{{{ secrets.PULUMI_CONFIG_PASSPHRASE }}}}
"""


def scaffold_files(name: str, inventory_text: str) -> dict[str, str]:
    """Relative path -> content of every file `dnabox init` writes (stack files apart)."""
    values = {"name": name, "version": __version__, "inventory": INVENTORY, "schema": SCHEMA,
              "workflow": WORKFLOW, "state": STATE_DIR_NAME}
    return {
        INVENTORY: inventory_text,
        SCHEMA: inventory_schema(),
        "Pulumi.yaml": stack_config.project_file(),
        f"{stack_config.PROGRAM_DIR}/__main__.py": stack_config.PROGRAM_SHIM,
        ".gitignore": GITIGNORE,
        "README.md": README.format(**values),
        WORKFLOW: WORKFLOW_TEXT.format(**values),
    }


def init(directory: Path, *, from_ansible: Path | None = None,
         force: bool = False) -> InitReport:
    """Write a fleet repository into ``directory`` (created; existing files only with force)."""
    name = fleet_name(directory.resolve().name)
    todos = 0
    if from_ansible is not None:
        inventory_text, todos = to_fleet(read(from_ansible), name)
    else:
        inventory_text = starter_inventory(name)
    files = scaffold_files(name, inventory_text)
    existing = sorted(p for p in files if (directory / p).exists())
    if existing and not force:
        raise DnaboxError(f"{directory} already has {', '.join(existing)}",
                          hint="choose an empty directory, or pass --force to overwrite them")
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    written = list(files)
    if todos == 0:
        # The stacks' config, as `dnabox stack config` writes it (an import with TODOs
        # does not validate yet: its stack files come once it does).
        fleet = load_fleet(directory / INVENTORY)
        for stack_file in stack_config.stack_files(fleet, INVENTORY, directory):
            (directory / stack_file.name).write_text(stack_file.text, encoding="utf-8")
            written.append(stack_file.name)
    return InitReport(directory, written, todos)
