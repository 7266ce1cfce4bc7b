"""The ray executor: one Ray task per run, on a cluster or a Ray instance started here."""

from __future__ import annotations

from elubench.executors.base import ParallelExecutor, attempt, brief, import_extra
from elubench.errors import ExecutorError


class RayExecutor(ParallelExecutor):
    """One Ray task per run on the cluster at `address`, or on a Ray instance started here
    with `local_cpus` CPUs (all the cores when None) and shut down at the end. A run gets
    `gpus_per_run` GPUs; None: one where the cluster has GPUs and the device is not the CPU."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_run: float | None = None,
                 gpus_per_run: float | None = None, local_cpus: int | None = None):
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
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **local)
        except Exception as exc:
            raise ExecutorError(f"cannot start or reach Ray ({brief(exc)})",
                                where=f"--ray-address {self.address}" if self.address else None,
                                hint="check the address (ray status on the head node)") from None
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
            task = ray.remote(attempt).options(num_cpus=self.cpus_per_run or work.settings.threads,
                                               num_gpus=gpus, max_retries=0)
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
                    except ray.exceptions.RayError as exc:
                        outcome = ("lost", f"its Ray task failed ({brief(exc)})")
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
