"""Which executor a `run` gets: `executor_for` turns `elubench run`'s flags into one (by default,
as many runs at once as a CPU's cores and memory allow: `default_executor`), `make_executor`
builds one by name."""

from __future__ import annotations

import inspect

from elubench.core.errors import ElubenchError, ExecutorError
from elubench.core.machine import visible_gpus
from elubench.execution.executors.base import (
    Executor,
    SerialExecutor,
)
from elubench.execution.executors.local import LocalExecutor
from elubench.execution.executors.ray_tasks import RayExecutor
from elubench.execution.executors.slurm import SlurmExecutor

EXECUTORS = {
    "serial": SerialExecutor,
    "local": LocalExecutor,
    "ray": RayExecutor,
    "slurm": SlurmExecutor,
}


def make_executor(name: str, **options) -> Executor:
    """The executor called `name`, built from `options`; ExecutorError for a name, an option or
    an optional extra that is not there."""
    if name not in EXECUTORS:
        raise ExecutorError(
            f"unknown executor {name!r}",
            where="--executor",
            hint=f"use one of: {', '.join(EXECUTORS)}",
        )
    accepted = inspect.signature(EXECUTORS[name]).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ExecutorError(
            f"the {name} executor takes no option {', '.join(unknown)}",
            hint=f"its options: {', '.join(accepted) or 'none'}",
        )
    return EXECUTORS[name](**options)


# Each executor option's command-line flag and the executor it belongs to, to name them when
# the flag is given without --executor.
FLAG_EXECUTOR = {
    "workers": ("--workers", "local"),
    "gpus": ("--gpus", "local"),
    "address": ("--ray-address", "ray"),
    "local_cpus": ("--ray-cpus", "ray"),
    "cpus_per_run": ("--cpus-per-run", "ray or slurm"),
    "gpus_per_run": ("--gpus-per-run", "ray or slurm"),
    "partition": ("--slurm-partition", "slurm"),
    "time_min": ("--slurm-time", "slurm"),
    "array_parallelism": ("--slurm-parallelism", "slurm"),
    "sbatch": ("--sbatch", "slurm"),
    "cluster": ("--slurm-cluster", "slurm"),
}


def executor_for(
    name: str = "auto",
    *,
    parallel: int | None = None,
    device: str = "auto",
    spec=None,
    threads: int | None = None,
    **options,
) -> Executor:
    """The executor `elubench run`'s flags ask for. Only the options given (not None) reach
    it, so one that does not apply (--workers with --executor ray) is an error, not silently
    ignored. `parallel` K means K local workers sharing one device. "auto" (no --executor):
    on a CPU, as many runs at once as the cores allow at the run's thread count (`threads`,
    else the spec's) and the memory allows; on a GPU, one run after another."""
    given = {key: value for key, value in options.items() if value is not None}
    if name == "slurm":  # submitit wants whole numbers
        for key in ("cpus_per_run", "gpus_per_run"):
            if key in given:
                given[key] = int(given[key])
    if parallel is not None:
        if name not in ("auto", "serial", "local") or "workers" in given:
            raise ElubenchError(
                "--parallel runs K local workers on one device",
                where="--parallel",
                hint="drop --executor/--workers, or use --workers alone",
            )
        gpus = visible_gpus() if device in ("auto", "cuda") or device.startswith("cuda") else []
        if device.startswith("cuda:"):
            gpus = [device.split(":")[1]]
        return make_executor("local", workers=parallel, gpus=gpus[:1] or None)
    if name != "auto":
        return make_executor(name, **given)
    if set(given) - {"workers", "gpus"}:
        flag, owner = FLAG_EXECUTOR[sorted(set(given) - {"workers", "gpus"})[0]]
        raise ExecutorError(
            f"{flag} applies to --executor {owner}",
            where=flag,
            hint=f"add --executor {owner.split()[0]}",
        )
    if given:
        return make_executor("local", **given)
    return default_executor(device, spec, threads)


def default_executor(device: str, spec=None, threads: int | None = None) -> Executor:
    """On a CPU: cores // threads runs at once (within the memory available), one at a time
    when that is 1; anywhere else one run after another."""
    from elubench.core.machine import available_memory, trains_on_cpu, usable_cores

    if not trains_on_cpu(device):
        return SerialExecutor()
    threads = threads or (spec.train.threads if spec is not None else 1)
    at_once = max(1, usable_cores() // threads)
    memory = available_memory()
    if spec is not None and memory is not None and at_once > 1:
        from elubench.net.memory import run_memory_bytes

        per_run = run_memory_bytes(spec, spec.compare.parsed_activations()[0])
        at_once = max(1, min(at_once, int(0.8 * memory // per_run)))
    return LocalExecutor(workers=at_once) if at_once > 1 else SerialExecutor()
