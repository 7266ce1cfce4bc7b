"""The report's figures as matplotlib figures, for a notebook: `elubench.plots`. Each draws
what the report draws (reporting.curves, reporting.plots, reporting.plots_across), from a results
folder, `elubench.load_results(...)` or `elubench.compare(...)`; with `out`, it also writes the
files (PNG, and the `formats` asked for). The caption the report prints is the figure's
`elubench_caption` attribute."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from elubench.core.errors import ElubenchError

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from elubench.api.comparison import Comparison, ExperimentComparison
    from elubench.api.results import Results
    from elubench.reporting.figures import Figure
    from elubench.store.reader import RunTables

Formats = Sequence[str]


def _tables(results, spec: str | None) -> RunTables:
    """One experiment's RunTables from a folder or loaded Results."""
    from elubench.api.results import Results, load_results

    if not isinstance(results, Results):
        results = load_results(results, spec=spec)
    tables = [t for t in results.tables if spec is None or t.name == spec]
    if len(tables) != 1:
        raise ElubenchError(
            f"{len(tables)} experiments here: {', '.join(t.name for t in results.tables)}"
            if tables or spec is None
            else f"no experiment {spec!r} here",
            hint="name one: spec=NAME",
        )
    return tables[0]


def _experiment(comparison, spec: str | None) -> ExperimentComparison:
    from elubench.api.comparison import Comparison, compare

    if not isinstance(comparison, Comparison):
        comparison = compare(comparison, spec=spec)
    if spec is not None:
        if spec not in comparison.experiments:
            raise ElubenchError(
                f"no experiment {spec!r} here", hint=f"one of {', '.join(comparison.experiments)}"
            )
        return comparison.experiments[spec]
    return comparison._only()


def _shown(figure: Figure) -> MplFigure:
    assert figure.figure is not None  # reporting.figures.save keeps it
    figure.figure.elubench_caption = figure.caption  # type: ignore[attr-defined]
    _displayable_in_ipython()
    return figure.figure


def _displayable_in_ipython() -> None:
    """In Jupyter, a figure made without pyplot shows as text until pyplot's inline backend
    registers how to draw one: register it here (PNG, as the inline backend would)."""
    import sys

    if "IPython" not in sys.modules:  # not in IPython: nothing to register
        return
    from IPython import get_ipython
    from matplotlib.figure import Figure as MplFigure

    shell = get_ipython()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    if MplFigure not in png.type_printers:
        from IPython.core.pylabtools import select_figure_formats

        select_figure_formats(shell, {"png"})


def _unit(tables: RunTables):
    from elubench.core.units import CLASSIFICATION, unit_of_tasks

    return unit_of_tasks(tables.runs["task"]) or CLASSIFICATION


def error_curves(
    results: str | Path | Results, *, spec: str | None = None, out=None, formats: Formats = ("png",)
) -> MplFigure:
    """Test error over training, mean over seeds with a ±1 std band, per configuration."""
    from elubench.reporting.curves import error_curves as draw

    t = _tables(results, spec)
    return _shown(draw(t.metrics, out, _unit(t), runs=t.runs, formats=formats))


def loss_curves(
    results: str | Path | Results, *, spec: str | None = None, out=None, formats: Formats = ("png",)
) -> MplFigure:
    """Training loss over training, per configuration."""
    from elubench.reporting.curves import loss_curves as draw

    t = _tables(results, spec)
    return _shown(draw(t.metrics, out, runs=t.runs, formats=formats))


def bias_shift(
    results: str | Path | Results, *, spec: str | None = None, out=None, formats: Formats = ("png",)
) -> MplFigure:
    """Each hidden layer's median unit mean over training (the ELU paper's bias shift)."""
    from elubench.reporting.curves import bias_shift as draw

    t = _tables(results, spec)
    return _shown(draw(t.activations, out, runs=t.runs, formats=formats))


def paired_seeds(
    results: str | Path | Results, *, spec: str | None = None, out=None, formats: Formats = ("png",)
) -> MplFigure:
    """Every run's final test error, one line per seed across configurations."""
    from elubench.reporting.plots import paired_seeds as draw

    t = _tables(results, spec)
    return _shown(draw(t.runs, out, _unit(t), formats=formats))


def forest(
    comparison: str | Path | Comparison,
    *,
    spec: str | None = None,
    out=None,
    formats: Formats = ("png",),
) -> MplFigure:
    """Each comparison's paired difference with its 95 % CI, coloured by its verdict."""
    from elubench.reporting.plots import forest as draw

    e = _experiment(comparison, spec)
    c, runs = e.analysis.comparison, e.analysis.results.runs
    n_seeds = int(runs.loc[runs["status"] == "ok", "seed"].nunique())
    return _shown(
        draw(c.paired.table, out, c.baseline, n_seeds=n_seeds, unit=c.unit, formats=formats)
    )


def _across(comparison):
    from elubench.api.comparison import Comparison, compare

    if not isinstance(comparison, Comparison):
        comparison = compare(comparison, across=True)
    if comparison.across is None:
        raise ElubenchError(
            "no summary across experiments: it needs two or more experiments",
            hint="compare a folder holding several specs' runs",
        )
    return comparison.across


def critical_difference(
    comparison: str | Path | Comparison, *, out=None, formats: Formats = ("png",)
) -> MplFigure:
    """Mean ranks of the configurations across experiments with Nemenyi's critical difference."""
    from elubench.reporting.plots_across import cd_diagram

    return _shown(cd_diagram(_across(comparison), out, formats=formats))


def across_forest(
    comparison: str | Path | Comparison, *, out=None, formats: Formats = ("png",)
) -> MplFigure:
    """Each experiment's difference and the pooled one, per comparison."""
    from elubench.reporting.plots_across import forest as draw

    return _shown(draw(_across(comparison), out, formats=formats))
