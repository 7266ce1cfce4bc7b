"""Where elubench keeps datasets and caches when the user does not say. Pure Python.

Which files a dataset needs there, and whether they are intact: elubench.data.catalog."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


def default_data_dir() -> Path:
    """Where downloaded datasets live when no --data-dir is given: $ELUBENCH_DATA_DIR, else
    $XDG_CACHE_HOME/elubench/data, else ~/.cache/elubench/data."""
    if os.environ.get("ELUBENCH_DATA_DIR"):
        return Path(os.environ["ELUBENCH_DATA_DIR"]).expanduser()
    return cache_home() / "elubench" / "data"


def resolve_data_dir(data_dir: Path | None = None) -> tuple[Path, str]:
    """The data folder elubench uses (absolute) and which rule chose it: --data-dir, else
    $ELUBENCH_DATA_DIR, else the cache's."""
    if data_dir is not None:
        return Path(data_dir).expanduser().absolute(), "--data-dir"
    origin = "$ELUBENCH_DATA_DIR" if os.environ.get("ELUBENCH_DATA_DIR") else "the default"
    return default_data_dir().absolute(), origin


def default_cache_dir() -> Path:
    """Where expensive one-off fits (ZCA, channel statistics) and compiled graphs are kept."""
    return cache_home() / "elubench" / "cache"
