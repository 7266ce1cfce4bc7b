"""Executors: where a matrix's runs train. serial: one after another in this process (the
reference); local: worker processes on this machine; ray: a Ray task per run; slurm: a Slurm
job per run, in a job array submitted through submitit.

Every run goes through runner.execute_run wherever it trains, so it claims its folder, writes
its own record and is recorded `failed` when it crashes, as in the serial path; exclusive claims
keep two drivers from training one run twice. The driver hands out only runs not done, reports
records as they land, and reports a run whose worker died without a record as lost: its claim
goes stale and the next invocation trains it (from its checkpoint). Workers import torch; the
driver does not.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import itertools
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import deque
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from elubench.errors import ElubenchError, ExecutorError
from elubench.grid import RunConfig
from elubench.runner import (Interrupted, Reporter, Settings, execute_run, prepare_matrix,
                             run_matrix, stop_on_first_ctrl_c)
from elubench.store import ResultsDir

SLURM_CLUSTERS = ("slurm", "local", "debug")


class Executor:
    """Trains the runs of `configs` that are not done; returns the records of every done run."""

    def run(self, spec, configs: list[RunConfig], settings: Settings,
            reporter: Reporter | None = None) -> list[dict]:
        raise NotImplementedError


class SerialExecutor(Executor):
    """One run after another in this process: the default, and the reference the others match."""

    def run(self, spec, configs, settings, reporter=None):
        return run_matrix(spec, configs, settings, reporter)


def make_executor(name: str, **options) -> Executor:
    """The executor called `name`, built from `options`; ExecutorError for a name, an option or
    an optional extra that is not there."""
    classes = {"serial": SerialExecutor, "local": LocalExecutor, "ray": RayExecutor,
               "slurm": SlurmExecutor}
    if name not in classes:
        raise ExecutorError(f"unknown executor {name!r}", where="--executor",
                            hint=f"use one of: {', '.join(classes)}")
    accepted = inspect.signature(classes[name]).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ExecutorError(f"the {name} executor takes no option {', '.join(unknown)}",
                            hint=f"its options: {', '.join(accepted) or 'none'}")
    return classes[name](**options)


def _require(module: str, extra: str, what: str):
    """Import an optional extra, or say in one message how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExecutorError(f"the {extra} executor needs {what}: pip install 'elubench[{extra}]'",
                            where="--executor") from None


# --- what travels to a worker ----------------------------------------------------------------

@dataclasses.dataclass
class StopFlag:
    """A file that asks every worker of one driver, wherever it runs, to checkpoint and stop.

    A file rather than a signal or an event: it reaches spawned processes, Ray tasks and Slurm
    jobs alike through the results folder they share. Workers look at most every `every` s.
    """

    path: Path
    every: float = 0.25
    _seen: bool = dataclasses.field(default=False, init=False, repr=False)
    _next_look: float = dataclasses.field(default=0.0, init=False, repr=False)

    def __call__(self) -> bool:
        if not self._seen and time.monotonic() >= self._next_look:
            self._seen = self.path.exists()
            self._next_look = time.monotonic() + self.every
        return self._seen

    def request(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass  # another driver's flag is still there


@dataclasses.dataclass(frozen=True)
class Work:
    """What every worker needs besides its run: the spec as JSON data, how to run, when to stop.

    The spec travels as data and is validated again where it lands: a worker need not unpickle
    pydantic models, and a hash check makes sure it trains the spec the driver was given.
    """

    spec_data: dict
    spec_hash: str
    settings: Settings
    stop: StopFlag

    def spec(self):
        from elubench.specfile import validate_spec
        spec = validate_spec(self.spec_data, source=f"spec {self.spec_data.get('name')!r}")
        if spec.hash != self.spec_hash:
            raise ExecutorError(f"the spec's hash changed on the way to a worker "
                                f"({self.spec_hash} -> {spec.hash})",
                                hint="check that the workers run the same elubench version")
        return spec


def attempt(work: Work, cfg: RunConfig) -> tuple[str, object]:
    """Run one config wherever an executor placed it. The outcome is plain picklable data:
    ("done", record), ("skipped", None) when another process holds the run, ("stopped", None)
    when the driver asked to stop, or ("error", ElubenchError) for a mistake the user can fix."""
    from elubench.train import Stopped

    if work.stop():
        return "stopped", None
    try:
        record = execute_run(work.spec(), cfg, work.settings, should_stop=work.stop)
    except Stopped:
        return "stopped", None
    except ElubenchError as exc:
        return "error", exc
    return ("skipped", None) if record is None else ("done", record)


def worker_settings(settings: Settings, threads: int | None) -> Settings:
    """Settings for workers: absolute paths (a worker may start in another folder or on another
    machine) and a thread share, unless the user fixed the thread count."""

    def absolute(path):
        return None if path is None else Path(path).resolve()

    return dataclasses.replace(settings, results=absolute(settings.results),
                               data_dir=absolute(settings.data_dir),
                               cache_dir=absolute(settings.cache_dir),
                               threads=settings.threads or threads)


def _brief(exc: BaseException) -> str:
    """The last line of an exception's text (Ray and submitit put a whole traceback there)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else exc.__class__.__name__


# --- the driver every parallel executor shares ---------------------------------------------

class ParallelExecutor(Executor):
    """Dispatches runs to workers and gathers their outcomes; subclasses say where they run."""

    threads: int | None = None  # CPU threads of one run; None: the cores its worker may use

    def _outcomes(self, results: ResultsDir, work: Work, todo: list[RunConfig],
                  reporter: Reporter, stopping):
        """Yield (cfg, kind, payload) for every run of `todo` that was handed out, as each lands;
        hand out no more once stopping() is true. kind: done, skipped, stopped, error or lost."""
        raise NotImplementedError

    def run(self, spec, configs, settings, reporter=None):
        reporter = reporter or Reporter()
        # the driver does not load the data: a cluster's driver may not see it, and a worker
        # that misses it stops the matrix with its error
        results, state = prepare_matrix(spec, configs, settings, load_data=False)
        records = list(state.done.values())
        reporter.matrix_start(len(configs), len(state.done), len(state.todo))
        if not state.todo:
            return records
        work = Work(spec.model_dump(mode="json"), spec.hash,
                    worker_settings(settings, self.threads),
                    StopFlag(results.path.resolve() / ".stop" / uuid.uuid4().hex))
        with stop_on_first_ctrl_c() as ctrl_c:

            def stopping() -> bool:
                if ctrl_c() and not work.stop.path.exists():
                    work.stop.request()
                return ctrl_c()

            try:
                outcomes = self._outcomes(results, work, state.todo, reporter, stopping)
                with closing(outcomes):
                    for cfg, kind, payload in outcomes:
                        _report(cfg, kind, payload, records, reporter)
            finally:
                work.stop.clear()
            if ctrl_c():
                raise Interrupted(f"stopped: {len(records)} of {len(configs)} runs are recorded; "
                                  "the runs in progress saved their checkpoints", records)
        return records


def _report(cfg: RunConfig, kind: str, payload, records: list[dict], reporter: Reporter) -> None:
    """Tell the reporter how one run ended; a user's mistake stops the matrix."""
    if kind == "done":
        records.append(payload)
        reporter.run_end(cfg, payload)
    elif kind == "skipped":
        reporter.run_skipped(cfg, "another process is training it")
    elif kind == "lost":
        reporter.run_skipped(cfg, f"lost: {payload}; the next invocation trains it again")
    elif kind == "error":
        raise payload


# --- local: worker processes on this machine -----------------------------------------------

def visible_gpus() -> list[str]:
    """The GPUs this process may use, found without importing torch (the driver stays light):
    CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = (item.strip() for item in listed.split(","))
        return list(itertools.takewhile(lambda g: g and not g.startswith("-"), ids))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        lines = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(k) for k, _ in enumerate(x for x in lines.splitlines() if x.startswith("GPU "))]


def assign_gpus(workers: int, gpus: list[str]) -> list[str | None]:
    """Worker k gets GPU k mod n (several workers may share one); None: no GPU."""
    return [gpus[k % len(gpus)] if gpus else None for k in range(workers)]


def thread_share(workers: int) -> int:
    """Each worker's share of this process's cores."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)) // workers)
    return max(1, (os.cpu_count() or 1) // workers)


def _local_worker(conn, work: Work, gpu: str | None) -> None:
    """A worker process: train the runs the driver sends until it sends None or goes away.

    Ctrl-C reaches the whole process group; the worker ignores it and stops when the driver
    raises the stop flag, so a run is never cut between its checkpoint and its record.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before anything initializes CUDA
    while True:
        try:
            cfg = conn.recv()
        except EOFError:
            return
        if cfg is None:
            return
        conn.send(attempt(work, cfg))


def _receive(proc, conn) -> tuple[str, object] | None:
    """A worker's outcome if it sent one, ("lost", why) if it died first, None while busy."""
    alive = proc.is_alive()  # looked at first: what a dead worker sent is already in the pipe
    try:
        if conn.poll():
            return conn.recv()
    except (EOFError, OSError):
        pass
    else:
        if alive:
            return None
    proc.join()
    code = proc.exitcode
    how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return "lost", f"its worker process died ({how})"


class LocalExecutor(ParallelExecutor):
    """`workers` spawned processes on this machine, each pinned to one GPU when there are GPUs
    (worker k gets GPU k mod n), else given an equal share of the cores."""

    def __init__(self, workers: int = 2, gpus: list[str] | None = None):
        if workers < 1:
            raise ExecutorError(f"needs at least one worker, not {workers}", where="--workers")
        self.workers = workers
        self.gpus = gpus
        self.threads = thread_share(workers)

    def _gpus(self, device: str) -> list[str]:
        """GPUs to pin workers to: only when the device is left to CUDA as a whole."""
        if device not in ("auto", "cuda"):
            return []
        return self.gpus if self.gpus is not None else visible_gpus()

    def _outcomes(self, results, work, todo, reporter, stopping):
        context = multiprocessing.get_context("spawn")
        placement = assign_gpus(min(self.workers, len(todo)), self._gpus(work.settings.device))
        workers: dict[int, tuple] = {}

        def start(slot: int) -> None:
            here, there = context.Pipe()
            proc = context.Process(target=_local_worker, args=(there, work, placement[slot]),
                                   name=f"elubench-worker-{slot}", daemon=True)
            proc.start()
            there.close()
            workers[slot] = (proc, here)

        running: dict[int, RunConfig] = {}
        pending = deque(todo)
        try:
            for slot in range(len(placement)):
                start(slot)
            while running or pending:
                if stopping():
                    pending.clear()  # the runs in progress checkpoint; no new ones start
                for slot in range(len(placement)):
                    if slot not in running and pending:
                        running[slot] = pending.popleft()
                        workers[slot][1].send(running[slot])
                        reporter.run_start(running[slot], len(todo) - len(pending) - 1, len(todo))
                ends = [end for proc, conn in workers.values() for end in (proc.sentinel, conn)]
                multiprocessing.connection.wait(ends, timeout=0.5)
                for slot, cfg in list(running.items()):
                    outcome = _receive(*workers[slot])
                    if outcome is None:
                        continue
                    del running[slot]
                    if outcome[0] == "lost":
                        start(slot)  # a fresh worker takes the dead one's place
                    yield (cfg, *outcome)
        except BaseException:
            for proc, _ in workers.values():
                proc.terminate()  # a hard stop: their claims die with them and go stale
            raise
        finally:
            _close_workers(workers.values())


def _close_workers(workers) -> None:
    """Tell idle workers to finish, then wait for them (terminating any that hang)."""
    for _, conn in workers:
        try:
            conn.send(None)
        except OSError:
            pass
    for proc, conn in workers:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        conn.close()


# --- ray: one task per run ------------------------------------------------------------------

class RayExecutor(ParallelExecutor):
    """One Ray task per run on the cluster at `address`, or on a Ray instance started here
    with `local_cpus` CPUs (all the cores when None) and shut down at the end. A run gets
    `gpus_per_run` GPUs; None: one where the cluster has GPUs and the device is not the CPU."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0,
                 gpus_per_run: float | None = None, local_cpus: int | None = None):
        self.ray = _require("ray", "ray", "Ray")
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.local_cpus = local_cpus
        self.threads = max(1, int(cpus_per_run))

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
            raise ExecutorError(f"cannot start or reach Ray ({_brief(exc)})",
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
            task = ray.remote(attempt).options(num_cpus=self.cpus_per_run, num_gpus=gpus,
                                               max_retries=0)
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
                        outcome = ("lost", f"its Ray task failed ({_brief(exc)})")
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


# --- slurm: a job array through submitit ----------------------------------------------------

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
        self.submitit = _require("submitit", "slurm", "submitit")
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
        self.threads = cpus_per_run  # None: the cores Slurm gave the job
        self.poll_seconds = poll_seconds

    def _outcomes(self, results, work, todo, reporter, stopping):
        folder = results.path.resolve() / "slurm"
        executor = self.submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster)
        executor.update_parameters(name=f"elubench-{results.spec.name}", **self.parameters)
        try:
            jobs = executor.map_array(functools.partial(attempt, work), todo)
        except Exception as exc:  # sbatch said no: a partition, an account, a time limit
            raise ExecutorError(f"the job array was not accepted ({_brief(exc)})",
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
        return "lost", f"its job {job.job_id} ended without a record ({_brief(exc)})"
