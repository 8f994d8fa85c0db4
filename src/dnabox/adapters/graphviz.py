"""Render DOT source with Graphviz's ``dot`` binary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dnabox.errors import DnaboxError, EnvironmentProblem

FORMATS = ("svg", "png", "dot")


def render(dot_source: str, output: Path) -> None:
    """Write ``dot_source`` to ``output`` in the format its suffix names."""
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise DnaboxError(
            f"cannot tell the picture format from {output.name!r}",
            hint=f"end the file name with one of: {', '.join('.' + f for f in FORMATS)}",
        )
    if fmt == "dot":
        output.write_text(dot_source, encoding="utf-8")
        return
    dot = shutil.which("dot")
    if dot is None:
        raise EnvironmentProblem(
            "Graphviz's `dot` is not installed", hint="apt-get install -y graphviz"
        )
    result = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(output)], input=dot_source.encode(), capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise DnaboxError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
