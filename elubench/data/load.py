"""`load_data`: the dataset a spec names, as one of the two sources of elubench.data."""

from __future__ import annotations

from pathlib import Path

import torch

from elubench.core.errors import DataError
from elubench.core.paths import default_cache_dir
from elubench.data.memory import InMemoryData
from elubench.data.sources import read_raw
from elubench.data.stream import StreamData
from elubench.spec.data_section import Data


def load_data(
    data: Data,
    *,
    device: torch.device | str = "cpu",
    data_dir: Path | None = None,
    download: bool = False,
    cache_dir: Path | None = None,
) -> InMemoryData | StreamData:
    """The dataset a spec names, preprocessed and ready to batch on `device`."""
    device = torch.device(device)
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if data.dataset == "imagefolder":
        return StreamData(data, device, cache_dir)
    raw = read_raw(data, data_dir, download)
    classes = data.classes()
    assert classes is not None, data.dataset  # only an image folder's count is left to its files
    for labels in (raw.train_y, raw.test_y):
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < classes:
            raise DataError(f"{data.dataset}: labels fall outside 0..{classes - 1}")
    return InMemoryData(data, raw, device, cache_dir)
