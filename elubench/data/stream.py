"""Streaming from an image folder (imagefolder): torchvision's ImageFolder behind a DataLoader.

Each sample is transformed under its own seed drawn from the same per-epoch generator as the
in-memory sets, so augmentation depends on (seed, epoch, position) and not on the number of
workers. The files are sorted by class, so ``train_limit``/``test_limit`` and the probe take
evenly spaced images instead of the first N, which would hold only the first classes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from elubench.core.errors import DataError
from elubench.core.seeds import derive_seed
from elubench.data.preprocess import write_cache
from elubench.spec.data_section import Data

STATS_SAMPLE = 1000  # imagefolder: training images that estimate the channel mean and std


def spread(n: int | None, total: int) -> list[int]:
    """n evenly spaced indices in range(total) (all of them when n is None or too large)."""
    n = total if n is None else min(n, total)
    return [i * total // n for i in range(n)]


class Seeded(torch.utils.data.Dataset):
    """Samples (index, seed) of a folder, each transformed with the global RNG seeded by `seed`,
    so its augmentation does not depend on which worker, or how many, handle it."""

    def __init__(self, folder, transform):
        self.folder, self.transform = folder, transform

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        image, label = self.folder[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(image), label


class StreamData:
    """ImageFolder train/ and val/ streamed through a DataLoader (see the module docstring)."""

    def __init__(self, data: Data, device: torch.device, cache_dir: Path):
        from torchvision import transforms as T

        cfg = data.imagefolder_section()
        root = Path(cfg.root).expanduser()
        folders = [self._folder(root / part) for part in ("train", "val")]
        if folders[0].classes != folders[1].classes:
            raise DataError(f"{root}/train and {root}/val hold different class folders")
        if cfg.classes is not None and cfg.classes != len(folders[0].classes):
            raise DataError(
                f"imagefolder.classes is {cfg.classes} but {root}/train holds "
                f"{len(folders[0].classes)} class folders"
            )
        if data.preprocess == "gcn-zca":
            raise DataError(
                "preprocess: gcn-zca is not available for imagefolder (its ZCA "
                "matrix would be too large)",
                hint="use standardize or none",
            )
        if cfg.resize < cfg.crop:
            raise DataError(f"imagefolder.resize {cfg.resize} is smaller than crop {cfg.crop}")
        self.name, self.cfg, self.device = data.dataset, cfg, device
        self.classes = len(folders[0].classes)
        self.image_shape, self.input_shape = tuple(data.image_shape()), tuple(data.input_shape())
        self.train, self.test = folders
        self.train_index = spread(data.train_limit, len(self.train))
        self.test_index = spread(data.test_limit, len(self.test))
        self.train_size, self.test_size = len(self.train_index), len(self.test_index)
        self._probes: dict[int, Tensor] = {}  # decoded once: the trainer probes at every evaluation
        base = [T.Resize(cfg.resize), T.CenterCrop(cfg.crop), T.ToTensor()]
        stats = (
            self._channel_stats(T.Compose(base), cache_dir)
            if data.preprocess == "standardize"
            else None
        )
        norm = [T.Normalize(stats["mean"], stats["std"])] if stats else []
        aug, size = data.augment, self.input_shape[1:]
        crop = [T.RandomCrop(size, padding=aug.pad)] if aug.crop else []
        flip = [T.RandomHorizontalFlip()] if aug.hflip else []
        self.train_transform = T.Compose(
            [T.Resize(cfg.resize), T.RandomCrop(cfg.crop), T.ToTensor(), *norm, *crop, *flip]
        )
        self.test_transform = T.Compose([*base, *norm, T.Pad(aug.pad), T.CenterCrop(size)])
        self.info = {
            "dataset": self.name,
            "source": f"torchvision.datasets.ImageFolder in {root}",
            "split": "train/ and val/ folders; limits take evenly spaced images",
            "preprocessing": {"name": data.preprocess, "fit": stats},
            "augment": aug.model_dump(),
            "train_size": self.train_size,
            "test_size": self.test_size,
            "classes": self.classes,
            "image_shape": list(self.image_shape),
            "input_shape": list(self.input_shape),
        }

    @staticmethod
    def _folder(path: Path):
        from torchvision import datasets

        if not path.is_dir():
            raise DataError(
                f"no folder {path}",
                hint="imagefolder.root must hold train/<class>/ and val/<class>/",
            )
        try:
            return datasets.ImageFolder(str(path))
        except (FileNotFoundError, OSError) as exc:
            raise DataError(f"cannot read the images in {path}: {exc}") from None

    def _loader(self, folder, samples, transform, batch_size: int, drop_last: bool = False):
        return torch.utils.data.DataLoader(
            Seeded(folder, transform),
            batch_size=batch_size,
            sampler=samples,
            drop_last=drop_last,
            num_workers=self.cfg.workers,
            pin_memory=self.device.type == "cuda",
        )

    def _channel_stats(self, transform, cache_dir: Path) -> dict:
        """Per-channel mean and std of a fixed, evenly spaced sample of training images, cached."""
        picks = spread(STATS_SAMPLE, len(self.train))
        key = hashlib.sha256(
            json.dumps(
                [
                    str(self.train.root),
                    self.cfg.resize,
                    self.cfg.crop,
                    [self.train.samples[i] for i in picks],
                ]
            ).encode()
        )
        path = cache_dir / f"channels-{key.hexdigest()[:24]}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # absent or corrupt: estimate below
        total = torch.zeros(3, dtype=torch.float64)
        squares, pixels = torch.zeros(3, dtype=torch.float64), 0
        for x, _ in self._loader(self.train, [(i, 0) for i in picks], transform, 64):
            total += x.double().sum((0, 2, 3))
            squares += x.double().pow(2).sum((0, 2, 3))
            pixels += x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / pixels
        std = (squares / pixels - mean**2).clamp_min(1e-12).sqrt()
        stats = {"mean": mean.tolist(), "std": std.tolist(), "images": len(picks)}
        write_cache(path, lambda f: f.write(json.dumps(stats).encode()))
        return stats

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, self.train_size // batch_size)

    def _to_device(self, batch) -> tuple[Tensor, Tensor]:
        x, y = batch
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def epoch_batches(
        self, epoch: int, seed: int, batch_size: int
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The epoch's batches: order and per-sample augmentation seeds from (seed, epoch)."""
        draw = torch.Generator().manual_seed(derive_seed(seed, "data", epoch))
        order = torch.randperm(self.train_size, generator=draw).tolist()
        seeds = torch.randint(0, 2**62, (self.train_size,), generator=draw).tolist()
        samples = [(self.train_index[i], s) for i, s in zip(order, seeds)]
        size = min(batch_size, self.train_size)
        for batch in self._loader(self.train, samples, self.train_transform, size, drop_last=True):
            yield self._to_device(batch)

    def test_batches(self, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        samples = [(i, 0) for i in self.test_index]
        for batch in self._loader(self.test, samples, self.test_transform, batch_size):
            yield self._to_device(batch)

    def probe(self, n: int) -> Tensor:
        """n fixed, evenly spaced training images, centre-cropped and unaugmented."""
        if n not in self._probes:
            samples = [(self.train_index[i], 0) for i in spread(n, self.train_size)]
            batch = next(iter(self._loader(self.train, samples, self.test_transform, len(samples))))
            self._probes[n] = self._to_device(batch)[0]
        return self._probes[n]
