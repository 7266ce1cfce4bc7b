"""The report's figures as matplotlib figures (docs/api.md; elubench.api.plots draws them).
Importing this module loads no plotting library; each function does when it draws."""

from elubench.api.plots import (
    across_forest,
    bias_shift,
    critical_difference,
    error_curves,
    forest,
    loss_curves,
    paired_seeds,
)

__all__ = [
    "across_forest",
    "bias_shift",
    "critical_difference",
    "error_curves",
    "forest",
    "loss_curves",
    "paired_seeds",
]
