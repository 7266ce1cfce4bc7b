"""Figures of training over time, per configuration: test error, training loss, and the bias
shift (the ELU paper's Figure 2 idea), each a mean over seeds (see reporting.figures for the style)."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure as MplFigure

from elubench.core.units import CLASSIFICATION, Unit
from elubench.reporting.figures import (
    FIGSIZE,
    Figure,
    finite_rows,
    left_out_text,
    line_styles,
    log_if_wide,
    need_data,
    ok_rows,
    ordered,
    save,
    seeds_text,
    styled,
)


def seed_summary(frame: pd.DataFrame, value: str, by=("config", "iteration")) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1) and number of seeds of `value` per group in `by`.

    This is what the curve figures draw: the line is `mean`, the band `mean ± std`.
    """
    data = finite_rows(frame, value)
    return data.groupby(list(by))[value].agg(mean="mean", std="std", n="count").reset_index()


def _curves(
    frame, runs, value: str, scale: float, ylabel: str, title: str, what: str, name: str, out_dir
) -> Figure:
    """Mean-over-seeds curve per configuration with a ±1 std band (error and loss figures)."""
    data = finite_rows(ok_rows(frame, runs), value)
    need_data(data, what)
    summary = seed_summary(data, value)
    configs = ordered(data)
    styles = line_styles(data, configs)
    fig = MplFigure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    for config in configs:
        rows = summary[summary["config"] == config]
        mean, spread = rows["mean"] * scale, rows["std"].fillna(0) * scale
        ax.plot(rows["iteration"], mean, label=config, linewidth=1.5, **styles[config])
        ax.fill_between(
            rows["iteration"],
            mean - spread,
            mean + spread,
            alpha=0.15,
            linewidth=0,
            color=styles[config]["color"],
        )
    log = log_if_wide(ax, summary["mean"] * scale)
    ax.set(
        xlabel="training iteration", ylabel=ylabel + (" (log scale)" if log else ""), title=title
    )
    fig.legend(loc="outside right upper", title="configuration")
    caption = (
        f"{what[0].upper() + what[1:]} vs training iteration. Line: mean over seeds of each "
        f"configuration; band: ±1 standard deviation across seeds; {seeds_text(data)}; "
        f"dashed = with batch norm{'; log y axis' if log else ''}." + left_out_text(runs)
    )
    return save(fig, out_dir, name, title, caption)


@styled
def error_curves(
    metrics: pd.DataFrame, out_dir, unit: Unit = CLASSIFICATION, *, runs: pd.DataFrame | None = None
) -> Figure:
    """Test error (%; reconstruction MSE for the autoencoder) over training, per configuration.

    With `runs`, only runs that ended ok are drawn and the caption names the others.
    """
    return _curves(
        metrics,
        runs,
        "test_error",
        unit.scale,
        unit.curve,
        f"{unit.metric[0].upper()}{unit.metric[1:]} during training",
        unit.curve,
        "error_curves.png",
        out_dir,
    )


@styled
def loss_curves(metrics: pd.DataFrame, out_dir, *, runs: pd.DataFrame | None = None) -> Figure:
    """Training loss over training, per configuration (log axis when it spans > 1 decade)."""
    return _curves(
        metrics,
        runs,
        "train_loss",
        1.0,
        "training loss",
        "Training loss",
        "training loss (mean over the iterations since the previous evaluation)",
        "loss_curves.png",
        out_dir,
    )


@styled
def bias_shift(activations: pd.DataFrame, out_dir, *, runs: pd.DataFrame | None = None) -> Figure:
    """The ELU paper's Figure 2 idea: does a layer's typical unit mean drift away from zero?

    One panel per configuration; one line per hidden layer, coloured by depth: the median over
    units of each unit's mean activation, averaged over seeds, against iteration.
    """
    data = finite_rows(ok_rows(activations, runs), "median")
    need_data(data, "the bias shift")
    layers = list(dict.fromkeys(data["layer"]))  # rows keep forward order within a run
    depth = {layer: i + 1 for i, layer in enumerate(layers)}
    summary = seed_summary(data, "median", by=("config", "layer", "iteration"))
    configs = ordered(data, bn_last=True)
    n = len(configs)
    ncols = 3 if n in (5, 6, 9) else 2 if n == 4 else min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = MplFigure(figsize=(min(2.8 * ncols + 1.6, 14), 2.3 * nrows + 1.0), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    cmap = matplotlib.colormaps["viridis"].resampled(len(layers))
    norm = BoundaryNorm(np.arange(0.5, len(layers) + 1), cmap.N)
    for ax, config in zip(axes, configs):
        rows = summary[summary["config"] == config]
        for layer in layers:  # forward order: the deepest layer is drawn on top
            line = rows[rows["layer"] == layer]
            ax.plot(line["iteration"], line["mean"], color=cmap(norm(depth[layer])), linewidth=1.2)
        ax.axhline(0, color="black", linewidth=0.8, zorder=0)
        ax.set_title(config)
    for ax in axes[n:]:
        ax.remove()
    for i, ax in enumerate(axes[:n]):
        if i + ncols >= n:  # nothing below this panel: it carries the x axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("iteration")
        if i % ncols == 0:
            ax.set_ylabel("median unit mean")
    ticks = list(depth.values()) if len(layers) <= 12 else [1, len(layers)]
    bar = fig.colorbar(ScalarMappable(norm, cmap), ax=list(axes[:n]), ticks=ticks, shrink=0.9)
    bar.ax.set_yticklabels([layers[t - 1] for t in ticks])
    bar.set_label("hidden layer (top = deepest)")
    title = "Bias shift: median over units of each unit's mean activation"
    fig.suptitle(title)
    caption = (
        f"One panel per configuration: for each of the {len(layers)} hidden layers "
        "(colour = depth, dark = first), the median over its units of each unit's mean "
        "activation on a fixed probe batch, against training iteration; each line is the "
        f"mean over seeds ({seeds_text(data)}); black line = 0. The shared y axis "
        "compares how far activations drift from zero." + left_out_text(runs)
    )
    return save(fig, out_dir, "bias_shift.png", title, caption)
