"""What every executor shares: the Executor interface, the serial executor, what travels to a
worker (`WorkerPayload`, `attempt`) and the driver loop of the parallel executors.

Every run goes through runner.execute_run wherever it trains, so it claims its folder, writes
its own record and is recorded `failed` when it crashes, as in the serial path; exclusive claims
keep two drivers from training one run twice. The driver hands out only runs not done, reports
records as they land, and reports a run whose worker died without a record as lost (Ray first
retries it on another node, see ray_tasks): its claim goes stale and the next invocation trains
it (from its checkpoint). A run a worker could not go on with (another process's claim, a
damaged file, an OS error) comes back as skipped, with the reason. Workers import torch; the
driver does not.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
import uuid
from contextlib import closing
from pathlib import Path

from elubench.activations.code import receive, ship
from elubench.core.errors import ElubenchError, ExecutorError, Interrupted, Stopped
from elubench.execution.runner import (
    execute_run,
    prepare_matrix,
    release_data,
    report_damaged,
    run_matrix,
    stop_on_first_ctrl_c,
)
from elubench.execution.state import DoneElsewhere, Reporter, RunSettings, Skipped
from elubench.spec.matrix import RunConfig
from elubench.store.layout import STOP
from elubench.store.record import RunRecord
from elubench.store.rundir import ResultsDir


class Executor:
    """Trains the runs of `configs` that are not done; returns the records of every done run."""

    name = "executor"

    def runs_at_once(self, todo: int) -> int | None:
        """Runs training at once beside each other on one machine; None where unknown (a
        cluster schedules them)."""
        return 1

    def run(
        self,
        spec,
        configs: list[RunConfig],
        settings: RunSettings,
        reporter: Reporter | None = None,
    ) -> list[RunRecord]:
        raise NotImplementedError


class SerialExecutor(Executor):
    """One run after another in this process: the reference the others match."""

    name = "serial"

    def run(self, spec, configs, settings, reporter=None):
        settings = dataclasses.replace(settings, executor=self.name, runs_at_once=1)
        return run_matrix(spec, configs, settings, reporter)


def import_extra(module: str, extra: str, what: str):
    """Import an optional extra, or say in one message how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExecutorError(
            f"the {extra} executor needs {what}: pip install 'elubench[{extra}]'",
            where="--executor",
        ) from None


# --- what travels to a worker ----------------------------------------------------------------


@dataclasses.dataclass
class StopFlag:
    """A file that asks every worker of one driver, wherever it runs, to checkpoint and stop.

    A file rather than a signal or an event: it reaches spawned processes, Ray tasks and Slurm
    jobs alike through the results folder they share. Workers look at most every `every` s.
    A local worker also stops when its driver is gone (`driver`: the driver's pid): a driver
    killed outright (SIGKILL, a scheduler's preemption) must not leave workers training on.
    """

    path: Path
    every: float = 0.25
    driver: int | None = None
    _seen: bool = dataclasses.field(default=False, init=False, repr=False)
    _next_look: float = dataclasses.field(default=0.0, init=False, repr=False)

    def __call__(self) -> bool:
        if not self._seen and time.monotonic() >= self._next_look:
            orphaned = self.driver is not None and os.getppid() != self.driver
            self._seen = orphaned or self.path.exists()
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
class WorkerPayload:
    """What every worker needs besides its run: the spec as JSON data, how to run, when to stop.

    The spec travels as data and is validated again where it lands: a worker need not unpickle
    pydantic models, and a hash check makes sure it trains the spec the driver was given. The
    sources of file activations travel too (a Ray node need not see the file); the worker
    checks each against the SHA-256 the spec (and so its hash) holds.
    """

    spec_data: dict
    spec_hash: str
    settings: RunSettings
    stop: StopFlag
    activation_files: dict = dataclasses.field(default_factory=dict)  # path -> source bytes

    def spec(self):
        from elubench.spec.loader import validate_spec

        receive(self.activation_files)
        spec = validate_spec(self.spec_data, source=f"spec {self.spec_data.get('name')!r}")
        if spec.hash != self.spec_hash:
            raise ExecutorError(
                f"the spec's hash changed on the way to a worker ({self.spec_hash} -> {spec.hash})",
                hint="check that the workers run the same elubench version",
            )
        return spec


def attempt(work: WorkerPayload, cfg: RunConfig) -> tuple[str, object]:
    """Run one config wherever an executor placed it. The outcome is plain picklable data:
    ("done", record), ("elsewhere", record) when another process recorded it first, ("skipped",
    why) when the run cannot go on now (another process's claim, a damaged file, an OS error),
    ("stopped", None) when the driver asked to stop, or ("error", ElubenchError) for a mistake
    the user can fix."""
    if work.stop():
        return "stopped", None
    try:
        record = execute_run(work.spec(), cfg, work.settings, should_stop=work.stop)
    except Stopped:
        return "stopped", None
    except ElubenchError as exc:
        return "error", exc
    if isinstance(record, Skipped):
        return "skipped", record.reason
    if isinstance(record, DoneElsewhere):
        return "elsewhere", record.record
    return "done", record


def worker_settings(settings: RunSettings, threads: int, **conditions) -> RunSettings:
    """Settings for workers: absolute paths (a worker may start in another folder or on another
    machine), the run's fixed thread count, and what the records say of the scheduling."""

    def absolute(path):
        return None if path is None else Path(path).resolve()

    return dataclasses.replace(
        settings,
        results=absolute(settings.results),
        data_dir=absolute(settings.data_dir),
        cache_dir=absolute(settings.cache_dir),
        threads=threads,
        **conditions,
    )


def brief(exc: BaseException) -> str:
    """The last line of an exception's text (Ray and submitit put a whole traceback there)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else exc.__class__.__name__


# --- the driver every parallel executor shares ---------------------------------------------


class ParallelExecutor(Executor):
    """Dispatches runs to workers and gathers their outcomes; subclasses say where they run."""

    threads: int | None = None  # CPU threads of one run when the executor fixes it (cpus per
    # run on a cluster); None: the spec's train.threads (--threads)
    on_this_machine = False  # the workers run here and see the same files

    def _outcomes(
        self,
        results: ResultsDir,
        work: WorkerPayload,
        todo: list[RunConfig],
        reporter: Reporter,
        stopping,
    ):
        """Yield (cfg, kind, payload) for every run of `todo` that was handed out, as each lands;
        hand out no more once stopping() is true. kind: done, skipped, stopped, error or lost."""
        raise NotImplementedError

    def run(self, spec, configs, settings, reporter=None):
        reporter = reporter or Reporter()
        # On this machine the driver can look for the files (and, with --download, fetch them
        # once, before workers race to); elsewhere a worker that misses them stops the matrix.
        here = self.on_this_machine
        results, state = prepare_matrix(
            spec, configs, settings, load_data=here and settings.download, check_data=here
        )
        release_data()  # a download's copy is the workers' to load, not the driver's to keep
        records = list(state.done.values())
        reporter.matrix_start(len(configs), len(state.done), len(state.todo))
        report_damaged(state, configs, reporter)
        if not state.todo:
            return records
        threads = self.threads or settings.threads_for(spec)
        work = WorkerPayload(
            spec.model_dump(mode="json"),
            spec.hash,
            worker_settings(
                settings,
                threads,
                executor=self.name,
                runs_at_once=self.runs_at_once(len(state.todo)),
            ),
            StopFlag(results.path.resolve() / STOP / uuid.uuid4().hex),
            ship(spec),
        )
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
                raise Interrupted(
                    f"stopped: {len(records)} of {len(configs)} runs are recorded; "
                    "the runs in progress saved their checkpoints",
                    records,
                )
        return records


def _report(
    cfg: RunConfig, kind: str, payload, records: list[RunRecord], reporter: Reporter
) -> None:
    """Tell the reporter how one run ended; a user's mistake stops the matrix."""
    if kind == "done":
        records.append(payload)
        reporter.run_end(cfg, payload)
    elif kind == "elsewhere":
        records.append(payload)
        reporter.run_done_elsewhere(cfg, payload)
    elif kind == "skipped":
        reporter.run_skipped(cfg, payload or "another process is training it")
    elif kind == "lost":
        reporter.run_skipped(cfg, f"lost: {payload}; the next invocation trains it again")
    elif kind == "error":
        raise payload
