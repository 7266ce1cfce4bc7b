"""Preprocessing fitted on the training images only: ``standardize`` (per-channel mean and
std) or ``gcn-zca`` (pylearn2's global contrast normalization, then ZCA whitening; the fit is
cached on disk, keyed by a hash of everything it depends on), and the cache writer."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from elubench.core.files import write_bytes_atomic
from elubench.data.sources import Raw
from elubench.spec.data_section import Data

ZCA_VERSION = 1  # bump when the GCN/ZCA formulas change: old cache files stop matching


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
    parts = {
        "version": ZCA_VERSION,
        "dataset": data.dataset,
        "train_limit": data.train_limit,
        "gcn_scale": data.gcn_scale,
        "zca_bias": data.zca_bias,
        "shape": list(raw.train_x.shape),
        "dtype": str(raw.train_x.dtype),
        "pixels": pixels.hexdigest(),
    }
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
    """Build a cache file in memory with ``write(buffer)`` and write it atomically
    (elubench.core.files.write_bytes_atomic), so readers never see half of it. A cache that cannot
    be written costs only a refit next time: a warning, not an error."""
    try:
        buffer = io.BytesIO()
        write(buffer)
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as exc:
        warnings.warn(f"could not write the cache file {path}: {exc}", stacklevel=2)


def preprocess(
    data: Data, raw: Raw, device: torch.device, cache_dir: Path
) -> tuple[Tensor, Tensor, dict]:
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
