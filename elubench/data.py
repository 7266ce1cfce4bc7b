"""Datasets as the trainer sees them: preprocessed once, batched and augmented on the device.

``load_data(spec.data, device=...)`` returns one of two sources with the same interface:

* :class:`InMemoryData` (digits, synthetic, mnist, cifar10, cifar100): the whole set lives on
  the device as channels_last float32 tensors. Every epoch draws its permutation, crop offsets
  and flips in one go from a CPU generator seeded by ``derive_seed(seed, "data", epoch)``, so
  for one seed every activation sees the same data order and augmentation, and a run resumed at
  epoch e replays epoch e exactly. A batch is one gather (select, crop, flip) on the device,
  with no host synchronisation.
* :class:`StreamData` (imagefolder): torchvision's ImageFolder behind a DataLoader. Each sample
  is transformed under its own seed drawn from the same per-epoch generator, so augmentation
  depends on (seed, epoch, position) and not on the number of workers.

Sources and splits:

* digits: scikit-learn's ``load_digits`` (1,797 8x8 images, 16 grey levels). Fixed split, no
  RNG: within each class, in the dataset's order, every 4th image (the 4th, 8th, ...) is a test
  image and the rest train: 1,352 train / 445 test, each class 3:1.
* synthetic: see :func:`synthetic_images`; the first ``train_size`` images train.
* mnist, cifar10, cifar100: torchvision's own files and splits under the data directory
  (``--data-dir``, else $ELUBENCH_DATA_DIR, else $XDG_CACHE_HOME/elubench/data, else
  ~/.cache/elubench/data); fetched only with ``download=True``.
* imagefolder: ``root/train/<class>/`` and ``root/val/<class>/``. The files are sorted by
  class, so ``train_limit``/``test_limit`` and the probe take evenly spaced images instead of
  the first N, which would hold only the first classes.

``train_limit``/``test_limit`` cut the sets before any preprocessing is fitted. Preprocessing is
fitted on the training images only: ``none`` (pixels in [0, 1]), ``standardize`` (per-channel
mean and std) or ``gcn-zca`` (pylearn2's global contrast normalization, then ZCA whitening;
the fit is cached on disk, keyed by a hash of everything it depends on). Zero padding for the
random crop is applied after preprocessing; test images and the probe are centre-cropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from elubench.errors import DataError
from elubench.init import derive_seed
from elubench.spec import Data, Synthetic

ZCA_VERSION = 1  # bump when the GCN/ZCA formulas change: old cache files stop matching
STATS_SAMPLE = 1000  # imagefolder: training images that estimate the channel mean and std


def default_data_dir() -> Path:
    """Where downloaded datasets live when no --data-dir is given."""
    if os.environ.get("ELUBENCH_DATA_DIR"):
        return Path(os.environ["ELUBENCH_DATA_DIR"]).expanduser()
    return _cache_home() / "elubench" / "data"


def default_cache_dir() -> Path:
    """Where expensive one-off fits (ZCA, channel statistics) are kept."""
    return _cache_home() / "elubench" / "cache"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


# --- raw images ---------------------------------------------------------------------------------

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
    return Raw(x[~mask], y[~mask], x[mask], y[mask], 16.0, "sklearn.datasets.load_digits",
               "within each class, in dataset order, every 4th image is test (no RNG)")


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
    templates = F.interpolate(grid, size=(h + 2 * shift, w + 2 * shift), mode="bilinear",
                              align_corners=False)
    templates = (templates - templates.mean((1, 2, 3), keepdim=True)) / \
        templates.std((1, 2, 3), keepdim=True, correction=0).clamp_min(1e-6)
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
    return Raw(images[:split], labels[:split], images[split:], labels[split:], 1.0,
               f"synthetic templates (seed {cfg.seed}, noise {cfg.noise})",
               f"generated: first {cfg.train_size} train, next {cfg.test_size} test")


TORCHVISION = {"mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def torchvision_raw(name: str, root: Path, download: bool) -> Raw:
    """MNIST / CIFAR-10 / CIFAR-100 read in bulk through torchvision's own loaders."""
    from torchvision import datasets  # imported here: its second is not for digits or synthetic
    cls = getattr(datasets, TORCHVISION[name])
    sets = [_open_torchvision(cls, name, root, train, download) for train in (True, False)]
    arrays = []
    for dataset in sets:
        x = torch.as_tensor(np.asarray(dataset.data))
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # CIFAR stores N x H x W x C
        arrays += [x.contiguous(), torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)]
    return Raw(*arrays, 255.0, f"torchvision.datasets.{cls.__name__} in {root}",
               "the dataset's official train/test split")


def _open_torchvision(cls, name: str, root: Path, train: bool, download: bool):
    """One split of a torchvision dataset, its failures turned into DataError."""
    try:
        return cls(str(root), train=train, download=download)
    except (RuntimeError, OSError) as exc:
        if not download:
            raise DataError(f"{name} was not found (or is incomplete) in {root}",
                            hint="pass --download to fetch it there, or --data-dir DIR pointing "
                                 "at a directory that holds it") from None
        url = getattr(cls, "url", None) or next(iter(getattr(cls, "mirrors", [])), None)
        host = f" from {urlparse(url).hostname}" if url else ""
        raise DataError(f"downloading {name}{host} into {root} failed: {exc}",
                        hint="check the network, or fetch the files by hand and pass "
                             "--data-dir") from None


def read_raw(data: Data, data_dir: Path | None, download: bool) -> Raw:
    """The raw images of an in-memory dataset, cut to train_limit / test_limit."""
    if data.dataset == "digits":
        raw = digits_raw()
    elif data.dataset == "synthetic":
        raw = synthetic_images(data.synthetic)
    else:
        root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        raw = torchvision_raw(data.dataset, root, download)
    train, test = slice(data.train_limit), slice(data.test_limit)
    return Raw(raw.train_x[train], raw.train_y[train], raw.test_x[test], raw.test_y[test],
               raw.scale, raw.source, raw.split)


# --- preprocessing --------------------------------------------------------------------------

def standardize(train: Tensor, test: Tensor) -> tuple[Tensor, Tensor, dict]:
    """Per-channel mean and std of the training pixels, applied to both sets."""
    var, mean = torch.var_mean(train, dim=(0, 2, 3), correction=0, keepdim=True)
    std = var.sqrt().clamp_min(1e-8)
    stats = {"mean": mean.flatten().tolist(), "std": std.flatten().tolist()}
    return (train - mean) / std, (test - mean) / std, stats


def gcn(x: Tensor, scale: float) -> Tensor:
    """pylearn2's global contrast normalization: centre each image, then scale its L2 norm to
    `scale` (images with a norm below 1e-8 * scale are only centred)."""
    flat = x.flatten(1)
    flat = flat - flat.mean(1, keepdim=True)
    norm = flat.pow(2).sum(1, keepdim=True).sqrt() / scale
    return (flat / torch.where(norm < 1e-8, torch.ones_like(norm), norm)).view_as(x)


def fit_zca(flat: Tensor, bias: float) -> tuple[Tensor, Tensor]:
    """ZCA whitening of N x D rows, in float64: the mean and W = U diag(1/sqrt(eig + bias)) U^T."""
    centred = flat.double()
    mean = centred.mean(0)
    centred -= mean  # in place: for CIFAR this copy alone is 1.2 GB
    eig, basis = torch.linalg.eigh(centred.T @ centred / centred.shape[0])
    whiten = (basis * (eig.clamp_min(0) + bias).rsqrt()) @ basis.T
    return mean.float(), whiten.float()


def zca_key(data: Data, raw: Raw) -> str:
    """A hash of everything the GCN + ZCA fit depends on, including a checksum of the pixels."""
    pixels = hashlib.blake2b(raw.train_x.contiguous().numpy().tobytes(), digest_size=16)
    parts = {"version": ZCA_VERSION, "dataset": data.dataset, "train_limit": data.train_limit,
             "gcn_scale": data.gcn_scale, "zca_bias": data.zca_bias,
             "shape": list(raw.train_x.shape), "dtype": str(raw.train_x.dtype),
             "pixels": pixels.hexdigest()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def cached_zca(flat: Tensor, bias: float, path: Path) -> tuple[Tensor, Tensor]:
    """The ZCA fit from `path` when it holds a valid one, else fitted now and saved there."""
    dim = flat.shape[1]
    try:
        with np.load(path, allow_pickle=False) as saved:
            mean, whiten = torch.from_numpy(saved["mean"]), torch.from_numpy(saved["whiten"])
        if mean.shape == (dim,) and whiten.shape == (dim, dim):
            return mean, whiten
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # absent or corrupt: refit below
    fit_device = flat.device if flat.device.type == "cuda" else torch.device("cpu")
    mean, whiten = (t.cpu() for t in fit_zca(flat.to(fit_device), bias))
    write_cache(path, lambda f: np.savez(f, mean=mean.numpy(), whiten=whiten.numpy()))
    return mean, whiten


def write_cache(path: Path, write: Callable) -> None:
    """Write a cache file through a temporary file and os.replace, so readers never see half
    of it. A cache that cannot be written costs only a refit next time: a warning, not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp",
                                         delete=False) as handle:
            try:
                write(handle)
            except BaseException:
                os.unlink(handle.name)
                raise
        os.replace(handle.name, path)
    except OSError as exc:
        warnings.warn(f"could not write the cache file {path}: {exc}", stacklevel=2)


def preprocess(data: Data, raw: Raw, device: torch.device,
               cache_dir: Path) -> tuple[Tensor, Tensor, dict]:
    """Both sets as float32 on the device, preprocessed with a fit on the training set."""
    train = raw.train_x.to(device).float() / raw.scale
    test = raw.test_x.to(device).float() / raw.scale
    info: dict = {"name": data.preprocess}
    if data.preprocess == "standardize":
        train, test, info["fit"] = standardize(train, test)
    elif data.preprocess == "gcn-zca":
        key = zca_key(data, raw)
        train, test = gcn(train, data.gcn_scale), gcn(test, data.gcn_scale)
        mean, whiten = cached_zca(train.flatten(1), data.zca_bias, cache_dir / f"zca-{key}.npz")
        mean, whiten = mean.to(device), whiten.to(device)
        train = ((train.flatten(1) - mean) @ whiten).view_as(train)
        test = ((test.flatten(1) - mean) @ whiten).view_as(test)
        info.update(gcn_scale=data.gcn_scale, zca_bias=data.zca_bias, cache_key=key)
    return train, test, info


# --- batching on the device -------------------------------------------------------------------

def crop_flip(images: Tensor, index: Tensor, top: Tensor, left: Tensor, flip: Tensor | None,
              size: tuple[int, int]) -> Tensor:
    """images[index], each cropped to `size` at (top, left) and mirrored where `flip`: one
    gather on the device. For channels_last input the result is channels_last too."""
    rows = top[:, None] + torch.arange(size[0], device=images.device)
    span = torch.arange(size[1], device=images.device)
    cols = left[:, None] + span
    if flip is not None:
        cols = torch.where(flip[:, None], left[:, None] + (size[1] - 1) - span, cols)
    pixels = images.permute(0, 2, 3, 1)  # N x H x W x C: contiguous for channels_last
    return pixels[index[:, None, None], rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def centre(images: Tensor, size: tuple[int, int]) -> Tensor:
    """The centre `size` crop of every image, channels_last."""
    top, left = (images.shape[2] - size[0]) // 2, (images.shape[3] - size[1]) // 2
    return images[:, :, top:top + size[0], left:left + size[1]].contiguous(
        memory_format=torch.channels_last)


class InMemoryData:
    """A dataset held on the device, batched and augmented there (see the module docstring)."""

    def __init__(self, data: Data, raw: Raw, device: torch.device, cache_dir: Path):
        self.name = data.dataset
        self.classes = data.classes()
        self.image_shape = tuple(data.image_shape())
        self.input_shape = tuple(data.input_shape())
        self.augment = data.augment
        self.device = device
        train, test, prep = preprocess(data, raw, device, cache_dir)
        pad = data.augment.pad
        self.train_x = F.pad(train, (pad,) * 4).contiguous(memory_format=torch.channels_last)
        self.test_x = centre(F.pad(test, (pad,) * 4), self.input_shape[1:])
        self.train_y, self.test_y = raw.train_y.to(device), raw.test_y.to(device)
        self.train_size, self.test_size = len(self.train_y), len(self.test_y)
        self.info = {"dataset": self.name, "source": raw.source, "split": raw.split,
                     "preprocessing": prep, "augment": data.augment.model_dump(),
                     "train_size": self.train_size, "test_size": self.test_size,
                     "classes": self.classes, "image_shape": list(self.image_shape),
                     "input_shape": list(self.input_shape)}

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, self.train_size // batch_size)

    def epoch_draws(self, epoch: int, seed: int) -> Tensor:
        """Rows: permutation, crop top, crop left, flip (0/1); from (seed, epoch) alone, on the
        CPU, so every device draws the same."""
        draw = torch.Generator().manual_seed(derive_seed(seed, "data", epoch))
        n = self.train_size
        rows, cols = (self.train_x.shape[d] - self.input_shape[d - 1] + 1 for d in (2, 3))
        return torch.stack([torch.randperm(n, generator=draw),
                            torch.randint(0, rows, (n,), generator=draw),
                            torch.randint(0, cols, (n,), generator=draw),
                            torch.randint(0, 2, (n,), generator=draw) * int(self.augment.hflip)])

    def epoch_batches(self, epoch: int, seed: int,
                      batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
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
            yield (crop_flip(self.train_x, index, top[part], left[part], flip[part],
                             self.input_shape[1:]), self.train_y[index])

    def test_batches(self, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        for start in range(0, self.test_size, batch_size):
            yield self.test_x[start:start + batch_size], self.test_y[start:start + batch_size]

    def probe(self, n: int) -> Tensor:
        """The first n training images, centre-cropped and unaugmented."""
        return centre(self.train_x[:n], self.input_shape[1:])


# --- streaming from an image folder -------------------------------------------------------------

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
        cfg = data.imagefolder
        root = Path(cfg.root).expanduser()
        folders = [self._folder(root / part) for part in ("train", "val")]
        if folders[0].classes != folders[1].classes:
            raise DataError(f"{root}/train and {root}/val hold different class folders")
        if cfg.classes is not None and cfg.classes != len(folders[0].classes):
            raise DataError(f"imagefolder.classes is {cfg.classes} but {root}/train holds "
                            f"{len(folders[0].classes)} class folders")
        if data.preprocess == "gcn-zca":
            raise DataError("preprocess: gcn-zca is not available for imagefolder (its ZCA "
                            "matrix would be too large)", hint="use standardize or none")
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
        stats = (self._channel_stats(T.Compose(base), cache_dir)
                 if data.preprocess == "standardize" else None)
        norm = [T.Normalize(stats["mean"], stats["std"])] if stats else []
        aug, size = data.augment, self.input_shape[1:]
        crop = [T.RandomCrop(size, padding=aug.pad)] if aug.crop else []
        flip = [T.RandomHorizontalFlip()] if aug.hflip else []
        self.train_transform = T.Compose([T.Resize(cfg.resize), T.RandomCrop(cfg.crop),
                                          T.ToTensor(), *norm, *crop, *flip])
        self.test_transform = T.Compose([*base, *norm, T.Pad(aug.pad), T.CenterCrop(size)])
        self.info = {"dataset": self.name, "source": f"torchvision.datasets.ImageFolder in {root}",
                     "split": "train/ and val/ folders; limits take evenly spaced images",
                     "preprocessing": {"name": data.preprocess, "fit": stats},
                     "augment": aug.model_dump(), "train_size": self.train_size,
                     "test_size": self.test_size, "classes": self.classes,
                     "image_shape": list(self.image_shape), "input_shape": list(self.input_shape)}

    @staticmethod
    def _folder(path: Path):
        from torchvision import datasets
        if not path.is_dir():
            raise DataError(f"no folder {path}",
                            hint="imagefolder.root must hold train/<class>/ and val/<class>/")
        try:
            return datasets.ImageFolder(str(path))
        except (FileNotFoundError, OSError) as exc:
            raise DataError(f"cannot read the images in {path}: {exc}") from None

    def _loader(self, folder, samples, transform, batch_size: int, drop_last: bool = False):
        return torch.utils.data.DataLoader(
            Seeded(folder, transform), batch_size=batch_size, sampler=samples, drop_last=drop_last,
            num_workers=self.cfg.workers, pin_memory=self.device.type == "cuda")

    def _channel_stats(self, transform, cache_dir: Path) -> dict:
        """Per-channel mean and std of a fixed, evenly spaced sample of training images, cached."""
        picks = spread(STATS_SAMPLE, len(self.train))
        key = hashlib.sha256(json.dumps([str(self.train.root), self.cfg.resize, self.cfg.crop,
                                         [self.train.samples[i] for i in picks]]).encode())
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
        std = (squares / pixels - mean ** 2).clamp_min(1e-12).sqrt()
        stats = {"mean": mean.tolist(), "std": std.tolist(), "images": len(picks)}
        write_cache(path, lambda f: f.write(json.dumps(stats).encode()))
        return stats

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, self.train_size // batch_size)

    def _to_device(self, batch) -> tuple[Tensor, Tensor]:
        x, y = batch
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def epoch_batches(self, epoch: int, seed: int,
                      batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """The epoch's batches: order and per-sample augmentation seeds from (seed, epoch)."""
        draw = torch.Generator().manual_seed(derive_seed(seed, "data", epoch))
        order = torch.randperm(self.train_size, generator=draw).tolist()
        seeds = torch.randint(0, 2 ** 62, (self.train_size,), generator=draw).tolist()
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


def load_data(data: Data, *, device: torch.device | str = "cpu", data_dir: Path | None = None,
              download: bool = False, cache_dir: Path | None = None) -> InMemoryData | StreamData:
    """The dataset a spec names, preprocessed and ready to batch on `device`."""
    device = torch.device(device)
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if data.dataset == "imagefolder":
        return StreamData(data, device, cache_dir)
    raw = read_raw(data, data_dir, download)
    classes = data.classes()
    for labels in (raw.train_y, raw.test_y):
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < classes:
            raise DataError(f"{data.dataset}: labels fall outside 0..{classes - 1}")
    return InMemoryData(data, raw, device, cache_dir)
