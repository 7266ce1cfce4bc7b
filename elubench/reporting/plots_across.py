"""Figures for the summary across experiments (stats.experiments.Across), drawn like every
figure of elubench.reporting.plots (its style, colours, file formats and captions).

    cd_diagram   Demšar's critical-difference diagram: mean ranks on an axis, configurations
                 whose ranks differ by no more than Nemenyi's CD joined by a bar
    forest       per comparison, each experiment's mean per-seed difference with its CI, and
                 the random-effects pool beneath them
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

from elubench.core.errors import PlotError
from elubench.reporting.figures import FIGSIZE, VERDICT_COLOURS, Figure, need_data, save, styled


@styled
def cd_diagram(result, out_dir) -> Figure:
    cd = result.nemenyi
    if cd is None:
        raise PlotError("a critical-difference diagram needs two or more shared configurations")
    ranks = dict(zip(result.configs, result.friedman.mean_ranks))
    order = sorted(ranks, key=lambda c: (ranks[c], c))
    k = len(order)
    half = (k + 1) // 2
    rows = max(half, k - half)
    fig = MplFigure(
        figsize=(FIGSIZE[0], 1.6 + 0.28 * (rows + len(cd.cliques))), layout="constrained"
    )
    ax = fig.add_subplot()
    # room beside the axis for the longest label: its width in inches (about 0.075 in per
    # character at 8 pt), as data units of an axis 1..k drawn on the figure's width
    label_in = 0.075 * max(len(c) + 7 for c in order) + 0.1
    width_in = FIGSIZE[0] - 0.3
    pad = label_in * max(k - 1, 1) / max(width_in - 2 * label_in, 1.0) + 0.15
    ax.set_xlim(1 - pad, k + pad)
    top = 0.0
    ax.set_ylim(-(rows + 1.2), 1.6)
    ax.plot([1, k], [top, top], color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [top, top + 0.12], color="black", linewidth=1)
        ax.text(r, top + 0.22, str(r), ha="center", va="bottom", fontsize=8)
    # the CD as a bar above the axis, from rank 1
    ax.plot([1, 1 + cd.critical_difference], [1.2, 1.2], color="black", linewidth=1.5)
    ax.text(
        1 + cd.critical_difference / 2,
        1.28,
        f"CD = {cd.critical_difference:.2f}",
        ha="center",
        va="bottom",
        fontsize=8,
    )
    # best half labelled on the left, the rest on the right, each with an elbow line
    for i, config in enumerate(order):
        left = i < half
        depth = -(i + 1) if left else -(k - i)
        x_label = 0.9 if left else k + 0.1
        ax.plot(
            [ranks[config], ranks[config], x_label],
            [top, depth, depth],
            color="#444444",
            linewidth=0.8,
        )
        ax.text(
            x_label,
            depth,
            f"{config} ({ranks[config]:.2f})" if left else f"({ranks[config]:.2f}) {config}",
            ha="right" if left else "left",
            va="center",
            fontsize=8,
        )
    # cliques: thick bars just below the axis
    for j, clique in enumerate(cd.cliques):
        y = -0.35 - 0.22 * j
        ax.plot(
            [ranks[clique[0]] - 0.05, ranks[clique[-1]] + 0.05],
            [y, y],
            color="black",
            linewidth=3,
            solid_capstyle="round",
        )
    ax.set_axis_off()
    title = "Critical-difference diagram across experiments"
    ax.set_title(title)
    caption = (
        f"Mean rank of each configuration over {len(result.experiments)} experiments "
        f"({', '.join(result.experiments)}; rank 1 = lowest mean test error in an experiment). "
        f"Bars join configurations whose mean ranks differ by no more than Nemenyi's critical "
        f"difference at α {cd.alpha:g} (CD = {cd.critical_difference:.2f}, q = {cd.q_alpha:.3f}): "
        f"those are not significantly different. Friedman p = {result.friedman.p:.2g}."
    )
    return save(fig, out_dir, "cd-diagram.png", title, caption)


@styled
def forest(result, out_dir) -> Figure:
    per, meta = result.per_experiment, result.meta
    need_data(meta, "comparisons across experiments")
    unit = result.unit
    blocks = list(meta.itertuples())
    n_rows = sum(len(result.experiments) + 1 for _ in blocks) + len(blocks) - 1
    fig = MplFigure(figsize=(FIGSIZE[0], max(2.8, 0.26 * n_rows + 1.4)), layout="constrained")
    ax = fig.add_subplot()
    ax.axvline(0, color="black", linewidth=0.8, zorder=0)
    y, ticks, labels = 0, [], []
    for block in blocks:
        rows = per[(per["a"] == block.a) & (per["b"] == block.b)]
        for row in rows.itertuples():
            if np.isfinite(row.mean_diff):
                low, high = row.ci_low, row.ci_high
                err = (
                    None
                    if not np.isfinite(low)
                    else [[row.mean_diff - low], [high - row.mean_diff]]
                )
                size = 4 + (8 * row.weight if np.isfinite(row.weight) else 0)
                ax.errorbar(
                    row.mean_diff,
                    -y,
                    xerr=err,
                    fmt="s",
                    color="#555555",
                    markersize=size,
                    capsize=2,
                    alpha=0.9 if np.isfinite(row.weight) else 0.4,
                )
            ticks.append(-y)
            labels.append(f"  {row.experiment} (n = {row.n_pairs})")
            y += 1
        if np.isfinite(block.estimate):
            colour = VERDICT_COLOURS.get(block.verdict, "black")
            ax.errorbar(
                block.estimate,
                -y,
                xerr=[[block.estimate - block.ci_low], [block.ci_high - block.estimate]],
                fmt="D",
                color=colour,
                markersize=7,
                capsize=3,
            )
            ax.annotate(
                f"Holm p = {block.p_holm:.2g}, I² = {100 * block.i2:.0f} %",
                (1.0, -y),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ticks.append(-y)
        labels.append(f"{block.a} vs {block.b}: pooled")
        y += 2
    ax.set_yticks(ticks, labels)
    ax.grid(axis="y", visible=False)
    title = "Differences per experiment and pooled"
    ax.set(
        xlabel=f"difference in {unit.metric} ({unit.difference}): a − b (< 0: a lower)", title=title
    )
    verdicts = [v for v in VERDICT_COLOURS if v in set(meta["verdict"])]
    fig.legend(
        handles=[
            Line2D([], [], color="#555555", marker="s", linestyle="", label="one experiment"),
            *[
                Line2D(
                    [], [], color=VERDICT_COLOURS[v], marker="D", linestyle="", label=f"pooled: {v}"
                )
                for v in verdicts
            ],
        ],
        loc="outside lower center",
        ncols=len(verdicts) + 1,
    )
    caption = (
        "For each comparison: every experiment's mean per-seed difference with its 95 % t "
        "interval (marker size: weight in the pool), and beneath them the random-effects pool "
        "(DerSimonian–Laird τ², Hartung–Knapp–Sidik–Jonkman 95 % interval on k − 1 df), coloured "
        "by its Holm-adjusted verdict; right: Holm p and I²."
    )
    return save(fig, out_dir, "forest-across.png", title, caption)


def across_figures(result, out_dir, formats=("png",)) -> list[Figure]:
    """Every figure of the summary whose data exists."""
    figures = []
    if result.nemenyi is not None:
        figures.append(cd_diagram(result, out_dir, formats=formats))
    if len(result.meta) and result.meta["estimate"].notna().any():
        figures.append(forest(result, out_dir, formats=formats))
    return figures
