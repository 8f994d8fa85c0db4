"""`dnabox init DIR`: scaffold a fleet repository (or import an Ansible inventory into one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnabox.cli.common import JsonOption, command, print_json, stdout


@command
def init_command(
    directory: Annotated[Path, typer.Argument(help="The fleet repository (created).")] = Path(
        "."),
    from_ansible: Annotated[Path | None, typer.Option(
        "--from-ansible", help="Import an Ansible inventory (hosts.ini or hosts.yaml).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Scaffold a fleet repository: a commented starter inventory (one core site, one edge
    site, one end device), the Pulumi project running dnabox's installed stack program and
    one stack file per cluster, a CI workflow (pulumi preview on pull requests, up on
    main), .gitignore for the state dir, an editor schema and a README.

    --from-ansible imports hosts and groups (a group's name saying core/edge/end gives its
    tier); what it cannot tell is written as TODO, which fails validation until filled in.

    Examples:
      dnabox init my-fleet
      dnabox init my-fleet --from-ansible ~/ansible/hosts.ini
    """
    # deferred: the fleet model and its JSON schema cost every other command's start.
    from dnabox.scaffold.repo import INVENTORY, init

    report = init(directory, from_ansible=from_ansible, force=force)
    if json_output:
        print_json(report.as_json())
        return
    out = stdout()
    out.print(f"wrote {len(report.files)} files in {directory}", markup=False)
    if report.todos:
        out.print(f"{report.todos} TODOs to fill in {directory / INVENTORY}; then "
                  f"`dnabox inventory validate -i {directory / INVENTORY}` and "
                  f"`dnabox stack config -i {directory / INVENTORY}`", markup=False,
                  soft_wrap=True)
    else:
        out.print(f"next: cd {directory} && export DNABOX_INVENTORY={INVENTORY} && "
                  "dnabox inventory validate && dnabox plan", markup=False, soft_wrap=True)
