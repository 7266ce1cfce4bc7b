"""The command line: thin commands over library functions.

Each command parses its arguments, calls one library function and renders the result. Library
code raises ElubenchError for user mistakes; `main` turns those into one message and exit
code 2. Heavy modules (torch, pandas, scipy) are imported inside commands, so `elubench --help`
starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from elubench.core import __version__
from elubench.cli.options import (
    SpecArg, SpecsArg, SetOpt, WidthOpt, DeviceOpt, PrecisionOpt, CompileOpt, ActivationsOpt,
    BatchnormOpt, SeedsOpt, ResultsOpt, DataDirOpt, DownloadOpt, ForceOpt, DryRunOpt,
    CheckpointOpt, ShardOpt, ExecutorOpt, ParallelOpt, WorkersOpt, ThreadsOpt, TakeOverOpt,
    NoMemoryCheckOpt, DeterministicOpt, GpusOpt, RayAddressOpt, RayCpusOpt, CpusPerRunOpt,
    GpusPerRunOpt, PartitionOpt, SlurmTimeOpt, SlurmParallelismOpt, SbatchOpt, SlurmClusterOpt,
    ResultsArg, SpecNameOpt, BaselineOpt, AllPairsOpt, AlternativeOpt, AlphaOpt, RopeOpt,
    QValuesOpt, TargetOpt, FormatOpt, OutOpt, SkipBadOpt, AcrossOpt, DataSpecsArg, FetchOpt, JsonOpt,
    TensorBoardOpt, MlflowOpt,
)
from elubench.cli import tools as cli_tools
from elubench.cli.common import console as _console, load as _load, split_names as _split_names
from elubench.core.errors import ElubenchError
from elubench.core.files import dumps

app = typer.Typer(
    name="elubench",
    help="Benchmark activation functions the way the ELU paper did: every activation × BN × "
         "seed from the same initial weight draws, then paired statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"elubench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False):
    pass


@app.command()
def show(
    spec: SpecArg,
    activation: Annotated[str, typer.Option("--activation", "-a",
                                            help="Activation to lay out (default: the spec's first).",
                                            show_default=False)] = "",
    bn: Annotated[bool, typer.Option("--bn/--no-bn", help="Lay out the net with batch normalization.")] = False,
    set_: SetOpt = None,
    width: WidthOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Show the network a spec builds: layers, shapes, parameters and FLOPs."""
    from elubench.spec.layout import net_layout
    from elubench.net.memory import estimate_run
    from elubench.spec.loader import load_spec

    from elubench.net.checks import checked_activation
    loaded, act = checked_activation(load_spec(spec, set_ or [], width), activation or None,
                                     spec.parent, "--activation")
    plan = net_layout(loaded, act, bn)
    estimate = estimate_run(loaded, act, bn)
    if as_json:
        from elubench.activations.binding import source_record
        payload = {"spec_name": loaded.name, "spec_hash": loaded.hash, "activation": str(act),
                   "activation_source": source_record(act),
                   "batchnorm": bn, **plan.to_dict(), "memory": estimate.to_dict()}
        typer.echo(dumps(payload, indent=2))
        return
    from elubench.cli.views import memory_view, plan_table
    title = f"{loaded.name}: {act}{' + BN' if bn else ''}, spec hash {loaded.hash}"
    _console().print(plan_table(plan, title))
    _console().print(memory_view(estimate, loaded.train.batch_size))


@app.command()
def run(specs: SpecsArg, activations: ActivationsOpt = None, batchnorm: BatchnormOpt = None,
        seeds: SeedsOpt = None, set_: SetOpt = None, width: WidthOpt = None,
        device: DeviceOpt = "auto", results: ResultsOpt = Path("results"),
        data_dir: DataDirOpt = None, download: DownloadOpt = False, force: ForceOpt = False,
        dry_run: DryRunOpt = False, checkpoint_every: CheckpointOpt = 300.0,
        precision: PrecisionOpt = None, compile_: CompileOpt = False, shard: ShardOpt = None,
        threads: ThreadsOpt = None, deterministic: DeterministicOpt = False, take_over: TakeOverOpt = False,
        executor: ExecutorOpt = "auto", parallel: ParallelOpt = None, workers: WorkersOpt = None,
        gpus: GpusOpt = None, ray_address: RayAddressOpt = None, ray_cpus: RayCpusOpt = None,
        cpus_per_run: CpusPerRunOpt = None, gpus_per_run: GpusPerRunOpt = None,
        slurm_partition: PartitionOpt = None, slurm_time: SlurmTimeOpt = None,
        slurm_parallelism: SlurmParallelismOpt = None, sbatch: SbatchOpt = None,
        slurm_cluster: SlurmClusterOpt = None, no_memory_check: NoMemoryCheckOpt = False):
    """Train every activation × BN × seed of one or more specs; skips runs already recorded.

    Several specs train one after another, each in results/<spec name>/, with one progress
    display, one summary and one exit code; every flag applies to each (--shard I/N: each
    spec's I-th slice). All are checked before any trains. Exit codes: 0 every run has a
    record (ok or diverged); 2 a mistake in the input, nothing trained; 3 some runs crashed
    (recorded failed); 4 some runs have no record (claimed elsewhere, a damaged file, an OS
    error, lost): run again; 130 interrupted."""
    from elubench.execution.campaign import plan_campaign
    from elubench.activations.code import with_names
    from elubench.execution.executors import executor_for
    from elubench.spec.matrix import select
    from elubench.execution.runner import RunSettings

    settings = RunSettings(results=results, device=device, data_dir=data_dir, download=download,
                           force=force, checkpoint_seconds=checkpoint_every, compile=compile_,
                           deterministic=deterministic, take_over=take_over)
    campaign = plan_campaign(
        specs, settings,
        load=lambda path: with_names(_load(path, set_, width, precision, threads),
                                     _split_names(activations), path.parent, "--activations"),
        select=lambda spec, names: select(spec, activations=names, batchnorm=batchnorm, seeds=seeds,
                                          shard_text=shard),
        executor=lambda spec: executor_for(
            executor, parallel=parallel, device=device, spec=spec, workers=workers,
            gpus=gpus.split(",") if gpus else None, address=ray_address, local_cpus=ray_cpus,
            cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run, partition=slurm_partition,
            time_min=slurm_time, array_parallelism=slurm_parallelism, sbatch=sbatch or None,
            cluster=slurm_cluster),
        memory_check=not no_memory_check, dry_run=dry_run)
    (_dry_run if dry_run else _train)(campaign, settings)


def _dry_run(campaign, settings) -> None:
    """Each spec's matrix (done / left), estimate and significance plan; with several, a total."""
    from elubench.execution.dry_run import dry_run
    from elubench.cli.views import dry_run_total, dry_run_view

    console, plans = _console(), []
    for note in campaign.notes:
        console.print(note, style="dim", markup=False)
    for e in campaign.experiments:
        if campaign.several:
            console.rule(f"{e.name} ({e.path})", style="dim")
        plans.append(dry_run(e.spec, e.configs, settings, e.runner.runs_at_once(len(e.configs)) or 1))
        console.print(dry_run_view(plans[-1], e.spec))
    if campaign.several:
        console.print(dry_run_total(plans))


def _train(campaign, settings) -> None:
    """Train with a progress display; say what is missing and exit with the code that says it
    (Ctrl-C: what is recorded and how to go on)."""
    from elubench.execution.campaign import CampaignInterrupted, combined_summary, run_campaign
    from elubench.cli.progress import (CampaignReporter, RichReporter, campaign_view, interrupted_view,
                                   summary_table, summary_view)

    console, first = _console(), campaign.experiments[0]
    for note in campaign.notes:
        console.print(note, style="dim", markup=False)
    reporter = CampaignReporter(console, campaign.experiments) if campaign.several \
        else RichReporter(console, first.spec.task)
    folder = first.folder(settings.results)
    try:
        outcomes = run_campaign(campaign, settings, reporter)
    except CampaignInterrupted as stop:
        reporter.close()
        if campaign.several:
            console.print(interrupted_view(stop, campaign.experiments, settings.results))
        else:
            console.print(f"[yellow]{stop}[/yellow]")
            console.print(f"{len(stop.records)} of {len(first.configs)} runs are recorded in "
                          f"{folder}; run the same command to continue.")
        raise typer.Exit(130)
    finally:
        reporter.close()
    if campaign.several:
        console.print(campaign_view(outcomes, settings.results))
        raise typer.Exit(combined_summary(outcomes).exit_code)
    records, summary = outcomes[0].records, outcomes[0].summary
    console.print(summary_table(records, f"{first.name}: {len(records)} runs in {folder}"))
    console.print(summary_view(summary))
    raise typer.Exit(summary.exit_code)


@app.command("data")
def data_(specs: DataSpecsArg, data_dir: DataDirOpt = None, download: FetchOpt = False,
          set_: SetOpt = None, as_json: JsonOpt = False):
    """List the datasets the specs need, the folder elubench looks in, and each file with its
    MD5: there and intact, missing, or damaged. Exit 0 when all are ready, else 2 with the fix."""
    from elubench.data.catalog import survey_specs
    from elubench.cli.views import data_table

    survey = survey_specs(specs, set_ or [], data_dir, download)
    if as_json:
        typer.echo(dumps(survey.to_dict(), indent=2))
    else:
        _console().print(data_table(survey))
    survey.require()  # after the table: one message and exit 2 when a dataset is not ready


@app.command()
def compare(results: ResultsArg = Path("results"), spec: SpecNameOpt = None, across: AcrossOpt = None,
            baseline: BaselineOpt = None, all_pairs: AllPairsOpt = False,
            alternative: AlternativeOpt = None, alpha: AlphaOpt = None, rope: RopeOpt = None,
            q_values: QValuesOpt = False, target: TargetOpt = None, format_: FormatOpt = "rich",
            out: OutOpt = None, skip_bad: SkipBadOpt = False):
    """Paired statistics over recorded runs: tables, tests, effect sizes, a methods paragraph;
    with several experiments, each one's and a summary across them."""
    import math

    from elubench.report.analysis import analyze_experiments
    from elubench.report.tables import FORMATS
    from elubench.spec.schema import ALTERNATIVES

    if format_ not in FORMATS:
        raise ElubenchError(f"unknown format {format_!r}", where="--format", hint=f"use one of {', '.join(FORMATS)}")
    if alternative is not None and alternative not in ALTERNATIVES:
        raise ElubenchError(f"unknown alternative {alternative!r}", where="--alternative",
                            hint=f"use {', '.join(ALTERNATIVES[:-1])} or {ALTERNATIVES[-1]}")
    if alpha is not None and not 0 < alpha < 1:
        raise ElubenchError(f"alpha must be between 0 and 1, got {alpha}", where="--alpha")
    if rope is not None and not (math.isfinite(rope) and rope >= 0):
        raise ElubenchError(f"the ROPE is a half-width in percentage points >= 0, got {rope}",
                            where="--rope", hint="e.g. --rope 0.5")
    if out is not None and out.is_dir():
        raise ElubenchError("is a folder; --out names the file to write", where=str(out),
                            hint=f"e.g. --out {out / ('comparison.' + format_)}")
    folder = analyze_experiments(results, specs=spec, across=across, skip_bad=skip_bad, baseline=baseline,
                                 all_pairs=all_pairs, alternative=alternative, alpha=alpha,
                                 q_values=q_values, target=target, rope=rope)
    _render_comparison(folder, format_, out)


def _render_comparison(folder, format_: str, out: Path | None) -> None:
    """The analysis in one format, to the terminal or to `out` (report.output)."""
    from elubench.report.output import render

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
        buffer = Console(file=io.StringIO(), width=160)
        buffer.print(rendered)
        text = buffer.file.getvalue().rstrip("\n")
    else:
        text = rendered
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ElubenchError(f"cannot write ({exc.strerror or exc})", where=str(out)) from None


@app.command()
def report(
    results: ResultsArg = Path("results"),
    markdown: Annotated[bool, typer.Option("--markdown/--no-markdown", help="Write REPORT.md.")] = True,
    html: Annotated[bool, typer.Option("--html", help="Also write REPORT.html: one file, figures inside.")] = False,
    figure_format: Annotated[str, typer.Option(help="Figure files: png (always), pdf, svg; comma-separated.")] = "png,pdf",
    out: Annotated[Optional[Path], typer.Option(
        help="Folder for the report (default: the spec's results folder).", show_default=False)] = None,
    spec: SpecNameOpt = None, across: AcrossOpt = None, baseline: BaselineOpt = None,
    all_pairs: AllPairsOpt = False, skip_bad: SkipBadOpt = False,
):
    """Write REPORT.md (and REPORT.html) with the spec, every table, figures and the methods
    paragraph; with several experiments, one report: the summary across them (critical-difference
    diagram, forest plot) and a section per experiment, in the results folder."""
    from elubench.report.analysis import analyze_experiments
    from elubench.report.figures import figure_formats
    from elubench.report.markdown import write_folder_report, write_report

    if not markdown and not html:
        raise ElubenchError("nothing to write", where="--no-markdown", hint="add --html, or drop --no-markdown")
    formats = figure_formats(figure_format.split(","))
    folder = analyze_experiments(results, specs=spec, across=across, skip_bad=skip_bad,
                                 baseline=baseline, all_pairs=all_pairs)
    if len(folder.experiments) == 1:
        written = write_report(folder.experiments[0], out_dir=out, markdown=markdown, html_too=html,
                               figure_formats=formats)
    else:
        written = write_folder_report(folder, results, out_dir=out, markdown=markdown, html_too=html,
                                      figure_formats=formats)
    console = _console()
    for path in written:
        console.print(f"wrote {path}")


@app.command()
def export(results: ResultsArg = Path("results"), tensorboard: TensorBoardOpt = None,
           mlflow: MlflowOpt = None, spec: SpecNameOpt = None, skip_bad: SkipBadOpt = False):
    """Export recorded runs (ok, diverged and failed) to TensorBoard and/or MLflow: curves by
    iteration, bias shift, PReLU slopes, the configuration as parameters, final results.
    Exporting again adds only what is new or changed (docs/export.md)."""
    from elubench.export.driver import export_results
    from elubench.cli.views import ExportProgress, export_view

    console = _console()
    with ExportProgress(console) as progress:
        outcome = export_results(results, tensorboard=tensorboard, mlflow=mlflow, specs=spec,
                                 skip_bad=skip_bad, progress=progress)
    console.print(export_view(outcome))


for _command in (cli_tools.signal, cli_tools.bench, cli_tools.activations):
    app.command()(_command)


def main() -> None:
    """Console entry point: a user's mistake is one message and exit code 2, not a traceback."""
    try:
        app()
    except ElubenchError as exc:
        from rich.markup import escape
        _console(stderr=True).print(f"[bold red]error:[/bold red] {escape(exc.render())}",
                                    soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        sys.exit(130)
