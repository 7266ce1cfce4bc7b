"""The figures of one experiment's comparison: every run's final score paired by seed, and the
paired differences with their intervals and verdicts (forest plot); `all_figures` writes every
figure whose data exists (with the curves of reporting.curves)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

from elubench.core.units import CLASSIFICATION, Unit, unit_of_tasks
from elubench.reporting.curves import bias_shift, error_curves, loss_curves
from elubench.reporting.figures import (
    FIGSIZE,
    VERDICT_COLOURS,
    Figure,
    activation_color,
    finite_rows,
    identities,
    left_out_text,
    log_if_wide,
    need_data,
    ok_rows,
    ordered,
    save,
    seeds_text,
    styled,
)


@styled
def paired_seeds(runs: pd.DataFrame, out_dir, unit: Unit = CLASSIFICATION) -> Figure:
    """Final test error of every run, one line per seed across configurations (paired design)."""
    scale, label = unit.scale, unit.curve
    ok = finite_rows(runs[runs["status"] == "ok"], "test_error")
    need_data(ok, "final test errors")
    configs = ordered(runs)
    identity = identities(runs)
    x = {config: i for i, config in enumerate(configs)}
    fig = MplFigure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    for _, seed_runs in ok.groupby("seed"):
        y = np.full(len(configs), np.nan)  # a missing run breaks the seed's line
        y[[x[c] for c in seed_runs["config"]]] = seed_runs["test_error"] * scale
        ax.plot(
            range(len(configs)),
            y,
            color="0.6",
            linewidth=0.8,
            marker="o",
            markersize=2.5,
            alpha=0.8,
            zorder=1,
        )
    means = ok.groupby("config")["test_error"].mean() * scale
    for config, mean in means.items():
        activation, batchnorm, _ = identity[config]
        colour = activation_color(activation)
        ax.scatter(
            x[config],
            mean,
            marker="D",
            s=50,
            zorder=3,
            edgecolors=colour,
            linewidths=1.5,
            facecolors="white" if batchnorm else colour,
        )
    bad = runs[runs["status"] != "ok"].groupby("config")["status"].value_counts()
    labels = [
        config + "".join(f"\n({n} {status})" for (c, status), n in bad.items() if c == config)
        for config in configs
    ]
    crowded = len(configs) > 4
    ax.set_xticks(
        range(len(configs)), labels, rotation=30 * crowded, ha="right" if crowded else "center"
    )
    log = log_if_wide(ax, ok["test_error"] * scale)
    title = "Final test error, paired by seed"
    ax.set(ylabel=label + (" (log scale)" if log else ""), title=title)
    ax.legend(
        handles=[
            Line2D([], [], color="0.6", marker="o", markersize=2.5, label="one seed"),
            Line2D([], [], color="0.3", marker="D", linestyle="", label="mean (hollow: BN)"),
        ],
        loc="best",
    )
    caption = (
        f"Final {label} of each run that ended ok. Grey line: one seed, joining its runs "
        "across configurations (same initial weight draws and data order); diamond: mean over "
        f"seeds, hollow with batch norm; {seeds_text(ok)}{'; log y axis' if log else ''}."
        + left_out_text(runs)
    )
    return save(fig, out_dir, "paired_seeds.png", title, caption)


@styled
def forest(
    comparisons,
    out_dir,
    baseline: str | None = None,
    *,
    n_seeds: int | str | None = None,
    unit: Unit = CLASSIFICATION,
) -> Figure:
    """Paired differences with 95 % CIs, one row per comparison, the largest improvement on top.

    `comparisons` is the table of `stats.paired_comparisons` (or that result itself); rows it
    could not test (NaN difference) are named in the caption instead of drawn.
    """
    table = getattr(comparisons, "table", comparisons)
    untestable = table[table["mean_diff_pp"].isna()]
    data = table[table["mean_diff_pp"].notna()].sort_values("mean_diff_pp", ascending=False)
    need_data(data, "comparisons")
    data = data.reset_index(drop=True)
    label = f"{unit.metric} ({unit.difference})"
    fig = MplFigure(figsize=(FIGSIZE[0], max(2.5, 0.35 * len(data) + 1.6)), layout="constrained")
    ax = fig.add_subplot()
    ax.axvline(0, color="black", linewidth=0.8, zorder=0)
    for y, row in data.iterrows():
        colour = VERDICT_COLOURS.get(row["verdict"], "black")
        err = [[row["mean_diff_pp"] - row["ci_low"]], [row["ci_high"] - row["mean_diff_pp"]]]
        ax.errorbar(
            row["mean_diff_pp"], y, xerr=err, fmt="o", color=colour, capsize=3, markersize=5
        )
        if pd.notna(row.get("p_holm")):
            ax.annotate(
                f"Holm p = {row['p_holm']:.2g}",
                (1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    ax.set_yticks(range(len(data)), [f"{r.a} vs {r.b}" for r in data.itertuples()])
    ax.set_ylim(-0.7, len(data) - 0.3)
    ax.grid(axis="y", visible=False)
    title = f"Activation comparisons (baseline {baseline})" if baseline else "Paired comparisons"
    ax.set(xlabel=f"difference in {label}: a − b (< 0: a lower)", title=title)
    verdicts = [v for v in VERDICT_COLOURS if v in set(data["verdict"])]
    fig.legend(
        handles=[
            Line2D([], [], color=VERDICT_COLOURS[v], marker="o", linestyle="", label=v)
            for v in verdicts
        ],
        loc="outside lower center",
        ncols=max(len(verdicts), 1),
    )
    if "n_pairs" in data:
        low, high = int(data["n_pairs"].min()), int(data["n_pairs"].max())
        n_seeds = low if low == high else f"{low}–{high}"
    seeds = f" over n = {n_seeds} paired seeds" if n_seeds else ""
    caption = (
        f"Mean per-seed difference in {label}, a − b{seeds} (negative: a has the lower "
        "error), with its 95 % t confidence interval; colour: verdict; right: "
        "Holm-corrected p. Sorted with the largest improvement on top."
    )
    if len(untestable):
        caption += (
            " Not testable (too few paired seeds): "
            + ", ".join(f"{r.a} vs {r.b}" for r in untestable.itertuples())
            + "."
        )
    return save(fig, out_dir, "forest.png", title, caption)


def all_figures(
    results,
    comparisons: pd.DataFrame | None,
    out_dir,
    baseline: str | None = None,
    formats=("png",),
) -> list[Figure]:
    """Every figure whose data exists: no curves without metrics, no bias shift without
    activation records, no forest plot for a single configuration or without comparisons.
    Each is written in `formats` (PNG always)."""
    runs, metrics, activations = results.runs, results.metrics, results.activations

    def has(frame, column):
        return (
            frame is not None
            and column in frame
            and not finite_rows(ok_rows(frame, runs), column).empty
        )

    unit = unit_of_tasks(runs["task"]) or CLASSIFICATION
    figures = []
    if has(metrics, "test_error"):
        figures.append(error_curves(metrics, out_dir, unit, runs=runs, formats=formats))
    if has(metrics, "train_loss"):
        figures.append(loss_curves(metrics, out_dir, runs=runs, formats=formats))
    if has(activations, "median"):
        figures.append(bias_shift(activations, out_dir, runs=runs, formats=formats))
    if has(runs, "test_error"):
        figures.append(paired_seeds(runs, out_dir, unit, formats=formats))
    table = getattr(comparisons, "table", comparisons)
    if (
        table is not None
        and "mean_diff_pp" in table
        and table["mean_diff_pp"].notna().any()
        and runs["config"].nunique() > 1
    ):
        n_seeds = int(runs.loc[runs["status"] == "ok", "seed"].nunique())
        figures.append(
            forest(table, out_dir, baseline, n_seeds=n_seeds, unit=unit, formats=formats)
        )
    return figures
