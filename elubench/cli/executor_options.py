"""`run`'s options of where runs train (the "Scaling out" panel of `elubench run --help`): the
executor and its settings, shards. Declarations only, like elubench.cli.options."""

from __future__ import annotations

from typing import Annotated

import typer

SCALE = "Scaling out"

ShardOpt = Annotated[
    str | None,
    typer.Option(
        help="Only the I-th of N equal slices of the matrix (I/N; with several specs, of each "
        "spec's), for schedulers elubench does not drive.",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

ExecutorOpt = Annotated[
    str,
    typer.Option(
        help="Where runs train: auto (on a CPU as many runs at once as the cores allow, else one "
        "after another), serial (this process), local (worker processes), ray (Ray tasks) or "
        "slurm (a Slurm job array).",
        rich_help_panel=SCALE,
    ),
]

ParallelOpt = Annotated[
    int | None,
    typer.Option(
        help="K runs at once on this device (K local workers sharing one GPU, or the cores).",
        min=1,
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

WorkersOpt = Annotated[
    int | None,
    typer.Option(
        help="local: worker processes (one GPU each when there are GPUs; on a CPU each run keeps its "
        "--threads).",
        min=1,
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

GpusOpt = Annotated[
    str | None,
    typer.Option(
        help="local: GPUs to spread workers over, e.g. 0,1 (default: all visible).",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        help="ray: the cluster to use (default: start a local Ray instance).",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

RayCpusOpt = Annotated[
    int | None,
    typer.Option(
        help="ray: CPUs of the local Ray instance (default: all).",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

CpusPerRunOpt = Annotated[
    float | None,
    typer.Option(
        help="ray/slurm: CPU cores (and torch threads) per run.",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

GpusPerRunOpt = Annotated[
    float | None,
    typer.Option(
        help="ray/slurm: GPUs per run (ray default: 1 when the cluster has GPUs; slurm: 0).",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

PartitionOpt = Annotated[
    str | None, typer.Option(help="slurm: partition.", show_default=False, rich_help_panel=SCALE)
]

SlurmTimeOpt = Annotated[
    int | None,
    typer.Option(
        help="slurm: time limit per job in minutes (a run cut at the limit resumes from its checkpoint "
        "on the next `run`; default 1440).",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

SlurmParallelismOpt = Annotated[
    int | None,
    typer.Option(
        help="slurm: most jobs of the array running at once.",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

SbatchOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="slurm: an extra sbatch option KEY=VALUE (repeatable), e.g. account=proj.",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]

SlurmClusterOpt = Annotated[
    str | None,
    typer.Option(
        help="slurm: slurm, or local/debug to try the job array on this machine.",
        show_default=False,
        rich_help_panel=SCALE,
    ),
]
