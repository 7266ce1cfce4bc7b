"""The ray executor: one Ray task per run, on a cluster or a Ray instance started here."""

from __future__ import annotations

import time

from elubench.core.errors import ExecutorError
from elubench.execution.executors.base import ParallelExecutor, attempt, brief, import_extra
from elubench.execution.runner import STALE_SECONDS
from elubench.store.rundir import ResultsDir

# How often Ray resubmits a run's task whose worker process or node died (a system failure in
# Ray's terms: a node lost mid-run, a worker killed) before the driver reports the run lost.
# Retrying is safe: a resubmitted task claims the run again once the dead attempt's claim is
# stale (see `attempt_in_ray`) and resumes it from its last checkpoint, so a run is trained to
# its end once and recorded once. A user's mistake is not retried: `attempt` returns it as an
# ("error", ...) outcome rather than raising, and exceptions are never retried
# (retry_exceptions=False). A run that kills its worker every time (a segfault, the OOM killer)
# costs MAX_RETRIES more tries, each from its checkpoint, before it is reported lost.
MAX_RETRIES = 3

# How often a retried task looks again at a claim left by the attempt that died.
RETRY_POLL_SECONDS = 1.0


def _attempt_number() -> int:
    """0 for a task's first execution, n for Ray's n-th retry of it; 0 where this Ray does
    not say (the attempt number has no public API: the core worker's is read)."""
    try:
        import ray

        worker = ray._private.worker.global_worker
        # set on a connected worker at run time; Ray's Worker class does not declare it
        core = worker.core_worker  # type: ignore[attr-defined]
        return int(core.get_current_task_attempt_number())
    except Exception:
        return 0


def attempt_in_ray(
    work,
    cfg,
    attempt_number=_attempt_number,
    patience: float | None = None,
    poll: float = RETRY_POLL_SECONDS,
) -> tuple[str, object]:
    """`attempt` as a Ray task. On a retry (the attempt before died with its node or worker)
    the run's claim may still be the dead attempt's: on this host it is stale once the process
    is gone (a worker on a removed node dies a moment after its raylet), on another host only
    after STALE_SECONDS without a heartbeat. So a retry that is skipped while the run's claim is
    there waits for the claim to go stale (at most `patience`, STALE_SECONDS and two polls by
    default), then takes the run over and resumes it from its checkpoint. A first attempt that
    finds the run claimed is skipped at once, as with every executor (another driver holds it);
    so is a retry skipped for another reason (a damaged file, an OS error: no claim is left)."""
    outcome = attempt(work, cfg)
    if outcome[0] != "skipped" or attempt_number() == 0:
        return outcome
    claim = ResultsDir(work.settings.results, work.spec()).run(cfg.run_id).claim_path
    deadline = time.monotonic() + (STALE_SECONDS + 2 * poll if patience is None else patience)
    while outcome[0] == "skipped" and time.monotonic() < deadline:
        if not claim.exists():  # not held (any more): one last look, as its holder let go
            return attempt(work, cfg)
        time.sleep(poll)
        outcome = attempt(work, cfg)  # the claim taken over, the holder's record, or stopped
    return outcome


class RayExecutor(ParallelExecutor):
    """One Ray task per run on the cluster at `address`, or on a Ray instance started here
    with `local_cpus` CPUs (all the cores when None) and shut down at the end. A run gets
    `gpus_per_run` GPUs; None: one where the cluster has GPUs and the device is not the CPU.
    A task whose node or worker dies is resubmitted by Ray (MAX_RETRIES times) and resumes
    its run from the checkpoint; only then is the run reported lost."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        cpus_per_run: float | None = None,
        gpus_per_run: float | None = None,
        local_cpus: int | None = None,
    ):
        self.ray = import_extra("ray", "ray", "Ray")
        self.address = address
        self.cpus_per_run = cpus_per_run  # None: the run's threads (train.threads)
        self.gpus_per_run = gpus_per_run
        self.local_cpus = local_cpus
        self.threads = max(1, int(cpus_per_run)) if cpus_per_run else None
        self.on_this_machine = address is None  # a Ray instance started here

    def runs_at_once(self, todo: int) -> None:
        return None  # Ray places the tasks

    def _connect(self) -> bool:
        """Join the cluster (or start a local instance); True when this call started Ray."""
        ray = self.ray
        if ray.is_initialized():
            return False
        local = {"num_cpus": self.local_cpus} if self.address is None else {}
        try:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                **local,
            )
        except Exception as exc:
            raise ExecutorError(
                f"cannot start or reach Ray ({brief(exc)})",
                where=f"--ray-address {self.address}" if self.address else None,
                hint="check the address (ray status on the head node)",
            ) from None
        return True

    def _outcomes(self, results, work, todo, reporter, stopping):
        ray = self.ray
        started = self._connect()
        refs = {}
        try:
            gpus = self.gpus_per_run
            if gpus is None:
                wants_gpu = work.settings.device != "cpu"
                gpus = 1 if wants_gpu and ray.cluster_resources().get("GPU") else 0
            task = ray.remote(attempt_in_ray).options(
                num_cpus=self.cpus_per_run or work.settings.threads,
                num_gpus=gpus,
                max_retries=MAX_RETRIES,
                retry_exceptions=False,
            )
            shared = ray.put(work)
            refs = {task.remote(shared, cfg): cfg for cfg in todo}
            reporter.note(f"{len(refs)} runs sent to Ray ({self.address or 'a local instance'})")
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                stopping()  # tasks that have not started see the flag and return at once
                for ref in ready:
                    cfg = refs.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # raised in the task: a bug
                        outcome = ("lost", f"its Ray task raised an error ({brief(exc)})")
                    except ray.exceptions.RayError as exc:  # a node or worker died, retries spent
                        outcome = (
                            "lost",
                            f"its Ray task failed, Ray's retries included ({brief(exc)})",
                        )
                    yield (cfg, *outcome)
        except BaseException:
            for ref in refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:
                    pass  # finished or gone meanwhile
            raise
        finally:
            if started:
                ray.shutdown()
