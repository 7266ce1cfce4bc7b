"""The slurm executor: one Slurm job per run, in a job array submitted through submitit."""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Sequence

from elubench.executors.base import ParallelExecutor, attempt, brief, import_extra
from elubench.errors import ExecutorError

SLURM_CLUSTERS = ("slurm", "local", "debug")


def sbatch_options(items: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` texts as extra sbatch options: ["account=abc"] -> {"account": "abc"}."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ExecutorError(f"cannot read sbatch option {item!r}", where="--sbatch",
                                hint="write KEY=VALUE, e.g. --sbatch account=myproject")
        options[key.strip().lstrip("-")] = value.strip()
    return options


class SlurmExecutor(ParallelExecutor):
    """One Slurm job per run, in a job array submitted through submitit; logs in
    results/<spec>/slurm/, which must be on a file system the nodes share. cluster="local"
    runs the array as processes on this machine and "debug" in this process (no Slurm needed)."""

    def __init__(self, partition: str | None = None, time_min: int = 1440, gpus_per_run: int = 0,
                 cpus_per_run: int | None = None, array_parallelism: int | None = None,
                 sbatch: Sequence[str] = (), cluster: str = "slurm", poll_seconds: float = 5.0):
        self.submitit = import_extra("submitit", "slurm", "submitit")
        if cluster not in SLURM_CLUSTERS:
            raise ExecutorError(f"unknown submitit cluster {cluster!r}", where="--slurm-cluster",
                                hint=f"use one of: {', '.join(SLURM_CLUSTERS)}")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ExecutorError("Slurm is not available here (no sbatch on the PATH)",
                                hint="run on the cluster's login node, or try the job array on "
                                     "this machine with --slurm-cluster local")
        self.parameters = {"timeout_min": time_min, "gpus_per_node": gpus_per_run,
                           "cpus_per_task": cpus_per_run, "slurm_partition": partition,
                           "slurm_array_parallelism": array_parallelism,
                           "slurm_additional_parameters": sbatch_options(sbatch) or None}
        self.cluster = cluster
        self.on_this_machine = cluster != "slurm"  # submitit's local and debug clusters
        self.threads = cpus_per_run  # None: the run's threads (train.threads)
        self.poll_seconds = poll_seconds

    name = "slurm"

    def runs_at_once(self, todo: int) -> None:
        return None  # Slurm places the jobs

    def _outcomes(self, results, work, todo, reporter, stopping):
        folder = results.path.resolve() / "slurm"
        executor = self.submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster)
        parameters = {**self.parameters,
                      "cpus_per_task": self.parameters["cpus_per_task"] or work.settings.threads}
        executor.update_parameters(name=f"elubench-{results.spec.name}", **parameters)
        try:
            jobs = executor.map_array(functools.partial(attempt, work), todo)
        except Exception as exc:  # sbatch said no: a partition, an account, a time limit
            raise ExecutorError(f"the job array was not accepted ({brief(exc)})",
                                where="--executor slurm",
                                hint="check the partition, time limit and --sbatch options") \
                from None
        reporter.note(f"{len(jobs)} runs submitted as jobs {jobs[0].job_id}..; logs in {folder}")
        pending = list(zip(jobs, todo))
        try:
            while pending:
                stopping()  # jobs that have not started see the flag and return at once
                waiting = []
                for job, cfg in pending:
                    if job.done():
                        yield (cfg, *_job_outcome(job))
                    else:
                        waiting.append((job, cfg))
                if len(waiting) == len(pending):
                    time.sleep(self.poll_seconds)
                pending = waiting
        except BaseException:
            for job, _ in pending:
                job.cancel(check=False)
            raise


def _job_outcome(job) -> tuple[str, object]:
    """A finished job's outcome; ("lost", why) when it died, timed out or was cancelled."""
    try:
        return job.result()
    except Exception as exc:
        return "lost", f"its job {job.job_id} ended without a record ({brief(exc)})"
