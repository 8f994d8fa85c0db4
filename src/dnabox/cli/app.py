"""The root of the CLI: it only wires the command groups together."""

from __future__ import annotations

import typer

from dnabox.cli import (
    agent,
    bootstrap,
    bundle,
    converge,
    demo,
    fanout,
    inventory,
    lab,
    observe,
    runbook,
    stack,
)

app = typer.Typer(
    name="dnabox",
    help="Provision SmartX-style boxes across core, edge and end tiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(inventory.app, name="inventory")
app.add_typer(lab.app, name="lab")
app.add_typer(stack.app, name="stack")
app.add_typer(runbook.app, name="runbook")
app.command("plan")(converge.plan)
app.command("up")(converge.up)
app.command("status")(observe.status)
app.command("drift")(observe.drift)
app.command("exec")(fanout.exec_command)
app.command("demo")(demo.demo)
app.command("bootstrap")(bootstrap.bootstrap)
app.add_typer(bundle.app, name="bundle")
app.add_typer(agent.app, name="agent")


def main() -> None:
    app()
