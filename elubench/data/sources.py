"""Raw images as read: the fixed datasets (digits, synthetic, torchvision's MNIST and CIFAR),
as N x C x H x W tensors in their stored dtype, before any preprocessing.

Splits: digits has elubench's fixed every-4th-per-class test split (no RNG), synthetic takes
its first ``train_size`` images for training, and the torchvision datasets keep their official
train/test split. ``read_raw`` cuts the sets to ``train_limit``/``test_limit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from elubench.core.errors import DataError
from elubench.core.paths import default_data_dir
from elubench.core.seeds import derive_seed
from elubench.data.augment import crop_flip
from elubench.spec.data_section import DATASETS, Data, Synthetic


@dataclass
class Raw:
    """A dataset as read: N x C x H x W images (any dtype), int64 labels, and their origin."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    scale: float  # dividing by it maps the pixels to [0, 1]
    source: str
    split: str


def digits_raw() -> Raw:
    """scikit-learn's digits with the fixed every-4th-per-class test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    labels = bunch.target
    rank = np.zeros(len(labels), dtype=np.int64)  # position of each image within its class
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank[members] = np.arange(len(members))
    test = rank % 4 == 3
    x = torch.from_numpy(bunch.images.astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    mask = torch.from_numpy(test)
    return Raw(
        x[~mask],
        y[~mask],
        x[mask],
        y[mask],
        16.0,
        "sklearn.datasets.load_digits",
        "within each class, in dataset order, every 4th image is test (no RNG)",
    )


def synthetic_images(cfg: Synthetic) -> Raw:
    """A learnable, seeded image set of any shape and class count.

    Each class has a smooth random template (a 4x4 grid of normal draws per channel, upsampled
    bilinearly, standardized). An image is its class template shifted by up to 1/8 of the
    side, with a random contrast and brightness, on a grey of 0.5, plus Gaussian pixel noise.
    The noise std grows with sqrt(pixels), so ``noise: 1`` is about equally hard at any size:
    with 10 classes and 5,000 training images a nearest-class-mean classifier gets 75-90 %
    (80 % at 3x32x32), 35-50 % at ``noise: 2``; a small CNN learns it too.
    """
    draw = torch.Generator().manual_seed(derive_seed("synthetic", cfg.seed))
    c, h, w = cfg.shape
    shift = max(1, min(h, w) // 8)
    grid = torch.randn(cfg.classes, c, 4, 4, generator=draw)
    templates = F.interpolate(
        grid, size=(h + 2 * shift, w + 2 * shift), mode="bilinear", align_corners=False
    )
    templates = (templates - templates.mean((1, 2, 3), keepdim=True)) / templates.std(
        (1, 2, 3), keepdim=True, correction=0
    ).clamp_min(1e-6)
    n = cfg.train_size + cfg.test_size
    labels = (torch.arange(n) % cfg.classes)[torch.randperm(n, generator=draw)]
    top, left = torch.randint(0, 2 * shift + 1, (2, n), generator=draw)
    contrast = torch.exp(0.2 * torch.randn(n, 1, 1, 1, generator=draw))
    brightness = 0.3 * torch.randn(n, 1, 1, 1, generator=draw)
    images = crop_flip(templates, labels, top, left, None, (h, w)) * contrast + brightness
    sigma = 0.035 * cfg.noise * math.sqrt(c * h * w)
    images = 0.5 + 0.15 * images + sigma * torch.randn(n, c, h, w, generator=draw)
    images = images.contiguous()
    split = cfg.train_size
    return Raw(
        images[:split],
        labels[:split],
        images[split:],
        labels[split:],
        1.0,
        f"synthetic templates (seed {cfg.seed}, noise {cfg.noise})",
        f"generated: first {cfg.train_size} train, next {cfg.test_size} test",
    )


def torchvision_raw(name: str, root: Path, download: bool) -> Raw:
    """MNIST / CIFAR-10 / CIFAR-100 read in bulk through torchvision's own loaders."""
    from torchvision import datasets  # imported here: its second is not for digits or synthetic

    cls = getattr(datasets, str(DATASETS[name].torchvision))
    sets = [_open_torchvision(cls, name, root, train, download) for train in (True, False)]
    arrays = []
    for dataset in sets:
        x = torch.as_tensor(np.asarray(dataset.data))
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # CIFAR stores N x H x W x C
        arrays += [x.contiguous(), torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)]
    train_x, train_y, test_x, test_y = arrays
    return Raw(
        train_x,
        train_y,
        test_x,
        test_y,
        255.0,
        f"torchvision.datasets.{cls.__name__} in {root}",
        "the dataset's official train/test split",
    )


def download_torchvision(name: str, root: Path) -> None:
    """Fetch MNIST / CIFAR-10 / CIFAR-100 into `root` through torchvision's own download (both
    splits; it skips what is there); DataError naming the host when it fails."""
    from torchvision import datasets

    cls = getattr(datasets, str(DATASETS[name].torchvision))
    for train in (True, False):
        _open_torchvision(cls, name, root, train, download=True)


def _open_torchvision(cls, name: str, root: Path, train: bool, download: bool):
    """One split of a torchvision dataset, its failures turned into DataError."""
    try:
        return cls(str(root), train=train, download=download)
    except (RuntimeError, OSError) as exc:
        if not download:
            raise DataError(
                f"{name} was not found (or is incomplete) in {root}",
                hint="pass --download to fetch it there, or --data-dir DIR pointing "
                "at a directory that holds it",
            ) from None
        url = getattr(cls, "url", None) or next(iter(getattr(cls, "mirrors", [])), None)
        host = f" from {urlparse(url).hostname}" if url else ""
        raise DataError(
            f"downloading {name}{host} into {root} failed: {exc}",
            hint="check the network, or fetch the files by hand and pass --data-dir",
        ) from None


def read_raw(data: Data, data_dir: Path | None, download: bool) -> Raw:
    """The raw images of an in-memory dataset, cut to train_limit / test_limit."""
    if data.dataset == "digits":
        raw = digits_raw()
    elif data.dataset == "synthetic":
        raw = synthetic_images(data.synthetic_section())
    else:
        root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        raw = torchvision_raw(data.dataset, root, download)
    train, test = slice(data.train_limit), slice(data.test_limit)
    return Raw(
        raw.train_x[train],
        raw.train_y[train],
        raw.test_x[test],
        raw.test_y[test],
        raw.scale,
        raw.source,
        raw.split,
    )
