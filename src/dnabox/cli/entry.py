"""The `dnabox` entry point: `exec` tries the connection agent before the full CLI loads.

Kept free of typer and friends on purpose; see :mod:`dnabox.cli.fast_exec`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["exec"]:
        from dnabox.cli.fast_exec import run

        code = run(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    from dnabox.cli.app import main as full_cli

    full_cli()
