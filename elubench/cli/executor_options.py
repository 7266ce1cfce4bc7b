"""`run`'s options of where runs train (the "Scaling out" panel of `elubench run --help`): the
executor and its settings, shards. Declarations only, like elubench.cli.options."""

from __future__ import annotations

from typing import Annotated, Any

import typer

SCALE = "Scaling out"


def scaling(help: str, *flags: str, **options: Any) -> Any:
    """An option of the "Scaling out" panel, its default not shown."""
    return typer.Option(*flags, help=help, show_default=False, rich_help_panel=SCALE, **options)


ShardOpt = Annotated[
    str | None,
    scaling(
        "Only the I-th of N equal slices of the matrix (I/N; with several specs, of each spec's), "
        "for schedulers elubench does not drive."
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
    scaling(
        "K runs at once on this device (K local workers sharing one GPU, or the cores).", min=1
    ),
]

WorkersOpt = Annotated[
    int | None,
    scaling(
        "local: worker processes (one GPU each when there are GPUs; on a CPU each run keeps its "
        "--threads).",
        min=1,
    ),
]

GpusOpt = Annotated[
    str | None, scaling("local: GPUs to spread workers over, e.g. 0,1 (default: all visible).")
]

RayAddressOpt = Annotated[
    str | None, scaling("ray: the cluster to use (default: start a local Ray instance).")
]

RayCpusOpt = Annotated[int | None, scaling("ray: CPUs of the local Ray instance (default: all).")]

CpusPerRunOpt = Annotated[
    float | None, scaling("ray/slurm: CPU cores (and torch threads) per run.")
]

GpusPerRunOpt = Annotated[
    float | None,
    scaling("ray/slurm: GPUs per run (ray default: 1 when the cluster has GPUs; slurm: 0)."),
]

PartitionOpt = Annotated[str | None, scaling("slurm: partition.")]

SlurmTimeOpt = Annotated[
    int | None,
    scaling(
        "slurm: time limit per job in minutes (a run cut at the limit resumes from its checkpoint "
        "on the next `run`; default 1440)."
    ),
]

SlurmParallelismOpt = Annotated[
    int | None, scaling("slurm: most jobs of the array running at once.")
]

SbatchOpt = Annotated[
    list[str] | None,
    scaling("slurm: an extra sbatch option KEY=VALUE (repeatable), e.g. account=proj."),
]

SlurmClusterOpt = Annotated[
    str | None, scaling("slurm: slurm, or local/debug to try the job array on this machine.")
]
