"""`elubench report`: REPORT.md (and optionally REPORT.html) with the spec, every table, the
figures and the methods paragraph, written next to the results.

The report is written once, as Markdown; REPORT.html is that Markdown rendered
(`report_html`), with the figures inside the page.
"""

from __future__ import annotations

import time
from pathlib import Path

from elubench.activations.names import parse_activation
from elubench.activations.registry import Activation
from elubench.core import __version__
from elubench.core.errors import ElubenchError, StoreError
from elubench.reporting.analysis import Analysis, FolderAnalysis
from elubench.reporting.html import render_html
from elubench.reporting.plots import all_figures
from elubench.reporting.plots_across import across_figures
from elubench.reporting.render import to_markdown
from elubench.reporting.tables import display_tables
from elubench.reporting.tables_across import across_sections
from elubench.spec.layout import net_layout
from elubench.spec.loader import validate_spec
from elubench.spec.train_section import StepLR
from elubench.store.layout import SPEC_META


def _spec_summary(spec_dict: dict | None, runs=None, sequential=None) -> list[str]:
    """Markdown lines describing the experiment, from the resolved spec stored with the runs;
    the matrix is the one the recorded `runs` hold (a `run` may have trained a selection of the
    spec's, e.g. `--seeds 3`), with the spec's extent beside it where they differ."""
    if not spec_dict:
        return [
            "*The results folder has no spec.json: the experiment's description is unavailable.*"
        ]
    try:
        spec = validate_spec(spec_dict, source=SPEC_META)
    except ElubenchError as exc:  # e.g. an activation whose package is not installed here
        why = exc.message.splitlines()[0].removeprefix(f"{SPEC_META}: ")
        return [
            f"*The experiment's description cannot be read on this machine ({why}); "
            "the tables and figures below come from the run records alone.*"
        ]
    # the parameter count of the net with its first built-in activation (a custom one's own
    # parameters are in its runs' records)
    first = next(
        (a for a in spec.compare.parsed_activations() if isinstance(a, Activation)),
        parse_activation("relu"),
    )
    layout = net_layout(spec, first, False)
    train, data, model = spec.train, spec.data, spec.model
    if isinstance(train.lr, dict):
        schedule = ", ".join(f"{rate:g} from {start:,}" for start, rate in train.lr.items())
    elif isinstance(train.lr, StepLR):
        schedule = (
            f"{train.lr.initial:g}, divided by {train.lr.divide_by:g} every {train.lr.every:,}"
        )
    else:
        schedule = f"{train.lr:g}"
    length = f"{train.iterations:,} iterations" if train.iterations else f"{train.epochs} epochs"
    augment = data.augment
    augment_text = (
        ", ".join(
            part
            for part in (
                f"pad {augment.pad}" if augment.pad else "",
                f"random {augment.crop}×{augment.crop} crop" if augment.crop else "",
                "horizontal flip" if augment.hflip else "",
            )
            if part
        )
        or "none"
    )
    lines = [
        f"- **Task**: {spec.task}; **data**: {data.dataset}, preprocessing {data.preprocess}, "
        f"augmentation {augment_text}",
        "- **Network** (`layers × units × receptive field`, one bracket per stack): "
        + " ".join(f"[{s}]" for s in model.stacks).replace("x", "×")
        + (f"; width × {model.width:g}" if model.width != 1 else ""),
        f"  - dropout per stack {model.dropout_rates()}, pooling {model.pool}"
        + (f", SPP {model.spp}" if model.spp else ""),
        f"  - {layout.total_params:,} parameters ({first}, no BN), {layout.forward_flops / 1e6:,.1f} M forward "
        "FLOPs per image",
        f"- **Training**: SGD, batch {train.batch_size}, momentum {train.optimizer.momentum:g}, weight decay "
        f"{train.optimizer.weight_decay:g} (none on BN parameters or PReLU slopes), learning rate {schedule}, "
        f"{length}, {train.precision}",
        _matrix_line(spec, runs, sequential),
    ]
    if spec.reference.test_error:
        lines.append(f"- **Reference** numbers: {spec.reference.note or 'from the spec'}")
    return lines


def _matrix_line(spec, runs, sequential=None) -> str:
    """The matrix the runs hold; `sequential` (store.record.SequentialPlan): the design that
    trained them, whose extent is its most seeds, not the spec's fixed count."""
    compare = spec.compare
    activations, batchnorm, inits = compare.activations, compare.batchnorm, compare.init_list()
    seeds = len(compare.seed_list())
    if runs is not None and len(runs):
        present = set(runs["activation"])
        if (
            "activation_ref" in runs.columns
        ):  # a custom activation by its label, in the spec's order
            labels = {
                r: a
                for r, a in zip(runs["activation_ref"], runs["activation"])
                if isinstance(r, str)
            }
            activations = [labels.get(a, a) for a in activations]
        activations = [a for a in activations if a in present] + sorted(present - set(activations))
        batchnorm = sorted({bool(b) for b in runs["batchnorm"]})
        inits = list(dict.fromkeys(runs["init"]))
        seeds = runs["seed"].nunique()
    spec_seeds = len(compare.seed_list())
    extent = "" if seeds == spec_seeds else f" (of the spec's {spec_seeds})"
    if sequential is not None:
        extent = (
            f" at most, trained in rounds by the sequential design (up to "
            f"{sequential.max_seeds}; each comparison's seeds are in its table)"
        )
    return (
        f"- **Matrix**: activations {', '.join(activations)} × batch norm "
        f"{', '.join('on' if b else 'off' for b in batchnorm)} × init {', '.join(inits)} × "
        f"{seeds} seeds{extent}; spec hash `{spec.hash}`"
    )


def _figures_dir(out_dir: Path, sub: str = "figures") -> Path:
    path = out_dir / sub
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot write the report here ({exc.strerror or exc})",
            where=str(out_dir),
            hint="pass --out DIR",
        ) from None
    return path


def _figure_lines(figures, out_dir: Path, images: dict, level: int = 2) -> list[str]:
    """The figures as Markdown under a heading, each with its caption; `images` collects the
    files REPORT.html embeds."""
    lines = [f"{'#' * level} Figures", ""]
    if figures:
        kinds = ", ".join(f.suffix.lstrip(".").upper() for f in figures[0].files)
        folder = figures[0].path.parent.relative_to(out_dir).as_posix()
        lines += [f"The figures are also files, in `{folder}/` beside REPORT.md ({kinds}).", ""]
    for figure in figures:
        relative = figure.path.relative_to(out_dir).as_posix()
        images[relative] = figure.path
        lines += [
            f"{'#' * (level + 1)} {figure.title}",
            "",
            f"![{figure.title}]({relative})",
            "",
            f"*{figure.caption}*",
            "",
        ]
    return lines


def _experiment(
    analysis: Analysis,
    out_dir: Path,
    figures_dir: Path,
    images: dict,
    figure_formats,
    level: int = 2,
) -> tuple[list[str], list]:
    """One experiment's part of a report: what it was, its tables, its figures."""
    results, comparison = analysis.results, analysis.comparison
    figures = all_figures(
        results, comparison.paired, figures_dir, comparison.baseline, formats=figure_formats
    )
    runs = results.runs
    counts = runs["status"].value_counts().to_dict()
    devices = ", ".join(sorted(set(runs["device_name"].dropna().astype(str)))) or "unknown"
    h = "#" * level
    lines = [
        f"{(results.spec or {}).get('source', '')}".strip(),
        "",
        f"{len(runs)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}) from `{results.folder}` "
        f"on {devices}; mean wall time per run {runs['wall_seconds'].mean():.1f} s.",
        "",
        f"{h} The experiment",
        "",
        *_spec_summary(results.spec, runs, results.sequential),
        "",
        f"{h} Results",
        "",
        "",
        to_markdown(
            display_tables(comparison), comparison.warnings, comparison.methods, level=level + 1
        ),
        *_figure_lines(figures, out_dir, images, level),
    ]
    return lines, figures


def _write(text: str, images: dict, out_dir: Path, markdown: bool, html_too: bool) -> list[Path]:
    written = []
    if markdown:
        written.append(out_dir / "REPORT.md")
        written[-1].write_text(text, encoding="utf-8")
    if html_too:
        written.append(out_dir / "REPORT.html")
        written[-1].write_text(render_html(text, images), encoding="utf-8")
    return written


def write_report(
    analysis: Analysis,
    *,
    out_dir: Path | None = None,
    markdown: bool = True,
    html_too: bool = False,
    figure_formats=("png", "pdf"),
) -> list[Path]:
    """Write REPORT.md and/or REPORT.html, and the figures in figures/ as PNG and each of
    `figure_formats` (same names); return the files written."""
    folder = out_dir or analysis.results.folder
    assert folder is not None  # store.reader gives every RunTables its folder
    out_dir = Path(folder)
    images: dict = {}
    lines, figures = _experiment(analysis, out_dir, _figures_dir(out_dir), images, figure_formats)
    text = "\n".join(
        [
            f"# elubench report: {analysis.comparison.spec_name}",
            "",
            f"Generated {time.strftime('%Y-%m-%d %H:%M')} by elubench {__version__}.",
            "",
            *lines,
        ]
    )
    return _write(text, images, out_dir, markdown, html_too) + [p for f in figures for p in f.files]


def write_folder_report(
    folder: FolderAnalysis,
    root: Path,
    *,
    out_dir: Path | None = None,
    markdown: bool = True,
    html_too: bool = False,
    figure_formats=("png", "pdf"),
) -> list[Path]:
    """One REPORT.md (and REPORT.html) for several experiments, in `root` (or `out_dir`): the
    summary across them first (its tables, the critical-difference diagram and the forest plot
    in figures/), then a section per experiment (its figures in figures/<spec name>/)."""
    out_dir = Path(out_dir or root)
    images: dict = {}
    names = [a.results.name for a in folder.experiments]
    lines = [
        f"# elubench report: {len(names)} experiments",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M')} by elubench {__version__} from `{root}`: "
        f"{', '.join(names)}.",
        "",
    ]
    files = []
    across = folder.across
    if across is not None:
        figures = across_figures(across, _figures_dir(out_dir), formats=figure_formats)
        files += [p for f in figures for p in f.files]
        lines += [
            f"## Across {len(across.experiments)} experiments",
            "",
            to_markdown(across_sections(across), across.warnings, across.methods, level=3),
            *_figure_lines(figures, out_dir, images, level=3),
        ]
    for analysis in folder.experiments:
        name = analysis.results.name
        part, figures = _experiment(
            analysis,
            out_dir,
            _figures_dir(out_dir, f"figures/{name}"),
            images,
            figure_formats,
            level=3,
        )
        files += [p for f in figures for p in f.files]
        lines += [f"## Experiment: {name}", "", *part]
    return _write("\n".join(lines), images, out_dir, markdown, html_too) + files
