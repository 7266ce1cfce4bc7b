"""A folder's analysis (reporting.analysis.FolderAnalysis) in one output format: what `compare`
prints or writes. One experiment: its tables; several: each one's, then the summary across them."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule

from elubench.core.files import dumps
from elubench.reporting.analysis import Analysis, FolderAnalysis
from elubench.reporting.render import json_payload, to_csv, to_json, to_latex, to_markdown, to_rich
from elubench.reporting.tables import Section, display_tables
from elubench.reporting.tables_across import across_payload, across_sections


def experiment_title(analysis: Analysis) -> str:
    c = analysis.comparison
    return f"{c.spec_name}: {len(analysis.results.runs)} runs, {len(c.configs)} configurations"


def render(folder: FolderAnalysis, format_: str) -> tuple[str | None, str | RenderableType]:
    """(a title to print above it or None, the text or, for "rich", a renderable)."""
    if len(folder.experiments) == 1:
        return _one(folder.experiments[0], format_)
    return None, _several(folder, format_)


def _one(analysis: Analysis, format_: str) -> tuple[str, str | RenderableType]:
    c, title = analysis.comparison, experiment_title(analysis)
    sections = display_tables(c)
    if format_ == "rich":
        return title, to_rich(sections, c.warnings, c.methods)
    text = {
        "markdown": lambda: f"## {title}\n\n" + to_markdown(sections, c.warnings, c.methods),
        "csv": lambda: to_csv(sections),
        "json": lambda: to_json(c, sections),
        "latex": lambda: to_latex(sections, c.methods),
    }[format_]()
    return title, text


def _several(folder: FolderAnalysis, format_: str) -> str | RenderableType:
    across = folder.across
    extra = across_sections(across) if across is not None else []
    tables = [(a, display_tables(a.comparison)) for a in folder.experiments]
    if format_ == "rich":
        items: list[RenderableType] = []
        for analysis, sections in tables:
            c = analysis.comparison
            items += [Rule(experiment_title(analysis)), to_rich(sections, c.warnings, c.methods)]
        if across is not None:
            items += [
                Rule(f"across {len(across.experiments)} experiments"),
                to_rich(extra, across.warnings, across.methods),
            ]
        return Group(*items)
    if format_ == "markdown":
        parts = [
            f"## {experiment_title(a)}\n\n"
            + to_markdown(sections, a.comparison.warnings, a.comparison.methods)
            for a, sections in tables
        ]
        if across is not None:
            parts.append(
                f"## Across {len(across.experiments)} experiments\n\n"
                + to_markdown(extra, across.warnings, across.methods)
            )
        return "\n".join(parts)
    if format_ == "csv":
        parts = [to_csv([_prefixed(s, a.results.name) for s in sections]) for a, sections in tables]
        return "".join(parts) + (to_csv(extra) if across is not None else "")
    if format_ == "latex":
        parts = [
            f"% Experiment {a.results.name}\n" + to_latex(sections, a.comparison.methods)
            for a, sections in tables
        ]
        if across is not None:
            parts.append("% Across experiments\n" + to_latex(extra, across.methods))
        return "\n".join(parts)
    if format_ == "json":
        payload = {
            "experiments": {
                a.results.name: json_payload(a.comparison, sections) for a, sections in tables
            },
            "across": None if across is None else across_payload(across, extra),
        }
        return dumps(payload, indent=2, default=str)
    raise ValueError(format_)


def _prefixed(section: Section, name: str) -> Section:
    return Section(
        f"{name}/{section.key}",
        f"{name}: {section.title}",
        section.frame,
        section.raw,
        section.note,
        section.footnotes,
    )
