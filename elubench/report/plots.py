"""Figures for `elubench report`: one figure for each question a reader asks of a comparison.

Each function takes tables from `results.load_results` (or the comparisons table of `stats`),
writes one PNG with a stable name into `out_dir` (and the same figure as PDF or SVG beside it,
for papers, with `formats=("png", "pdf")`) and returns a `Figure` whose caption says what is
drawn (the statistic, the band, how many seeds), so a report can print it under the image.
Figures are built with matplotlib's object API on the Agg canvas: no window, no pyplot state,
nothing kept alive after saving. One activation has one colour in every figure; BN is dashed.
"""

from __future__ import annotations

import contextvars
import functools
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

from elubench.core.errors import ElubenchError

FIGSIZE = (7.0, 4.5)
DPI = 150
_STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
          "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
          "grid.alpha": 0.3, "grid.linewidth": 0.6, "legend.frameon": False,
          # vector files for papers: TrueType fonts in PDFs (Type 3 ones are refused by some
          # publishers' checks), text as paths in SVGs, and fixed SVG ids so reruns match
          "pdf.fonttype": 42, "svg.fonttype": "path", "svg.hashsalt": "elubench"}
# The files each figure is written as: PNG (what REPORT.md and REPORT.html show) first, then
# vector formats for papers; no dates inside them, so a rerun on the same data writes the same bytes.
FORMATS = ("png", "pdf", "svg")
_METADATA = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}
_formats = contextvars.ContextVar("formats", default=("png",))
# The i-th activation of the registry (`elubench activations`) gets the i-th colour; names
# past the list, or not in the registry, get a colour from a hash of the name.
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf",
            "#e377c2", "#bcbd22", "#7f7f7f", "#393b79", "#637939")
_VERDICT_COLOURS = {"better": "#1b7837", "worse": "#b2182b", "no evidence": "#7f7f7f"}


class PlotError(ElubenchError):
    """The tables hold no data for the requested figure."""


@dataclass(frozen=True)
class Figure:
    """One written figure: the PNG, a caption saying what it shows, its title, and every file
    written (the PNG first, then the PDF or SVG asked for, named the same)."""

    path: Path
    caption: str
    title: str
    files: tuple[Path, ...] = ()


def _registry_rank(activation: str) -> int | None:
    """The activation's place in the registry (`lrelu(a=0.2)` has `lrelu`'s), or None."""
    from elubench.activations.registry import REGISTRY, parse_activation
    from elubench.core.errors import ActivationError
    try:
        name = parse_activation(activation).name
    except ActivationError:  # a custom activation's label
        return None
    return list(REGISTRY).index(name) if name in REGISTRY else None


def activation_color(activation: str) -> str:
    """The colour of an activation in every figure; `lrelu(0.1)` shares `lrelu`'s."""
    rank = _registry_rank(activation)
    if rank is not None and rank < len(_COLOURS):
        return _COLOURS[rank]
    colours = matplotlib.colormaps["tab20b"].colors
    return matplotlib.colors.to_hex(colours[zlib.crc32(activation.encode()) % len(colours)])


def _identities(frame: pd.DataFrame) -> dict[str, tuple[str, bool, str]]:
    """Each configuration label's activation, batch norm and init, read from the table's
    columns (labels are for display; what a configuration is, the columns say)."""
    rows = frame.drop_duplicates("config")
    return {str(c): (str(a), bool(b), str(i)) for c, a, b, i in
            zip(rows["config"], rows["activation"], rows["batchnorm"], rows["init"])}


def _ordered(frame: pd.DataFrame, bn_last: bool = False) -> list[str]:
    """The frame's configurations in a stable reading order: by activation (registry order),
    BN, init."""
    identity = _identities(frame)

    def key(config):
        activation, batchnorm, init = identity[config]
        rank = _registry_rank(activation)
        place = (len(_COLOURS) if rank is None else rank, activation)
        return (batchnorm, *place, init) if bn_last else (*place, batchnorm, init)

    return sorted(identity, key=key)


def _styles(frame: pd.DataFrame, configs: list[str]) -> dict[str, dict]:
    """Line style per configuration: colour = activation, dashed = BN, and markers only where
    two configurations would otherwise look the same (another init or activation parameter)."""
    identity = _identities(frame)
    styles, groups = {}, {}
    for config in configs:
        activation, batchnorm, _ = identity[config]
        styles[config] = {"color": activation_color(activation), "linestyle": "--" if batchnorm else "-"}
        groups.setdefault((styles[config]["color"], batchnorm), []).append(config)
    markers = "osD^v<>ph*"
    for members in groups.values():
        if len(members) > 1:
            for i, config in enumerate(members):
                styles[config].update(marker=markers[i % len(markers)], markersize=3.5)
    return styles


def _ok(frame: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of runs whose status is ok (every row when no runs table is given)."""
    if runs is None or frame.empty:
        return frame
    return frame[frame["run_id"].isin(runs.loc[runs["status"] == "ok", "run_id"])]


def _finite(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Rows whose `value` is a finite number (drops the train loss missing at iteration 0)."""
    numbers = pd.to_numeric(frame[value], errors="coerce").astype(float)
    return frame.assign(**{value: numbers})[np.isfinite(numbers)]


def seed_summary(frame: pd.DataFrame, value: str, by=("config", "iteration")) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1) and number of seeds of `value` per group in `by`.

    This is what the curve figures draw: the line is `mean`, the band `mean ± std`.
    """
    data = _finite(frame, value)
    return data.groupby(list(by))[value].agg(mean="mean", std="std", n="count").reset_index()


def _seeds_text(frame: pd.DataFrame) -> str:
    """'n = 3 seeds per configuration' (or a range when configurations differ)."""
    counts = frame.groupby("config")["seed"].nunique()
    low, high = int(counts.min()), int(counts.max())
    return f"n = {low if low == high else f'{low}–{high}'} seed{'s' * (high > 1)} per configuration"


def _left_out(runs: pd.DataFrame | None) -> str:
    """A caption sentence naming the runs not drawn because they diverged or failed."""
    bad = runs[runs["status"] != "ok"].sort_values(["config", "seed"]) if runs is not None else []
    if len(bad) == 0:
        return ""
    if len(bad) <= 6:
        listed = ", ".join(f"{r.config} seed {r.seed} ({r.status})" for r in bad.itertuples())
    else:
        listed = ", ".join(f"{n} {status}" for status, n in bad["status"].value_counts().items())
    return f" Not drawn: {len(bad)} run{'s' if len(bad) > 1 else ''} that did not end ok: {listed}."


def _log_if_wide(ax, values) -> bool:
    """Use a log y axis when the positive values span more than one decade."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    wide = values.size > 0 and values.max() > 10 * values.min()
    if wide:
        ax.set_yscale("log")
    return wide


def _need_data(frame: pd.DataFrame, what: str) -> None:
    if frame.empty:
        raise PlotError(f"no data to plot {what}", hint="the figure needs runs that ended ok")


def figure_formats(formats) -> tuple[str, ...]:
    """The formats to write, PNG first and always (the reports show it), each once, in FORMATS'
    order; anything else is a PlotError."""
    asked = [f.strip().lower().lstrip(".") for f in formats if f.strip()]
    unknown = [f for f in asked if f not in FORMATS]
    if unknown:
        raise PlotError(f"unknown figure format {unknown[0]!r}", where="--figure-format",
                        hint=f"use one or more of {', '.join(FORMATS)}, comma-separated (e.g. png,pdf)")
    return tuple(f for f in FORMATS if f == "png" or f in asked)


def _styled(func):
    """Draw under the shared style, so every figure looks alike whatever the user's rcParams;
    `formats=("png", "pdf")` also writes the figure in those formats."""
    @functools.wraps(func)
    def wrapper(*args, formats=("png",), **kwargs):
        token = _formats.set(figure_formats(formats))
        try:
            with matplotlib.rc_context(_STYLE):
                return func(*args, **kwargs)
        finally:
            _formats.reset(token)
    return wrapper


def _save(fig: MplFigure, out_dir, name: str, title: str, caption: str) -> Figure:
    """Write the PNG (and the other formats of the call); the figure was never registered with
    pyplot, so nothing stays open."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    files = []
    for fmt in _formats.get():
        files.append(path.with_suffix(f".{fmt}"))
        fig.savefig(files[-1], dpi=DPI, format=fmt, metadata=_METADATA[fmt])
    return Figure(files[0], caption, title, tuple(files))


def _curves(frame, runs, value: str, scale: float, ylabel: str, title: str, what: str,
            name: str, out_dir) -> Figure:
    """Mean-over-seeds curve per configuration with a ±1 std band (error and loss figures)."""
    data = _finite(_ok(frame, runs), value)
    _need_data(data, what)
    summary = seed_summary(data, value)
    configs = _ordered(data)
    styles = _styles(data, configs)
    fig = MplFigure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    for config in configs:
        rows = summary[summary["config"] == config]
        mean, spread = rows["mean"] * scale, rows["std"].fillna(0) * scale
        ax.plot(rows["iteration"], mean, label=config, linewidth=1.5, **styles[config])
        ax.fill_between(rows["iteration"], mean - spread, mean + spread, alpha=0.15, linewidth=0,
                        color=styles[config]["color"])
    log = _log_if_wide(ax, summary["mean"] * scale)
    ax.set(xlabel="training iteration", ylabel=ylabel + (" (log scale)" if log else ""), title=title)
    fig.legend(loc="outside right upper", title="configuration")
    caption = (f"{what[0].upper() + what[1:]} vs training iteration. Line: mean over seeds of each "
               f"configuration; band: ±1 standard deviation across seeds; {_seeds_text(data)}; "
               f"dashed = with batch norm{'; log y axis' if log else ''}." + _left_out(runs))
    return _save(fig, out_dir, name, title, caption)


@_styled
def error_curves(metrics: pd.DataFrame, out_dir, task: str = "classification", *,
                 runs: pd.DataFrame | None = None) -> Figure:
    """Test error (%; reconstruction MSE for the autoencoder) over training, per configuration.

    With `runs`, only runs that ended ok are drawn and the caption names the others.
    """
    ae = task == "autoencoder"
    return _curves(metrics, runs, "test_error", 1.0 if ae else 100.0,
                   "test reconstruction error (MSE)" if ae else "test error (%)",
                   f"Test {'reconstruction ' if ae else ''}error during training",
                   "test reconstruction MSE" if ae else "test error (%)", "error_curves.png", out_dir)


@_styled
def loss_curves(metrics: pd.DataFrame, out_dir, *, runs: pd.DataFrame | None = None) -> Figure:
    """Training loss over training, per configuration (log axis when it spans > 1 decade)."""
    return _curves(metrics, runs, "train_loss", 1.0, "training loss", "Training loss",
                   "training loss (mean over the iterations since the previous evaluation)",
                   "loss_curves.png", out_dir)


@_styled
def bias_shift(activations: pd.DataFrame, out_dir, *, runs: pd.DataFrame | None = None) -> Figure:
    """The ELU paper's Figure 2 idea: does a layer's typical unit mean drift away from zero?

    One panel per configuration; one line per hidden layer, coloured by depth: the median over
    units of each unit's mean activation, averaged over seeds, against iteration.
    """
    data = _finite(_ok(activations, runs), "median")
    _need_data(data, "the bias shift")
    layers = list(dict.fromkeys(data["layer"]))  # rows keep forward order within a run
    depth = {layer: i + 1 for i, layer in enumerate(layers)}
    summary = seed_summary(data, "median", by=("config", "layer", "iteration"))
    configs = _ordered(data, bn_last=True)
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
    caption = (f"One panel per configuration: for each of the {len(layers)} hidden layers "
               "(colour = depth, dark = first), the median over its units of each unit's mean "
               "activation on a fixed probe batch, against training iteration; each line is the "
               f"mean over seeds ({_seeds_text(data)}); black line = 0. The shared y axis "
               "compares how far activations drift from zero." + _left_out(runs))
    return _save(fig, out_dir, "bias_shift.png", title, caption)


@_styled
def paired_seeds(runs: pd.DataFrame, out_dir, task: str = "classification") -> Figure:
    """Final test error of every run, one line per seed across configurations (paired design)."""
    scale, unit = (1.0, "test reconstruction error (MSE)") if task == "autoencoder" else (100.0, "test error (%)")
    ok = _finite(runs[runs["status"] == "ok"], "test_error")
    _need_data(ok, "final test errors")
    configs = _ordered(runs)
    identity = _identities(runs)
    x = {config: i for i, config in enumerate(configs)}
    fig = MplFigure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    for _, seed_runs in ok.groupby("seed"):
        y = np.full(len(configs), np.nan)  # a missing run breaks the seed's line
        y[[x[c] for c in seed_runs["config"]]] = seed_runs["test_error"] * scale
        ax.plot(range(len(configs)), y, color="0.6", linewidth=0.8, marker="o", markersize=2.5,
                alpha=0.8, zorder=1)
    means = ok.groupby("config")["test_error"].mean() * scale
    for config, mean in means.items():
        activation, batchnorm, _ = identity[config]
        colour = activation_color(activation)
        ax.scatter(x[config], mean, marker="D", s=50, zorder=3, edgecolors=colour, linewidths=1.5,
                   facecolors="white" if batchnorm else colour)
    bad = runs[runs["status"] != "ok"].groupby("config")["status"].value_counts()
    labels = [config + "".join(f"\n({n} {status})" for (c, status), n in bad.items() if c == config)
              for config in configs]
    crowded = len(configs) > 4
    ax.set_xticks(range(len(configs)), labels, rotation=30 * crowded, ha="right" if crowded else "center")
    log = _log_if_wide(ax, ok["test_error"] * scale)
    title = "Final test error, paired by seed"
    ax.set(ylabel=unit + (" (log scale)" if log else ""), title=title)
    ax.legend(handles=[Line2D([], [], color="0.6", marker="o", markersize=2.5, label="one seed"),
                       Line2D([], [], color="0.3", marker="D", linestyle="", label="mean (hollow: BN)")],
              loc="best")
    caption = (f"Final {unit} of each run that ended ok. Grey line: one seed, joining its runs "
               "across configurations (same initial weight draws and data order); diamond: mean over "
               f"seeds, hollow with batch norm; {_seeds_text(ok)}{'; log y axis' if log else ''}."
               + _left_out(runs))
    return _save(fig, out_dir, "paired_seeds.png", title, caption)


@_styled
def forest(comparisons, out_dir, baseline: str | None = None, *, n_seeds: int | None = None,
           task: str = "classification") -> Figure:
    """Paired differences with 95 % CIs, one row per comparison, the largest improvement on top.

    `comparisons` is the table of `stats.paired_comparisons` (or that result itself); rows it
    could not test (NaN difference) are named in the caption instead of drawn.
    """
    table = getattr(comparisons, "table", comparisons)
    untestable = table[table["mean_diff_pp"].isna()]
    data = table[table["mean_diff_pp"].notna()].sort_values("mean_diff_pp", ascending=False)
    _need_data(data, "comparisons")
    data = data.reset_index(drop=True)
    unit = ("test MSE × 100" if task == "autoencoder" else "test error (percentage points)")
    fig = MplFigure(figsize=(FIGSIZE[0], max(2.5, 0.35 * len(data) + 1.6)), layout="constrained")
    ax = fig.add_subplot()
    ax.axvline(0, color="black", linewidth=0.8, zorder=0)
    for y, row in data.iterrows():
        colour = _VERDICT_COLOURS.get(row["verdict"], "black")
        err = [[row["mean_diff_pp"] - row["ci_low"]], [row["ci_high"] - row["mean_diff_pp"]]]
        ax.errorbar(row["mean_diff_pp"], y, xerr=err, fmt="o", color=colour, capsize=3, markersize=5)
        if pd.notna(row.get("p_holm")):
            ax.annotate(f"Holm p = {row['p_holm']:.2g}", (1.0, y), xycoords=("axes fraction", "data"),
                        xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(range(len(data)), [f"{r.a} vs {r.b}" for r in data.itertuples()])
    ax.set_ylim(-0.7, len(data) - 0.3)
    ax.grid(axis="y", visible=False)
    title = f"Activation comparisons (baseline {baseline})" if baseline else "Paired comparisons"
    ax.set(xlabel=f"difference in {unit}: a − b (< 0: a lower)", title=title)
    verdicts = [v for v in _VERDICT_COLOURS if v in set(data["verdict"])]
    fig.legend(handles=[Line2D([], [], color=_VERDICT_COLOURS[v], marker="o", linestyle="", label=v)
                        for v in verdicts], loc="outside lower center", ncols=max(len(verdicts), 1))
    if "n_pairs" in data:
        low, high = int(data["n_pairs"].min()), int(data["n_pairs"].max())
        n_seeds = low if low == high else f"{low}–{high}"
    seeds = f" over n = {n_seeds} paired seeds" if n_seeds else ""
    caption = (f"Mean per-seed difference in {unit}, a − b{seeds} (negative: a has the lower "
               "error), with its 95 % t confidence interval; colour: verdict; right: "
               "Holm-corrected p. Sorted with the largest improvement on top.")
    if len(untestable):
        caption += " Not testable (too few paired seeds): " + ", ".join(
            f"{r.a} vs {r.b}" for r in untestable.itertuples()) + "."
    return _save(fig, out_dir, "forest.png", title, caption)


def all_figures(results, comparisons: pd.DataFrame | None, out_dir,
                baseline: str | None = None, formats=("png",)) -> list[Figure]:
    """Every figure whose data exists: no curves without metrics, no bias shift without
    activation records, no forest plot for a single configuration or without comparisons.
    Each is written in `formats` (PNG always)."""
    runs, metrics, activations = results.runs, results.metrics, results.activations

    def has(frame, column):
        return frame is not None and column in frame and not _finite(_ok(frame, runs), column).empty

    task = "autoencoder" if "task" in runs and (runs["task"] == "autoencoder").any() else "classification"
    figures = []
    if has(metrics, "test_error"):
        figures.append(error_curves(metrics, out_dir, task, runs=runs, formats=formats))
    if has(metrics, "train_loss"):
        figures.append(loss_curves(metrics, out_dir, runs=runs, formats=formats))
    if has(activations, "median"):
        figures.append(bias_shift(activations, out_dir, runs=runs, formats=formats))
    if has(runs, "test_error"):
        figures.append(paired_seeds(runs, out_dir, task, formats=formats))
    table = getattr(comparisons, "table", comparisons)
    if (table is not None and "mean_diff_pp" in table and table["mean_diff_pp"].notna().any()
            and runs["config"].nunique() > 1):
        n_seeds = int(runs.loc[runs["status"] == "ok", "seed"].nunique())
        figures.append(forest(table, out_dir, baseline, n_seeds=n_seeds, task=task, formats=formats))
    return figures
