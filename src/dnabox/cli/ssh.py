"""`dnabox ssh BOX [-- CMD]`: a shell or one command on a box of a real fleet."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

from dnabox.cli.common import DEFAULT_INVENTORY, InventoryOption, command, fleet_from
from dnabox.errors import DnaboxError, EnvironmentProblem


@command
def ssh(
    box: Annotated[str, typer.Argument(help="Box name.")],
    remote: Annotated[list[str] | None, typer.Argument(help="Command to run (after --).")] = None,
    inventory: InventoryOption = DEFAULT_INVENTORY,
    print_only: Annotated[bool, typer.Option("--print", help="Print the ssh command line "
                                             "instead of running it.")] = False,
) -> None:
    """Open a shell on a box, or run a command, as the inventory says: user, key, port and
    known_hosts, with strict host keys (an unknown or changed key is refused, never added).

    Exits with the remote command's exit code (ssh's 255 when the connection failed).

    Examples:
      dnabox ssh -i fleet.yaml core-1
      dnabox ssh -i fleet.yaml edge-kaist-1 -- systemctl status containerd
    """
    from dnabox.adapters.openssh import ssh_argv

    fleet = fleet_from(inventory)
    names = [b.name for b in fleet.boxes]
    if box not in names:
        raise DnaboxError(f"no box {box} in {inventory}", hint=f"boxes: {', '.join(names)}")
    argv = ssh_argv(fleet.ssh_for(fleet.box(box)), remote or [],
                    interactive=not remote and sys.stdin.isatty())
    if print_only:
        typer.echo(" ".join(argv))
        return
    sys.stdout.flush()
    try:
        code = subprocess.run(argv, check=False).returncode
    except FileNotFoundError:
        raise EnvironmentProblem("the OpenSSH client (`ssh`) is not installed",
                                 hint="apt-get install openssh-client") from None
    raise typer.Exit(code)
