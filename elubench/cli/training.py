"""The commands that lay out and train: show, run and data."""

from __future__ import annotations

from pathlib import Path

import typer

from elubench.cli.common import console as _console
from elubench.cli.executor_options import (
    CpusPerRunOpt,
    ExecutorOpt,
    GpusOpt,
    GpusPerRunOpt,
    ParallelOpt,
    PartitionOpt,
    RayAddressOpt,
    RayCpusOpt,
    SbatchOpt,
    ShardOpt,
    SlurmClusterOpt,
    SlurmParallelismOpt,
    SlurmTimeOpt,
    WorkersOpt,
)
from elubench.cli.options import (
    ActivationsOpt,
    BatchnormOpt,
    BnOpt,
    CheckpointOpt,
    CompileOpt,
    DataDirOpt,
    DataSpecsArg,
    DeterministicOpt,
    DeviceOpt,
    DownloadOpt,
    DryRunOpt,
    EffectsOpt,
    FetchOpt,
    ForceOpt,
    JsonOpt,
    MaxSeedsOpt,
    NoMemoryCheckOpt,
    NoWaitOpt,
    PrecisionOpt,
    ResultsOpt,
    SeedsOpt,
    SetOpt,
    ShowActivationOpt,
    SpecArg,
    SpecsArg,
    TakeOverOpt,
    ThreadsOpt,
    UntilDecidedOpt,
    WidthOpt,
)
from elubench.core.files import dumps


def show(
    spec: SpecArg,
    activation: ShowActivationOpt = "",
    bn: BnOpt = False,
    set_: SetOpt = None,
    width: WidthOpt = None,
    as_json: JsonOpt = False,
):
    """Show the network a spec builds: layers, shapes, parameters and FLOPs."""
    from elubench.net.checks import checked_activation
    from elubench.net.memory import estimate_run
    from elubench.spec.layout import net_layout
    from elubench.spec.loader import load_spec

    loaded, act = checked_activation(
        load_spec(spec, set_ or [], width), activation or None, spec.parent, "--activation"
    )
    layout = net_layout(loaded, act, bn)
    estimate = estimate_run(loaded, act, bn)
    if as_json:
        from elubench.activations.binding import source_record

        payload = {
            "spec_name": loaded.name,
            "spec_hash": loaded.hash,
            "activation": str(act),
            "activation_source": source_record(act),
            "batchnorm": bn,
            **layout.to_dict(),
            "memory": estimate.to_dict(),
        }
        typer.echo(dumps(payload, indent=2))
        return
    from elubench.cli.views import layout_table, memory_view

    title = f"{loaded.name}: {act}{' + BN' if bn else ''}, spec hash {loaded.hash}"
    _console().print(layout_table(layout, title))
    _console().print(memory_view(estimate, loaded.train.batch_size))


def run(
    specs: SpecsArg,
    activations: ActivationsOpt = None,
    batchnorm: BatchnormOpt = None,
    seeds: SeedsOpt = None,
    until_decided: UntilDecidedOpt = False,
    max_seeds: MaxSeedsOpt = None,
    set_: SetOpt = None,
    width: WidthOpt = None,
    device: DeviceOpt = "auto",
    results: ResultsOpt = Path("results"),
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    effects: EffectsOpt = "0,0.5,1,2",
    checkpoint_every: CheckpointOpt = 300.0,
    precision: PrecisionOpt = None,
    compile_: CompileOpt = False,
    shard: ShardOpt = None,
    threads: ThreadsOpt = None,
    deterministic: DeterministicOpt = False,
    take_over: TakeOverOpt = False,
    no_wait: NoWaitOpt = False,
    executor: ExecutorOpt = "auto",
    parallel: ParallelOpt = None,
    workers: WorkersOpt = None,
    gpus: GpusOpt = None,
    ray_address: RayAddressOpt = None,
    ray_cpus: RayCpusOpt = None,
    cpus_per_run: CpusPerRunOpt = None,
    gpus_per_run: GpusPerRunOpt = None,
    slurm_partition: PartitionOpt = None,
    slurm_time: SlurmTimeOpt = None,
    slurm_parallelism: SlurmParallelismOpt = None,
    sbatch: SbatchOpt = None,
    slurm_cluster: SlurmClusterOpt = None,
    no_memory_check: NoMemoryCheckOpt = False,
):
    """Train every activation × BN × seed of one or more specs; skips runs already recorded.

    Several specs train one after another, each in results/<spec name>/, with one progress
    display, one summary and one exit code; every flag applies to each (--shard I/N: each
    spec's I-th slice). All are checked before any trains. Exit codes: 0 every run has a
    record (ok or diverged); 2 a mistake in the input, nothing trained; 3 some runs crashed
    (recorded failed); 4 some runs have no record (claimed elsewhere, a damaged file, an OS
    error, lost): run again; 130 interrupted."""
    from elubench.api.training import prepare_run

    campaign, settings = prepare_run(
        specs,
        results=results,
        activations=activations,
        batchnorm=batchnorm,
        seeds=seeds,
        until_decided=until_decided,
        max_seeds=max_seeds,
        overrides=set_,
        width=width,
        precision=precision,
        threads=threads,
        device=device,
        data_dir=data_dir,
        download=download,
        force=force,
        checkpoint_every=checkpoint_every,
        compile=compile_,
        shard=shard,
        deterministic=deterministic,
        take_over=take_over,
        wait=not no_wait,
        executor=executor,
        parallel=parallel,
        workers=workers,
        gpus=gpus,
        ray_address=ray_address,
        ray_cpus=ray_cpus,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        slurm_partition=slurm_partition,
        slurm_time=slurm_time,
        slurm_parallelism=slurm_parallelism,
        sbatch=sbatch,
        slurm_cluster=slurm_cluster,
        memory_check=not no_memory_check,
        dry_run=dry_run,
    )
    if dry_run:
        _dry_run(campaign, settings, effects)
    else:
        _train(campaign, settings)


def _dry_run(campaign, settings, effects: str = "0,0.5,1,2") -> None:
    """Each spec's matrix (done / left), estimate and what its seeds can show; with several, a total."""
    from elubench.cli.run_views import dry_run_total, dry_run_view
    from elubench.execution.dry_run import dry_run, parse_effects

    console, dries = _console(), []
    for note in campaign.notes:
        console.print(note, style="dim", markup=False)
    for e in campaign.experiments:
        if campaign.several:
            console.rule(f"{e.name} ({e.path})", style="dim")
        at_once = e.runner.runs_at_once(len(e.configs)) or 1
        dries.append(dry_run(e.spec, e.configs, settings, at_once, parse_effects(effects)))
        console.print(dry_run_view(dries[-1], e.spec))
    if campaign.several:
        console.print(dry_run_total(dries))


def _train(campaign, settings) -> None:
    """Train with a progress display; say what is missing and exit with the code that says it
    (Ctrl-C: what is recorded and how to go on)."""
    from elubench.api.progress import (
        CampaignReporter,
        RichReporter,
        campaign_view,
        interrupted_view,
        summary_table,
        summary_view,
    )
    from elubench.core.errors import CampaignInterrupted
    from elubench.core.units import unit_of
    from elubench.execution.campaign import combined_summary, run_campaign

    console, first = _console(), campaign.experiments[0]
    for note in campaign.notes:
        console.print(note, style="dim", markup=False)
    reporter = (
        CampaignReporter(console, campaign.experiments)
        if campaign.several
        else RichReporter(console, unit_of(first.spec.task))
    )
    folder = first.folder(settings.results)
    try:
        outcomes = run_campaign(campaign, settings, reporter)
    except CampaignInterrupted as stop:
        reporter.close()
        if campaign.several:
            console.print(interrupted_view(stop, campaign.experiments, settings.results))
        else:
            assert stop.records is not None  # one spec's Ctrl-C carries its records (campaign)
            console.print(f"[yellow]{stop}[/yellow]")
            most = "at most " if first.spec.compare.until_decided else ""
            console.print(
                f"{len(stop.records)} of {most}{len(first.configs)} runs are recorded in "
                f"{folder}; run the same command to continue."
            )
        raise typer.Exit(130) from None
    finally:
        reporter.close()
    if campaign.several:
        console.print(campaign_view(outcomes, settings.results))
        raise typer.Exit(combined_summary(outcomes).exit_code)
    records, summary = outcomes[0].records, outcomes[0].summary
    console.print(summary_table(records, f"{first.name}: {len(records)} runs in {folder}"))
    if outcomes[0].sequential is not None:
        from elubench.cli.run_views import decisions_view

        console.print(decisions_view(outcomes[0].sequential, settings.results))
    console.print(summary_view(summary))
    raise typer.Exit(summary.exit_code)


def data(
    specs: DataSpecsArg,
    data_dir: DataDirOpt = None,
    download: FetchOpt = False,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
):
    """List the datasets the specs need, the folder elubench looks in, and each file with its
    MD5: there and intact, missing, or damaged. Exit 0 when all are ready, else 2 with the fix."""
    from elubench.cli.views import data_table
    from elubench.data.catalog import survey_specs

    survey = survey_specs(specs, set_ or [], data_dir, download)
    if as_json:
        typer.echo(dumps(survey.to_dict(), indent=2))
    else:
        _console().print(data_table(survey))
    survey.require()  # after the table: one message and exit 2 when a dataset is not ready
