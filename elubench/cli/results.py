"""The commands over recorded runs: compare, report and export."""

from __future__ import annotations

from pathlib import Path

import typer

from elubench.cli.common import console as _console
from elubench.cli.options import (
    AcrossOpt,
    AllPairsOpt,
    AlphaOpt,
    AlternativeOpt,
    BaselineOpt,
    FigureFormatOpt,
    FormatOpt,
    HtmlOpt,
    MarkdownOpt,
    MlflowOpt,
    OutOpt,
    QValuesOpt,
    ReportOutOpt,
    ResultsArg,
    RopeOpt,
    SkipBadOpt,
    SpecNameOpt,
    TargetOpt,
    TensorBoardOpt,
)
from elubench.core.errors import ElubenchError


def compare(
    results: ResultsArg = Path("results"),
    spec: SpecNameOpt = None,
    across: AcrossOpt = None,
    baseline: BaselineOpt = None,
    all_pairs: AllPairsOpt = False,
    alternative: AlternativeOpt = None,
    alpha: AlphaOpt = None,
    rope: RopeOpt = None,
    q_values: QValuesOpt = False,
    target: TargetOpt = None,
    format_: FormatOpt = "rich",
    out: OutOpt = None,
    skip_bad: SkipBadOpt = False,
):
    """Paired statistics over recorded runs: tables, tests, effect sizes, a methods paragraph;
    with several experiments, each one's and a summary across them."""
    from elubench.api.comparison import compare as analyze
    from elubench.reporting.tables import FORMATS

    if format_ not in FORMATS:
        raise ElubenchError(
            f"unknown format {format_!r}", where="--format", hint=f"use one of {', '.join(FORMATS)}"
        )
    if out is not None and out.is_dir():
        raise ElubenchError(
            "is a folder; --out names the file to write",
            where=str(out),
            hint=f"e.g. --out {out / ('comparison.' + format_)}",
        )
    comparison = analyze(
        results,
        spec=spec,
        across=across,
        baseline=baseline,
        all_pairs=all_pairs,
        alternative=alternative,
        alpha=alpha,
        rope=rope,
        q_values=q_values,
        target=target,
        skip_bad=skip_bad,
        option_names={
            key: f"--{key.replace('_', '-')}" for key in ("alternative", "alpha", "rope")
        },
    )
    _render_comparison(comparison.folder, format_, out)


def _render_comparison(folder, format_: str, out: Path | None) -> None:
    """The analysis in one format, to the terminal or to `out` (reporting.output)."""
    from elubench.reporting.output import render

    title, rendered = render(folder, format_)
    if format_ == "rich":
        if out is None:
            console = _console()
            if title:
                console.rule(title)
            console.print(rendered)
            return
        import io

        from rich.console import Console

        written = io.StringIO()
        buffer = Console(file=written, width=160)
        buffer.print(rendered)
        text = written.getvalue().rstrip("\n")
    else:
        assert isinstance(rendered, str)  # every format but rich is text (reporting.output)
        text = rendered
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ElubenchError(f"cannot write ({exc.strerror or exc})", where=str(out)) from None


def report(
    results: ResultsArg = Path("results"),
    markdown: MarkdownOpt = True,
    html: HtmlOpt = False,
    figure_format: FigureFormatOpt = "png,pdf",
    out: ReportOutOpt = None,
    spec: SpecNameOpt = None,
    across: AcrossOpt = None,
    baseline: BaselineOpt = None,
    all_pairs: AllPairsOpt = False,
    skip_bad: SkipBadOpt = False,
):
    """Write REPORT.md (and REPORT.html) with the spec, every table, figures and the methods
    paragraph; with several experiments, one report: the summary across them (critical-difference
    diagram, forest plot) and a section per experiment, in the results folder."""
    from elubench.api.reports import report as write

    if not markdown and not html:
        raise ElubenchError(
            "nothing to write", where="--no-markdown", hint="add --html, or drop --no-markdown"
        )
    written = write(
        results,
        out=out,
        markdown=markdown,
        html=html,
        figure_formats=figure_format,
        spec=spec,
        across=across,
        baseline=baseline,
        all_pairs=all_pairs,
        skip_bad=skip_bad,
    )
    console = _console()
    for path in written:
        console.print(f"wrote {path}")


def export(
    results: ResultsArg = Path("results"),
    tensorboard: TensorBoardOpt = None,
    mlflow: MlflowOpt = None,
    spec: SpecNameOpt = None,
    skip_bad: SkipBadOpt = False,
):
    """Export recorded runs (ok, diverged and failed) to TensorBoard and/or MLflow: curves by
    iteration, bias shift, PReLU slopes, the configuration as parameters, final results.
    Exporting again adds only what is new or changed (docs/export.md)."""
    from elubench.cli.run_views import ExportProgress, export_view
    from elubench.export.driver import export_results

    console = _console()
    with ExportProgress(console) as progress:
        outcome = export_results(
            results,
            tensorboard=tensorboard,
            mlflow=mlflow,
            specs=spec,
            skip_bad=skip_bad,
            progress=progress,
        )
    console.print(export_view(outcome))
