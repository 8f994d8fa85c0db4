"""`python -m dnabox` runs the CLI (same as the `dnabox` console script)."""

from dnabox.cli.entry import main

main()
