"""What the command modules share: the console, the --activations splitter and the spec
loader with the common overrides. No torch."""

from __future__ import annotations

import sys
from pathlib import Path


def console(stderr: bool = False):
    """A rich console; into a file or a pipe it is wide, so tables are not wrapped to 80
    columns (a terminal's own width, or $COLUMNS, still rules)."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, highlight=False, width=wide)


def split_names(values: list[str] | None) -> list[str] | None:
    """`--activations elu,lrelu(0.2)` and repeated flags (api.training.split_names)."""
    from elubench.api.training import split_names as split

    return split(values)


def load(
    spec: Path,
    overrides: list[str] | None,
    width: float | None,
    precision: str | None,
    threads: int | None = None,
):
    """The spec with --set, --width, --precision and --threads applied (api.specs.load_spec)."""
    from elubench.api.specs import load_spec

    return load_spec(spec, overrides, width=width, precision=precision, threads=threads)
