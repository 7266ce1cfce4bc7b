"""Reading a spec with overrides: `elubench.load_spec` and every command's `--set`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from elubench.spec.schema import Spec


def override_texts(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """`--set` texts: a sequence of `key.path=value` as the command line gives them, or a
    mapping of key paths to Python values (`{"train.iterations": 100}`, a list as YAML's
    `[elu, relu]`); a string value is passed as written, as `--set` passes it."""
    if not overrides:
        return []
    if isinstance(overrides, Mapping):
        return [
            f"{key}={value if isinstance(value, str) else json.dumps(value)}"
            for key, value in overrides.items()
        ]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def load_spec(
    path: str | Path,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    width: float | None = None,
    precision: str | None = None,
    threads: int | None = None,
    **keyword_paths: Any,
) -> Spec:
    """The validated spec a file describes, with overrides applied as `--set` applies them:
    `overrides={"train.iterations": 100}`, or keyword paths with `__` for the dots
    (`train__iterations=100`); `width`, `precision` and `threads` as the flags of those names.
    A mistake raises `elubench.errors.SpecError` naming the file, key and line."""
    from elubench.spec.loader import load_spec as load

    texts = override_texts(overrides)
    texts += override_texts({key.replace("__", "."): v for key, v in keyword_paths.items()})
    texts += [f"train.precision={precision}"] if precision else []
    texts += [f"train.threads={threads}"] if threads else []
    return load(path, texts, width)
