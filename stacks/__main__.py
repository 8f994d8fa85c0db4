"""The Pulumi program of every dnabox stack (one stack per cluster).

Thin on purpose: read the stack config, let dnabox.layers compose, export the outputs.
"""

from pathlib import Path

import pulumi

from dnabox.layers.program import compose, read_settings
from dnabox.layers.stack_config import NAMESPACE

# Resolved through symlinks: per-stack work dirs link to this directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

for key, value in compose(read_settings(pulumi.Config(NAMESPACE), PROJECT_ROOT)).items():
    pulumi.export(key, value)
