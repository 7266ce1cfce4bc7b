"""The statistics of a results folder as an object: `elubench.compare`. Its tables are the
numbers `elubench compare --format json` prints (the same analysis, reporting.analysis, and the
same rendering, reporting.output), as pandas DataFrames."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elubench.core.errors import ElubenchError

if TYPE_CHECKING:
    import pandas as pd

    from elubench.reporting.analysis import Analysis, CompareOptions, FolderAnalysis
    from elubench.reporting.tables import Section


def compare_options(
    *,
    baseline: str | None = None,
    all_pairs: bool = False,
    alternative: str | None = None,
    alpha: float | None = None,
    rope: float | None = None,
    q_values: bool = False,
    target: float | None = None,
    names: dict[str, str] | None = None,
) -> CompareOptions:
    """The options checked, each mistake one ElubenchError naming the option (`names`: the
    command line's flag for each, else the keyword's own name)."""
    from elubench.reporting.analysis import CompareOptions
    from elubench.spec.schema import ALTERNATIVES

    def where(key: str) -> str:
        return (names or {}).get(key, key)

    if alternative is not None and alternative not in ALTERNATIVES:
        raise ElubenchError(
            f"unknown alternative {alternative!r}",
            where=where("alternative"),
            hint=f"use {', '.join(ALTERNATIVES[:-1])} or {ALTERNATIVES[-1]}",
        )
    if alpha is not None and not 0 < alpha < 1:
        raise ElubenchError(f"alpha must be between 0 and 1, got {alpha}", where=where("alpha"))
    if rope is not None and not (math.isfinite(rope) and rope >= 0):
        raise ElubenchError(
            f"the ROPE is a half-width in percentage points >= 0, got {rope}",
            where=where("rope"),
            hint="e.g. 0.5",
        )
    return CompareOptions(
        baseline=baseline,
        all_pairs=all_pairs,
        alternative=alternative,
        alpha=alpha,
        q_values=q_values,
        target=target,
        rope=rope,
    )


@dataclass
class ExperimentComparison:
    """One experiment's (spec's) statistics. `tables` maps each table's key (descriptives,
    friedman, paired, speed, cost, and the BN tables where the runs have both settings) to its
    numbers; `paired` holds each family's tests with their verdicts."""

    analysis: Analysis
    sections: list[Section]

    @property
    def name(self) -> str:
        return self.analysis.results.name

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {s.key: s.raw for s in self.sections}

    @property
    def descriptives(self) -> pd.DataFrame:
        return self.analysis.comparison.descriptives

    @property
    def paired(self) -> pd.DataFrame:
        return self.tables["paired"]

    @property
    def sequential(self) -> pd.DataFrame | None:
        """The sequential design's decisions (runs of `run --until-decided`; None otherwise):
        one row per comparison, as `compare --format json` gives them. The paired tables are
        then descriptive."""
        return self.tables.get("sequential")

    @property
    def omnibus(self) -> dict | None:
        """The Friedman test over the configurations (seeds as blocks), as the JSON gives it."""
        from elubench.reporting.render import friedman_json

        f = self.analysis.comparison.friedman
        return None if f is None else friedman_json(f, f.mean_ranks.items())

    @property
    def methods(self) -> str:
        return self.analysis.comparison.methods

    @property
    def warnings(self) -> list[str]:
        return self.analysis.comparison.warnings

    def _repr_html_(self) -> str:
        c = self.analysis.comparison
        return _html(self.name, self.sections, c.warnings, c.methods)


class Comparison:
    """Every statistic of a results folder: each experiment's (`experiments`, by spec name)
    and, with two or more, the summary across them (`across`, `across_tables`). With one
    experiment its tables are also this object's (`descriptives`, `paired`, `tables`, ...).
    `to_json()`, `to_markdown()`, `to_latex()` and `to_csv()` give exactly what `elubench
    compare --format ...` prints; in Jupyter it shows as tables."""

    def __init__(self, folder: FolderAnalysis):
        from elubench.reporting.tables import display_tables
        from elubench.reporting.tables_across import across_sections

        self.folder = folder
        self.experiments = {
            a.results.name: ExperimentComparison(a, display_tables(a.comparison))
            for a in folder.experiments
        }
        self._across_sections = across_sections(folder.across) if folder.across is not None else []

    def _only(self) -> ExperimentComparison:
        if len(self.experiments) > 1:
            raise ElubenchError(
                f"this folder holds {len(self.experiments)} experiments: "
                f"{', '.join(self.experiments)}",
                hint="pick one: comparison.experiments[NAME], or compare(..., spec=NAME)",
            )
        return next(iter(self.experiments.values()))

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return self._only().tables

    @property
    def descriptives(self) -> pd.DataFrame:
        return self._only().descriptives

    @property
    def paired(self) -> pd.DataFrame:
        return self._only().paired

    @property
    def sequential(self) -> pd.DataFrame | None:
        return self._only().sequential

    @property
    def omnibus(self) -> dict | None:
        return self._only().omnibus

    @property
    def methods(self) -> str:
        if len(self.experiments) > 1 and self.folder.across is not None:
            return self.folder.across.methods
        return self._only().methods

    @property
    def warnings(self) -> list[str]:
        if len(self.experiments) > 1:
            return [w for e in self.experiments.values() for w in e.warnings] + (
                self.folder.across.warnings if self.folder.across is not None else []
            )
        return self._only().warnings

    @property
    def across(self) -> Any:
        """The summary across experiments (stats.experiments.Across), or None."""
        return self.folder.across

    @property
    def across_tables(self) -> dict[str, pd.DataFrame]:
        return {s.key: s.raw for s in self._across_sections}

    def _render(self, format_: str) -> str:
        from elubench.reporting.output import render

        _, text = render(self.folder, format_)
        assert isinstance(text, str)  # every format but rich is text
        return text

    def to_json(self) -> str:
        return self._render("json")

    def to_markdown(self) -> str:
        return self._render("markdown")

    def to_latex(self) -> str:
        return self._render("latex")

    def to_csv(self) -> str:
        return self._render("csv")

    def _repr_html_(self) -> str:
        parts = [e._repr_html_() for e in self.experiments.values()]
        if self.folder.across is not None:
            a = self.folder.across
            title = f"across {len(a.experiments)} experiments"
            parts.append(_html(title, self._across_sections, a.warnings, a.methods))
        return "\n".join(parts)

    def __repr__(self) -> str:
        names = ", ".join(self.experiments)
        across = "; with a summary across them" if self.folder.across is not None else ""
        return f"Comparison({names}{across})"


def _html(title: str, sections: list[Section], warnings: list[str], methods: str) -> str:
    """The formatted tables, as `compare` prints them, for a notebook."""
    parts = [f"<h3>{html.escape(title)}</h3>"]
    for s in sections:
        parts.append(f"<h4>{html.escape(s.title)}</h4>")
        parts.append(s.frame.to_html(index=False, escape=True, border=0))
        if s.note:
            parts.append(f"<p><small><i>{html.escape(s.note)}</i></small></p>")
    if warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
        parts.append(f"<p><b>warnings</b></p><ul>{items}</ul>")
    parts.append(f"<p><b>methods</b>: {html.escape(methods)}</p>")
    return "\n".join(parts)


def compare(
    results: str | Path = "results",
    *,
    spec: str | list[str] | None = None,
    across: bool | None = None,
    baseline: str | None = None,
    all_pairs: bool = False,
    alternative: str | None = None,
    alpha: float | None = None,
    rope: float | None = None,
    q_values: bool = False,
    target: float | None = None,
    skip_bad: bool = False,
    option_names: dict[str, str] | None = None,
) -> Comparison:
    """Paired statistics over the runs under `results`: the analysis `elubench compare` does,
    with the same options (None takes the spec's own setting). A mistake raises an
    `elubench.errors.ElubenchError` naming the option (`option_names`: the command line's
    flags, for `elubench compare`)."""
    from elubench.reporting.analysis import analyze_experiments

    options = compare_options(
        baseline=baseline,
        all_pairs=all_pairs,
        alternative=alternative,
        alpha=alpha,
        rope=rope,
        q_values=q_values,
        target=target,
        names=option_names,
    )
    names = [spec] if isinstance(spec, str) else spec
    folder = analyze_experiments(
        Path(results), specs=names, across=across, skip_bad=skip_bad, options=options
    )
    return Comparison(folder)
