"""Augmentation as tensor ops on the device: a batch's crops and flips in one gather, and the
centre crop of test images and the probe."""

from __future__ import annotations

import torch
from torch import Tensor


def crop_flip(
    images: Tensor,
    index: Tensor,
    top: Tensor,
    left: Tensor,
    flip: Tensor | None,
    size: tuple[int, int],
) -> Tensor:
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
    return images[:, :, top : top + size[0], left : left + size[1]].contiguous(
        memory_format=torch.channels_last
    )
