"""Custom activations for elubench: copy this file and put your own function beside these.

A spec names them by file and attribute (docs/custom-activations.md):

    compare:
      activations: [activations.py:isrlu, activations.py:isrlu(alpha=3), elu, relu]

The path is read from the spec's folder. Two forms work:

- a function of a tensor, with its parameters as keyword arguments that have defaults (`isrlu`);
- a torch.nn.Module subclass, built with the parameters as keyword arguments and, when its
  constructor has a `channels` argument, the layer's channel count, so it can learn a
  parameter per channel as PReLU does (`PISRLU`).

Optional attributes an activation may declare:

- `name`: its label in tables (default: the attribute's name);
- `negative_slope`: a number, the slope for negative inputs that `init: he-aware` scales the
  initial weights by (default: plain He);
- `channelwise = True`: its output at one element may depend on other elements of the same
  channel (default: element-wise, which elubench checks);
- `kinks`: points where its derivative jumps (relu's 0), kept out of the gradient check.

Every module it builds must return a tensor of its input's shape, dtype and device, finite
for inputs from -50 to 50, with finite gradients; elubench checks this before anything trains.
"""

import torch
from torch import nn


def isrlu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """x if x >= 0 else x / sqrt(1 + alpha * x^2) (ISRLU; Carlile et al. 2017)"""
    # One expression for both sides: for x >= 0, min(x, 0) = 0 and the factor is exactly 1, so
    # the output is exactly x. No torch.where: a branch it discarded would still have its
    # gradient computed (x^2 overflows for large x), and each branch costs a pass over memory.
    negative = torch.clamp(x, max=0.0)
    return x * torch.rsqrt(1.0 + alpha * negative * negative)


class PISRLU(nn.Module):
    """ISRLU with alpha learned per channel, from `init` (the learnable-parameter example)."""

    name = "pisrlu"

    def __init__(self, channels: int, init: float = 1.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # alpha broadcast over N x C (x H x W); kept >= 0, where 1 + alpha x^2 >= 1.
        alpha = self.alpha.clamp(min=0.0).view(1, -1, *([1] * (x.dim() - 2)))
        negative = torch.clamp(x, max=0.0)
        return x * torch.rsqrt(1.0 + alpha * negative * negative)
