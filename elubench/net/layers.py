"""The net's own torch modules besides conv, FC, BN, pooling and dropout (torch.nn's): asymmetric
"same" padding, spatial pyramid pooling, global average pooling, and the autoencoder's reshape."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SpatialPyramidPool(nn.Module):
    """SPP-net: adaptive max pooling to each level's n x n grid, flattened and concatenated."""

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        self.levels = tuple(levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in self.levels], dim=1)

    def extra_repr(self) -> str:
        return f"levels={list(self.levels)}"


class SamePad(nn.Module):
    """Asymmetric zero padding (left, right, top, bottom): "same" size for an even kernel."""

    def __init__(self, pad: tuple[int, int, int, int]):
        super().__init__()
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad)


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Unflatten(nn.Module):
    """Reshape flat outputs back to the input's image shape (the autoencoder's reconstruction)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)
