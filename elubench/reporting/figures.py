"""What every figure shares (elubench.reporting.curves, plots, plots_across and the signal figure of
elubench.tools.signal): one style on matplotlib's object API and the Agg canvas (no window, no
pyplot state, nothing kept alive after saving), one colour per activation in every figure (BN
dashed), the files a figure is written as (PNG, and PDF or SVG beside it for papers, named the
same) with a caption saying what is drawn, and the rows of a table a figure may draw.
"""

from __future__ import annotations

import contextvars
import functools
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from elubench.activations.names import parse_activation
from elubench.activations.registry import REGISTRY
from elubench.core.errors import ActivationError, PlotError
from elubench.stats.verdicts import BETTER, NO_EVIDENCE, WORSE

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

FIGSIZE = (7.0, 4.5)
DPI = 150
STYLE: dict[RcKeyType, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    # vector files for papers: TrueType fonts in PDFs (Type 3 ones are refused by some
    # publishers' checks), text as paths in SVGs, and fixed SVG ids so reruns match
    "pdf.fonttype": 42,
    "svg.fonttype": "path",
    "svg.hashsalt": "elubench",
}
# The files each figure is written as: PNG (what REPORT.md and REPORT.html show) first, then
# vector formats for papers; no dates inside them, so a rerun on the same data writes the same bytes.
FORMATS = ("png", "pdf", "svg")
METADATA = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}
_formats: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "formats", default=("png",)
)
# The i-th activation of the registry (`elubench activations`) gets the i-th colour; names
# past the list, or not in the registry, get a colour from a hash of the name.
COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#17becf",
    "#e377c2",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#637939",
)
VERDICT_COLOURS = {BETTER: "#1b7837", WORSE: "#b2182b", NO_EVIDENCE: "#7f7f7f"}


@dataclass(frozen=True)
class Figure:
    """One figure: the PNG, a caption saying what it shows, its title, every file written (the
    PNG first, then the PDF or SVG asked for, named the same; none when it was drawn for a
    notebook, with no folder to write to) and the matplotlib figure itself."""

    path: Path
    caption: str
    title: str
    files: tuple[Path, ...] = ()
    figure: MplFigure | None = field(default=None, compare=False, repr=False)


def registry_rank(activation: str) -> int | None:
    """The activation's place in the registry (`lrelu(a=0.2)` has `lrelu`'s), or None."""
    try:
        name = parse_activation(activation).name
    except ActivationError:  # a custom activation's label
        return None
    return list(REGISTRY).index(name) if name in REGISTRY else None


def activation_color(activation: str) -> str:
    """The colour of an activation in every figure; `lrelu(0.1)` shares `lrelu`'s."""
    rank = registry_rank(activation)
    if rank is not None and rank < len(COLOURS):
        return COLOURS[rank]
    cmap = matplotlib.colormaps["tab20b"]
    assert isinstance(cmap, matplotlib.colors.ListedColormap)  # a qualitative map
    # its colours as listed, RGB tuples (matplotlib types the attribute as any array)
    colours = cast("tuple[tuple[float, float, float], ...]", cmap.colors)
    return matplotlib.colors.to_hex(colours[zlib.crc32(activation.encode()) % len(colours)])


def identities(frame: pd.DataFrame) -> dict[str, tuple[str, bool, str]]:
    """Each configuration label's activation, batch norm and init, read from the table's
    columns (labels are for display; what a configuration is, the columns say)."""
    rows = frame.drop_duplicates("config")
    return {
        str(c): (str(a), bool(b), str(i))
        for c, a, b, i in zip(rows["config"], rows["activation"], rows["batchnorm"], rows["init"])
    }


def ordered(frame: pd.DataFrame, bn_last: bool = False) -> list[str]:
    """The frame's configurations in a stable reading order: by activation (registry order),
    BN, init."""
    identity = identities(frame)

    def key(config):
        activation, batchnorm, init = identity[config]
        rank = registry_rank(activation)
        place = (len(COLOURS) if rank is None else rank, activation)
        return (batchnorm, *place, init) if bn_last else (*place, batchnorm, init)

    return sorted(identity, key=key)


def line_styles(frame: pd.DataFrame, configs: list[str]) -> dict[str, dict]:
    """Line style per configuration: colour = activation, dashed = BN, and markers only where
    two configurations would otherwise look the same (another init or activation parameter)."""
    identity = identities(frame)
    styles: dict[str, dict] = {}
    groups: dict[tuple[str, bool], list[str]] = {}  # configurations by colour and BN
    for config in configs:
        activation, batchnorm, _ = identity[config]
        styles[config] = {
            "color": activation_color(activation),
            "linestyle": "--" if batchnorm else "-",
        }
        groups.setdefault((styles[config]["color"], batchnorm), []).append(config)
    markers = "osD^v<>ph*"
    for members in groups.values():
        if len(members) > 1:
            for i, config in enumerate(members):
                styles[config].update(marker=markers[i % len(markers)], markersize=3.5)
    return styles


def ok_rows(frame: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of runs whose status is ok (every row when no runs table is given)."""
    if runs is None or frame.empty:
        return frame
    return frame[frame["run_id"].isin(runs.loc[runs["status"] == "ok", "run_id"])]


def finite_rows(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Rows whose `value` is a finite number (drops the train loss missing at iteration 0)."""
    numbers = pd.to_numeric(frame[value], errors="coerce").astype(float)
    return frame.assign(**{value: numbers})[np.isfinite(numbers)]


def seeds_text(frame: pd.DataFrame) -> str:
    """'n = 3 seeds per configuration' (or a range when configurations differ)."""
    counts = frame.groupby("config")["seed"].nunique()
    low, high = int(counts.min()), int(counts.max())
    return f"n = {low if low == high else f'{low}–{high}'} seed{'s' * (high > 1)} per configuration"


def left_out_text(runs: pd.DataFrame | None) -> str:
    """A caption sentence naming the runs not drawn because they diverged or failed."""
    if runs is None:
        return ""
    bad = runs[runs["status"] != "ok"].sort_values(["config", "seed"])
    if len(bad) == 0:
        return ""
    if len(bad) <= 6:
        listed = ", ".join(f"{r.config} seed {r.seed} ({r.status})" for r in bad.itertuples())
    else:
        listed = ", ".join(f"{n} {status}" for status, n in bad["status"].value_counts().items())
    return f" Not drawn: {len(bad)} run{'s' if len(bad) > 1 else ''} that did not end ok: {listed}."


def log_if_wide(ax, values) -> bool:
    """Use a log y axis when the positive values span more than one decade."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    wide = values.size > 0 and values.max() > 10 * values.min()
    if wide:
        ax.set_yscale("log")
    return wide


def need_data(frame: pd.DataFrame, what: str) -> None:
    if frame.empty:
        raise PlotError(f"no data to plot {what}", hint="the figure needs runs that ended ok")


def figure_formats(formats) -> tuple[str, ...]:
    """The formats to write, PNG first and always (the reports show it), each once, in FORMATS'
    order; anything else is a PlotError."""
    asked = [f.strip().lower().lstrip(".") for f in formats if f.strip()]
    unknown = [f for f in asked if f not in FORMATS]
    if unknown:
        raise PlotError(
            f"unknown figure format {unknown[0]!r}",
            where="--figure-format",
            hint=f"use one or more of {', '.join(FORMATS)}, comma-separated (e.g. png,pdf)",
        )
    return tuple(f for f in FORMATS if f == "png" or f in asked)


def styled(func):
    """Draw under the shared style, so every figure looks alike whatever the user's rcParams;
    `formats=("png", "pdf")` also writes the figure in those formats."""

    @functools.wraps(func)
    def wrapper(*args, formats=("png",), **kwargs):
        token = _formats.set(figure_formats(formats))
        try:
            with matplotlib.rc_context(STYLE):
                return func(*args, **kwargs)
        finally:
            _formats.reset(token)

    return wrapper


def save(fig: MplFigure, out_dir, name: str, title: str, caption: str) -> Figure:
    """Write the PNG (and the other formats of the call) into `out_dir`, or nothing when it is
    None (a figure for a notebook); the figure was never registered with pyplot, so nothing
    stays open."""
    if out_dir is None:
        return Figure(Path(name), caption, title, (), fig)
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    files = []
    for fmt in _formats.get():
        files.append(path.with_suffix(f".{fmt}"))
        fig.savefig(files[-1], dpi=DPI, format=fmt, metadata=METADATA[fmt])
    return Figure(files[0], caption, title, tuple(files), fig)
