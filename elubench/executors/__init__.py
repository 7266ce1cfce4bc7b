"""Executors: where a matrix's runs train.

    serial   one after another in this process (the reference the others match)
    local    worker processes on this machine (executors.local)
    ray      a Ray task per run (executors.ray_tasks)
    slurm    a Slurm job per run, in a job array through submitit (executors.slurm)

`executor_for` turns `elubench run`'s flags into one of them; what they share is in
executors.base. Importing this package imports neither torch nor Ray nor submitit.
"""

from __future__ import annotations

import inspect

from elubench.errors import ElubenchError, ExecutorError
from elubench.executors.base import (Executor, ParallelExecutor, SerialExecutor, StopFlag,
                                     WorkerPayload, attempt, import_extra, worker_settings)
from elubench.executors.local import LocalExecutor, assign_gpus, thread_share, visible_gpus
from elubench.executors.ray_tasks import RayExecutor
from elubench.executors.slurm import SLURM_CLUSTERS, SlurmExecutor, sbatch_options

EXECUTORS = {"serial": SerialExecutor, "local": LocalExecutor, "ray": RayExecutor,
             "slurm": SlurmExecutor}

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ParallelExecutor", "RayExecutor",
           "SLURM_CLUSTERS", "SerialExecutor", "SlurmExecutor", "StopFlag", "WorkerPayload",
           "assign_gpus", "attempt", "executor_for", "import_extra", "make_executor",
           "sbatch_options", "thread_share", "visible_gpus", "worker_settings"]


def make_executor(name: str, **options) -> Executor:
    """The executor called `name`, built from `options`; ExecutorError for a name, an option or
    an optional extra that is not there."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r}", where="--executor",
                            hint=f"use one of: {', '.join(EXECUTORS)}")
    accepted = inspect.signature(EXECUTORS[name]).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ExecutorError(f"the {name} executor takes no option {', '.join(unknown)}",
                            hint=f"its options: {', '.join(accepted) or 'none'}")
    return EXECUTORS[name](**options)


def executor_for(name: str, *, parallel: int | None = None, device: str = "auto",
                 **options) -> Executor:
    """The executor `elubench run`'s flags ask for. Only the options given (not None) reach
    it, so one that does not apply (--workers with --executor ray) is an error, not silently
    ignored. `parallel` K means K local workers sharing one device."""
    given = {key: value for key, value in options.items() if value is not None}
    if name == "slurm":  # submitit wants whole numbers
        for key in ("cpus_per_run", "gpus_per_run"):
            if key in given:
                given[key] = int(given[key])
    if parallel is None:
        return make_executor(name, **given)
    if name not in ("serial", "local") or "workers" in given:
        raise ElubenchError("--parallel runs K local workers on one device", where="--parallel",
                            hint="drop --executor/--workers, or use --workers alone")
    gpus = visible_gpus() if device in ("auto", "cuda") or device.startswith("cuda") else []
    if device.startswith("cuda:"):
        gpus = [device.split(":")[1]]
    return make_executor("local", workers=parallel, gpus=gpus[:1] or None)
