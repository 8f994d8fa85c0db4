"""The Pulumi program of every dnabox stack: the one installed with dnabox."""

from dnabox.layers.program import main

main()
