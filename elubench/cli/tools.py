"""The commands beside run, compare and report: signal (the forward signal at init), bench
(the engine's speed) and activations (the registry). Thin, like cli.py, which registers them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from elubench.cli.common import console as _console, load as _load, split_names as _split_names
from elubench.cli.options import (
    ActivationsOpt, BatchnormOpt, DataDirOpt, DownloadOpt, SeedsOpt, SetOpt, SpecArg, WidthOpt,
)
from elubench.core.files import dumps


def signal(spec: SpecArg, activations: ActivationsOpt = None, batchnorm: BatchnormOpt = None,
           seeds: SeedsOpt = None, set_: SetOpt = None, width: WidthOpt = None,
           data_dir: DataDirOpt = None, download: DownloadOpt = False,
           probe: Annotated[int, typer.Option(help="Training images in the probe batch.", min=1)] = 256,
           out: Annotated[Optional[Path], typer.Option(
               help="Folder for signal_at_init.csv and .png (default: results/<spec name>/).",
               show_default=False)] = None):
    """The forward signal at initialization: the std of each conv/FC layer's response, per
    configuration and seed, with the runs' own paired weights (He et al. 2015, section 2.2:
    Xavier init shrinks it with depth under ReLU, He init keeps it). Nothing is trained."""
    from elubench.tools import signal as forward
    from elubench.net.checks import check_matrix
    from elubench.activations.code import with_names
    from elubench.spec.matrix import select
    from elubench.cli.views import signal_table

    loaded, names = with_names(_load(spec, set_, width, None), _split_names(activations),
                               spec.parent, "--activations")
    configs = select(loaded, activations=names, batchnorm=batchnorm, seeds=seeds)
    check_matrix(loaded, configs)  # a custom activation's mistakes: one message, not a traceback
    console = _console()
    with console.status(f"{len(configs)} nets at initialization"):
        measured = forward.measure(loaded, configs, data_dir=data_dir, download=download,
                                   probe_size=probe)
    rows = forward.summary(measured).to_dict("records")
    console.print(signal_table(rows, f"{loaded.name}: response std at initialization"))
    for path in forward.write(measured, out or Path("results") / loaded.name, loaded.name):
        console.print(f"wrote {path}")


def bench(
    spec: SpecArg,
    activations: Annotated[Optional[list[str]], typer.Option(
        "--activations", "-a", help="Activations whose step time to compare with relu's "
                                    "(comma-separated; default: the spec's).", show_default=False)] = None,
    set_: SetOpt = None,
    width: WidthOpt = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Default: the spec's.", min=1,
                                                      show_default=False)] = None,
    steps: Annotated[int, typer.Option(help="Timed steps per measurement.", min=1)] = 20,
    warmup: Annotated[int, typer.Option(help="Untimed steps before measuring.", min=1)] = 5,
    repeats: Annotated[int, typer.Option(help="Interleaved measurements of each loop.", min=1)] = 3,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[Optional[str], typer.Option(help="fp32 or bf16; default: the spec's.",
                                                     show_default=False)] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the engine's model.")] = False,
    reference_workers: Annotated[int, typer.Option(
        help="DataLoader workers of the reference loop.", min=0)] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Measure elubench's training engine against a plain PyTorch loop (images/s, FLOP/s)."""
    from elubench.tools.bench import run_bench
    from elubench.training.runtime import resolve_device

    from elubench.net.checks import checked_activation
    loaded = _load(spec, set_, width, precision)
    names = []
    for name in _split_names(activations) or loaded.compare.activations:
        loaded, activation = checked_activation(loaded, name, spec.parent, "--activations")
        names.append(activation.ref or str(activation))
    console = _console(stderr=as_json)
    with console.status("measuring") as status:
        result = run_bench(loaded, device=resolve_device(device), activations=names,
                           batch_size=batch_size, steps=steps, warmup=warmup, repeats=repeats,
                           compile=compile_, reference_workers=reference_workers,
                           progress=lambda text: status.update(text))
    if as_json:
        typer.echo(dumps(result, indent=2))
        return
    from elubench.cli.views import bench_table
    console.print(bench_table(result))


def activations(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """List the activations: the built-ins and those installed packages register (entry-point
    group elubench.activations), with their formulas, parameters and sources."""
    from elubench.activations.registry import registry_rows
    from elubench.activations.code import registered_rows
    rows = registry_rows() + registered_rows()
    if as_json:
        typer.echo(dumps(rows, indent=2))
        return
    from elubench.cli.views import activations_table
    _console().print(activations_table(rows))
