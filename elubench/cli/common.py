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
    """`--activations elu,lrelu(0.2)` and repeated flags: split on commas outside parentheses."""
    if not values:
        return None
    names, depth, current = [], 0, ""
    for char in ",".join(values):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            names.append(current.strip())
            current = ""
        else:
            current += char
    names.append(current.strip())
    return [n for n in names if n]


def load(
    spec: Path,
    overrides: list[str] | None,
    width: float | None,
    precision: str | None,
    threads: int | None = None,
):
    """The spec with --set, --width, --precision and --threads applied (typed by the schema)."""
    from elubench.spec.loader import load_spec

    extra = [f"train.precision={precision}"] if precision else []
    extra += [f"train.threads={threads}"] if threads else []
    return load_spec(spec, [*(overrides or []), *extra], width)
