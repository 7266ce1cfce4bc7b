"""Weight initialization with paired draws, and the hash that proves the pairing.

For one seed, the k-th conv/FC layer's weights come from their own generator, seeded by
(seed, k) alone. So a layer's unit draws (standard normal; uniform under torch-default) are the
same for every activation, BN setting and init scheme, whatever parameters an activation or BN
adds, and whatever order modules are created in. What the schemes make of them:

- he, xavier, torch-default: every activation and BN setting gets bit-identical weights
  (equal `init_hash`);
- he-aware: the draws are scaled by 1/sqrt(1 + a^2), a the activation's negative slope, so
  lrelu and prelu get the same draws at a smaller scale (another `init_hash`) and the other
  activations (a = 0 or none) exactly the weights of he;
- he and xavier share the draws but not the scale (a constant factor per layer).

The schemes scale the unit draws:

    he             N(0, 2 / fan_in)                 fan_in = in_channels * k * k
    he-aware       N(0, 2 / ((1 + a^2) fan_in))     a: the activation's negative slope
    xavier         N(0, 2 / (fan_in + fan_out))     fan_out = out_channels * k * k
    torch-default  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases (PyTorch's own)

Biases start at zero except under torch-default. Draws happen on the CPU, so a seed gives the
same weights on every device.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

from elubench.core.seeds import derive_seed

SCHEMES = ("he", "he-aware", "xavier", "torch-default")


def linear_layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """The conv and FC layers, in forward order."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = weight[0, 0].numel() if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@torch.no_grad()
def initialize(
    model: nn.Module, scheme: str, seed: int, negative_slope: float | None = None
) -> None:
    """Initialize every conv/FC layer of `model` in place, paired by `seed`."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    for index, layer in enumerate(linear_layers(model)):
        weight = layer.weight
        fan_in, fan_out = _fans(weight)
        draw = torch.Generator().manual_seed(derive_seed(seed, "weight", index))
        if scheme == "torch-default":
            bound = 1.0 / math.sqrt(fan_in)
            values = (torch.rand(weight.shape, generator=draw) * 2 - 1) * bound
        else:
            if scheme == "he":
                std = math.sqrt(2.0 / fan_in)
            elif scheme == "he-aware":
                a = negative_slope or 0.0
                std = math.sqrt(2.0 / ((1.0 + a * a) * fan_in))
            else:
                std = math.sqrt(2.0 / (fan_in + fan_out))
            values = torch.randn(weight.shape, generator=draw) * std
        weight.copy_(values)
        if layer.bias is not None:
            if scheme == "torch-default":
                bias_draw = torch.Generator().manual_seed(derive_seed(seed, "bias", index))
                bound = 1.0 / math.sqrt(fan_in)
                layer.bias.copy_(
                    (torch.rand(layer.bias.shape, generator=bias_draw) * 2 - 1) * bound
                )
            else:
                layer.bias.zero_()


def init_hash(model: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of every conv/FC weight: equal hashes, equal start."""
    digest = hashlib.sha256()
    for layer in linear_layers(model):
        weight = layer.weight.detach().to("cpu", torch.float32).contiguous()
        digest.update(repr(tuple(weight.shape)).encode())
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()[:16]
