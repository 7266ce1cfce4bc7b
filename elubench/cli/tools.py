"""The commands of elubench.tools and the registry: signal (the forward signal at init), bench
(the engine's speed) and activations."""

from __future__ import annotations

from pathlib import Path

import typer

from elubench.cli.common import console as _console
from elubench.cli.common import load as _load
from elubench.cli.common import split_names as _split_names
from elubench.cli.options import (
    ActivationsOpt,
    BatchnormOpt,
    BatchSizeOpt,
    BenchActivationsOpt,
    BenchCompileOpt,
    BenchPrecisionOpt,
    DataDirOpt,
    DeviceOpt,
    DownloadOpt,
    JsonOpt,
    ProbeOpt,
    ReferenceWorkersOpt,
    RepeatsOpt,
    SeedsOpt,
    SetOpt,
    SignalOutOpt,
    SpecArg,
    StepsOpt,
    WarmupOpt,
    WidthOpt,
)
from elubench.core.files import dumps


def signal(
    spec: SpecArg,
    activations: ActivationsOpt = None,
    batchnorm: BatchnormOpt = None,
    seeds: SeedsOpt = None,
    set_: SetOpt = None,
    width: WidthOpt = None,
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    probe: ProbeOpt = 256,
    out: SignalOutOpt = None,
):
    """The forward signal at initialization: the std of each conv/FC layer's response, per
    configuration and seed, with the runs' own paired weights (He et al. 2015, section 2.2:
    Xavier init shrinks it with depth under ReLU, He init keeps it). Nothing is trained."""
    from elubench.activations.code import with_names
    from elubench.cli.views import signal_table
    from elubench.net.checks import check_matrix
    from elubench.spec.matrix import select
    from elubench.tools import signal as forward

    loaded, names = with_names(
        _load(spec, set_, width, None), _split_names(activations), spec.parent, "--activations"
    )
    configs = select(loaded, activations=names, batchnorm=batchnorm, seeds=seeds)
    check_matrix(loaded, configs)  # a custom activation's mistakes: one message, not a traceback
    console = _console()
    with console.status(f"{len(configs)} nets at initialization"):
        measured = forward.measure(
            loaded, configs, data_dir=data_dir, download=download, probe_size=probe
        )
    rows = forward.summary(measured).to_dict("records")
    console.print(signal_table(rows, f"{loaded.name}: response std at initialization"))
    for path in forward.write(measured, out or Path("results") / loaded.name, loaded.name):
        console.print(f"wrote {path}")


def bench(
    spec: SpecArg,
    activations: BenchActivationsOpt = None,
    set_: SetOpt = None,
    width: WidthOpt = None,
    batch_size: BatchSizeOpt = None,
    steps: StepsOpt = 20,
    warmup: WarmupOpt = 5,
    repeats: RepeatsOpt = 3,
    device: DeviceOpt = "auto",
    precision: BenchPrecisionOpt = None,
    compile_: BenchCompileOpt = False,
    reference_workers: ReferenceWorkersOpt = 2,
    as_json: JsonOpt = False,
):
    """Measure elubench's training engine against a plain PyTorch loop (images/s, FLOP/s)."""
    from elubench.net.checks import checked_activation
    from elubench.tools.bench import run_bench
    from elubench.training.runtime import resolve_device

    loaded = _load(spec, set_, width, precision)
    names = []
    for name in _split_names(activations) or loaded.compare.activations:
        loaded, activation = checked_activation(loaded, name, spec.parent, "--activations")
        names.append(activation.ref or str(activation))
    console = _console(stderr=as_json)
    with console.status("measuring") as status:
        result = run_bench(
            loaded,
            device=resolve_device(device),
            activations=names,
            batch_size=batch_size,
            steps=steps,
            warmup=warmup,
            repeats=repeats,
            compile=compile_,
            reference_workers=reference_workers,
            progress=lambda text: status.update(text),
        )
    if as_json:
        typer.echo(dumps(result, indent=2))
        return
    from elubench.cli.views import bench_table

    console.print(bench_table(result))


def activations(as_json: JsonOpt = False):
    """List the activations: the built-ins and those installed packages register (entry-point
    group elubench.activations), with their formulas, parameters and sources."""
    from elubench.activations.code import registered_rows
    from elubench.activations.registry import registry_rows

    rows = registry_rows() + registered_rows()
    if as_json:
        typer.echo(dumps(rows, indent=2))
        return
    from elubench.cli.views import activations_table

    _console().print(activations_table(rows))
