"""The root of the CLI: it only wires the command groups together."""

from __future__ import annotations

from typing import Annotated

import typer

from dnabox import __version__
from dnabox.cli import (
    agent,
    bootstrap,
    bundle,
    converge,
    demo,
    dna,
    exec_command,
    init,
    inventory,
    kubeconfig,
    lab,
    observe,
    runbook,
    ssh,
    stack,
    unlock,
    view,
    where,
)
from dnabox.cli.common import Session, exit_code_epilog
from dnabox.locations import Locations

app = typer.Typer(
    name="dnabox",
    help="Provision SmartX-style boxes across core, edge and end tiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                          is_eager=True)] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More detail (repeatable).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and results.")] = False,
) -> None:
    """Provision SmartX-style boxes across core, edge and end tiers."""
    if version:
        typer.echo(f"dnabox {__version__}")
        raise typer.Exit(0)
    ctx.obj = Session(Locations.discover(), verbosity=-1 if quiet else verbose)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


app.command("init")(init.init_command)
app.add_typer(inventory.app, name="inventory")
app.add_typer(lab.app, name="lab")
app.add_typer(stack.app, name="stack")
app.add_typer(runbook.app, name="runbook")
app.command("plan")(converge.plan)
app.command("up")(converge.up)
app.command("status")(observe.status)
app.command("drift")(observe.drift)
app.command("exec")(exec_command.exec_command)
app.command("unlock")(unlock.unlock_command)
app.command("ssh")(ssh.ssh)
app.command("kubeconfig")(kubeconfig.kubeconfig)
app.command("locations")(where.show_locations)
app.command("demo")(demo.demo)
app.command("view")(view.view)
app.command("bootstrap")(bootstrap.bootstrap)
app.add_typer(bundle.app, name="bundle")
app.add_typer(agent.app, name="agent")
app.add_typer(dna.app, name="dna")


def _with_exit_codes(typer_app: typer.Typer) -> None:
    """Every command and group, present and future, lists the exit-code table in --help."""
    typer_app.info.epilog = exit_code_epilog()
    for info in typer_app.registered_commands:
        info.epilog = exit_code_epilog()
    for group in typer_app.registered_groups:
        group.epilog = exit_code_epilog()
        if group.typer_instance is not None:
            _with_exit_codes(group.typer_instance)


_with_exit_codes(app)


def main() -> None:
    app()
