"""In-memory datasets (digits, synthetic, mnist, cifar10, cifar100): the whole set on the
device as channels_last float32 tensors, batched and augmented there.

Every epoch draws its permutation, crop offsets and flips in one go from a CPU generator seeded
by ``derive_seed(seed, "data", epoch)``, so for one seed every activation sees the same data
order and augmentation, and a run resumed at epoch e replays epoch e exactly. A batch is one
gather (select, crop, flip) on the device, with no host synchronisation. Zero padding for the
random crop is applied after preprocessing; test images and the probe are centre-cropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from elubench.core.seeds import derive_seed
from elubench.data.augment import centre, crop_flip
from elubench.data.preprocess import preprocess
from elubench.data.sources import Raw
from elubench.spec.data_section import Data


class InMemoryData:
    """A dataset held on the device, batched and augmented there (see the module docstring)."""

    def __init__(self, data: Data, raw: Raw, device: torch.device, cache_dir: Path):
        self.name = data.dataset
        self.classes = data.classes()
        self.image_shape = data.image_shape()
        self.input_shape = data.input_shape()
        self.augment = data.augment
        self.device = device
        train, test, prep = preprocess(data, raw, device, cache_dir)
        pad = data.augment.pad
        self.train_x = F.pad(train, (pad,) * 4).contiguous(memory_format=torch.channels_last)
        self.test_x = centre(F.pad(test, (pad,) * 4), self.input_shape[1:])
        self.train_y, self.test_y = raw.train_y.to(device), raw.test_y.to(device)
        self.train_size, self.test_size = len(self.train_y), len(self.test_y)
        self.info = {
            "dataset": self.name,
            "source": raw.source,
            "split": raw.split,
            "preprocessing": prep,
            "augment": data.augment.model_dump(),
            "train_size": self.train_size,
            "test_size": self.test_size,
            "classes": self.classes,
            "image_shape": list(self.image_shape),
            "input_shape": list(self.input_shape),
        }

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, self.train_size // batch_size)

    def epoch_draws(self, epoch: int, seed: int) -> Tensor:
        """Rows: permutation, crop top, crop left, flip (0/1); from (seed, epoch) alone, on the
        CPU, so every device draws the same."""
        draw = torch.Generator().manual_seed(derive_seed(seed, "data", epoch))
        n = self.train_size
        rows, cols = (self.train_x.shape[d] - self.input_shape[d - 1] + 1 for d in (2, 3))
        return torch.stack(
            [
                torch.randperm(n, generator=draw),
                torch.randint(0, rows, (n,), generator=draw),
                torch.randint(0, cols, (n,), generator=draw),
                torch.randint(0, 2, (n,), generator=draw) * int(self.augment.hflip),
            ]
        )

    def epoch_batches(
        self, epoch: int, seed: int, batch_size: int
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The epoch's training batches, augmented on the device; the last partial batch is
        dropped, and a batch larger than the set is the whole set."""
        draws = self.epoch_draws(epoch, seed)
        if self.device.type == "cuda":  # pinned, so the copy does not wait for queued steps
            draws = draws.pin_memory()
        order, top, left, flip = draws.to(self.device, non_blocking=True)
        flip = flip.bool()
        size = min(batch_size, self.train_size)
        for step in range(self.steps_per_epoch(batch_size)):
            part = slice(step * size, (step + 1) * size)
            index = order[part]
            yield (
                crop_flip(
                    self.train_x, index, top[part], left[part], flip[part], self.input_shape[1:]
                ),
                self.train_y[index],
            )

    def test_batches(self, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        for start in range(0, self.test_size, batch_size):
            yield self.test_x[start : start + batch_size], self.test_y[start : start + batch_size]

    def probe(self, n: int) -> Tensor:
        """The first n training images, centre-cropped and unaugmented."""
        return centre(self.train_x[:n], self.input_shape[1:])
