"""Writing a results folder's report: `elubench.reporting` and `elubench report`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from elubench.core.errors import ElubenchError


def report(
    results: str | Path = "results",
    *,
    out: str | Path | None = None,
    markdown: bool = True,
    html: bool = False,
    figure_formats: Sequence[str] | str = ("png", "pdf"),
    spec: str | list[str] | None = None,
    across: bool | None = None,
    baseline: str | None = None,
    all_pairs: bool = False,
    skip_bad: bool = False,
) -> list[Path]:
    """Write REPORT.md (and with `html` REPORT.html) with the spec, every table, the figures
    and the methods paragraph, into `out` (default: the experiment's folder; with several
    experiments, one report across them in `results`). Returns the files written."""
    from elubench.reporting.analysis import CompareOptions, analyze_experiments
    from elubench.reporting.figures import figure_formats as checked_formats
    from elubench.reporting.markdown import write_folder_report, write_report

    if not markdown and not html:
        raise ElubenchError("nothing to write: markdown and html are both off")
    asked = figure_formats.split(",") if isinstance(figure_formats, str) else figure_formats
    formats = checked_formats(list(asked))
    names = [spec] if isinstance(spec, str) else spec
    folder = analyze_experiments(
        Path(results),
        specs=names,
        across=across,
        skip_bad=skip_bad,
        options=CompareOptions(baseline=baseline, all_pairs=all_pairs),
    )
    out_dir = None if out is None else Path(out)
    if len(folder.experiments) == 1:
        return write_report(
            folder.experiments[0],
            out_dir=out_dir,
            markdown=markdown,
            html_too=html,
            figure_formats=formats,
        )
    return write_folder_report(
        folder,
        Path(results),
        out_dir=out_dir,
        markdown=markdown,
        html_too=html,
        figure_formats=formats,
    )
