"""The slurm executor: one Slurm job per run, in a job array submitted through submitit."""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
from collections.abc import Sequence

from elubench.core.errors import ExecutorError
from elubench.execution.executors.base import ParallelExecutor, attempt, brief, import_extra
from elubench.store.layout import SLURM_LOGS

SLURM_CLUSTERS = ("slurm", "local", "debug")


def sbatch_options(items: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` texts as extra sbatch options: ["account=abc"] -> {"account": "abc"}."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ExecutorError(
                f"cannot read sbatch option {item!r}",
                where="--sbatch",
                hint="write KEY=VALUE, e.g. --sbatch account=myproject",
            )
        options[key.strip().lstrip("-")] = value.strip()
    return options


class SlurmExecutor(ParallelExecutor):
    """One Slurm job per run, in a job array submitted through submitit; logs in
    results/<spec>/slurm/, which must be on a file system the nodes share. cluster="local"
    runs the array as processes on this machine and "debug" in this process (no Slurm needed).
    Where sacct does not answer (a Slurm without accounting), job states come from squeue."""

    def __init__(
        self,
        partition: str | None = None,
        time_min: int = 1440,
        gpus_per_run: int = 0,
        cpus_per_run: int | None = None,
        array_parallelism: int | None = None,
        sbatch: Sequence[str] = (),
        cluster: str = "slurm",
        poll_seconds: float = 5.0,
    ):
        self.submitit = import_extra("submitit", "slurm", "submitit")
        if cluster not in SLURM_CLUSTERS:
            raise ExecutorError(
                f"unknown submitit cluster {cluster!r}",
                where="--slurm-cluster",
                hint=f"use one of: {', '.join(SLURM_CLUSTERS)}",
            )
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ExecutorError(
                "Slurm is not available here (no sbatch on the PATH)",
                hint="run on the cluster's login node, or try the job array on "
                "this machine with --slurm-cluster local",
            )
        self.parameters = {
            "timeout_min": time_min,
            "gpus_per_node": gpus_per_run,
            "cpus_per_task": cpus_per_run,
            "slurm_partition": partition,
            "slurm_array_parallelism": array_parallelism,
            "slurm_additional_parameters": sbatch_options(sbatch) or None,
        }
        self.cluster = cluster
        self.on_this_machine = cluster != "slurm"  # submitit's local and debug clusters
        self.threads = cpus_per_run  # None: the run's threads (train.threads)
        self.poll_seconds = poll_seconds

    name = "slurm"
    lost_after_s = 15.0  # without accounting: how long a job may be over without its result
    # file before it counts as lost (a shared file system may lag)

    def runs_at_once(self, todo: int) -> None:
        return None  # Slurm places the jobs

    def _outcomes(self, results, work, todo, reporter, stopping):
        folder = results.path.resolve() / SLURM_LOGS
        executor = self.submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster)
        parameters = {
            **self.parameters,
            "cpus_per_task": self.parameters["cpus_per_task"] or work.settings.threads,
        }
        executor.update_parameters(name=f"elubench-{results.spec.name}", **parameters)
        try:
            jobs = executor.map_array(functools.partial(attempt, work), todo)
        except Exception as exc:  # sbatch said no: a partition, an account, a time limit
            raise ExecutorError(
                f"the job array was not accepted ({brief(exc)})",
                where="--executor slurm",
                hint="check the partition, time limit and --sbatch options",
            ) from None
        reporter.note(f"{len(jobs)} runs submitted as jobs {jobs[0].job_id}..; logs in {folder}")
        squeue = None
        if not self.on_this_machine and (why := _sacct_fails(jobs[0].job_id)):
            # submitit asks only sacct, and warns on every poll that it failed (3 lines each);
            # it would also wait for ever on a job that ended without a result file
            squeue = Squeue(jobs[0].job_id.split("_")[0], self.lost_after_s)
            reporter.note(f"sacct does not answer here ({why}); job states come from squeue only")
        pending = list(zip(jobs, todo))
        try:
            while pending:
                stopping()  # jobs that have not started see the flag and return at once
                if squeue:
                    squeue.refresh()
                waiting = []
                for job, cfg in pending:
                    if _has_result(job) if squeue else job.done():
                        yield (cfg, *_job_outcome(job))
                    elif squeue and (state := squeue.ended(job.job_id)):
                        yield cfg, "lost", f"its job {job.job_id} ended ({state}) without a record"
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


def _sacct_fails(job_id: str) -> str | None:
    """Why sacct cannot give job states here (the last line it wrote, e.g. "Slurm accounting
    storage is disabled"); None when it answers."""
    try:
        out = subprocess.run(
            ["sacct", "-n", "-X", "-o", "JobID", "-j", job_id],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return brief(exc)
    if out.returncode == 0:
        return None
    lines = [line.strip() for line in out.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {out.returncode}"


def _has_result(job) -> bool:
    """Whether a job wrote its result file: job.done() without asking sacct."""
    try:  # as submitit does: a chmod refreshes a network file system's cached view
        job.paths.folder.chmod(job.paths.folder.stat().st_mode)
    except OSError:
        pass
    return job.paths.result_pickle.exists()


class Squeue:
    """The states of one job array's jobs from squeue, where sacct does not answer (a Slurm
    without accounting). squeue lists ended jobs for a few minutes (MinJobAge), then forgets
    them; a job is over when squeue says it ended or no longer lists it."""

    ACTIVE = {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "STOPPED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "RESV_DEL_HOLD",
    }

    def __init__(self, array_id: str, grace_s: float):
        self.array_id, self.grace_s = array_id, grace_s
        self.states: dict[str, str] | None = None  # None: squeue did not answer
        self.over_since: dict[str, float] = {}

    def refresh(self) -> None:
        try:
            out = subprocess.run(
                ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", self.array_id],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            self.states = None
            return
        if out.returncode != 0 and "Invalid job id" not in out.stderr:
            self.states = None  # slurmctld busy or away: judge nothing this time
            return
        self.states = dict(
            line.strip().split("|", 1) for line in out.stdout.splitlines() if "|" in line
        )

    def ended(self, job_id: str) -> str | None:
        """How a job ended ("FAILED", "gone from squeue"...) once it has been over for grace_s
        seconds; None while it may still run or write its result."""
        if self.states is None:
            return None
        state = self.states.get(job_id, "gone from squeue")
        if state in self.ACTIVE:
            self.over_since.pop(job_id, None)
            return None
        since = self.over_since.setdefault(job_id, time.monotonic())
        return state if time.monotonic() - since >= self.grace_s else None
