"""Where elubench keeps datasets and caches when the user does not say. Pure Python."""

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


def default_cache_dir() -> Path:
    """Where expensive one-off fits (ZCA, channel statistics) and compiled graphs are kept."""
    return cache_home() / "elubench" / "cache"


# The files torchvision's loaders read, under the data folder (what `--download` fetches).
TORCHVISION_FILES = {
    "mnist": ("MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "cifar10": ("cifar-10-batches-py", (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")),
    "cifar100": ("cifar-100-python", ("train", "test")),
}


def missing_data(data, data_dir: Path | None = None) -> Path | None:
    """The first file or folder a spec's dataset needs that is not there, without reading any
    (the driver of worker processes checks before it starts them); None when nothing is missing
    or the dataset needs no files (digits, synthetic)."""
    if data.dataset in TORCHVISION_FILES:
        folder, names = TORCHVISION_FILES[data.dataset]
        root = (Path(data_dir).expanduser() if data_dir is not None else default_data_dir()) / folder
        return next((root / name for name in names if not (root / name).exists()), None)
    if data.dataset == "imagefolder":
        root = Path(data.imagefolder.root).expanduser()
        return next((root / part for part in ("train", "val") if not (root / part).is_dir()), None)
    return None
