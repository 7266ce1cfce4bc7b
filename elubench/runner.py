"""Run a matrix of runs on this machine: skip what is done, claim, train, record.

The reporter (the CLI's rich progress, or nothing) is told what happens; the runner itself
prints nothing. A run that crashes is recorded as `failed` and the matrix goes on; a user's
mistake (a missing dataset, an unwritable folder) stops it with an ElubenchError.
"""

from __future__ import annotations

import math
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from elubench.errors import ElubenchError, StoreError
from elubench.grid import RunConfig
from elubench.record import RunRecord
from elubench.store import ResultsDir

HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 180.0  # a claim with no heartbeat for this long is taken over


class Reporter:
    """What a runner tells its user; the default says nothing."""

    def matrix_start(self, total: int, done: int, todo: int) -> None: ...
    def run_start(self, cfg: RunConfig, index: int, todo: int) -> None: ...
    def run_progress(self, cfg: RunConfig, event: dict) -> None: ...
    def run_end(self, cfg: RunConfig, record: RunRecord) -> None: ...
    def run_skipped(self, cfg: RunConfig, reason: str) -> None: ...
    def note(self, text: str) -> None: ...


class Interrupted(Exception):
    """Ctrl-C: the current run's checkpoint is saved; `records` holds what is finished."""

    def __init__(self, message: str, records: list[RunRecord]):
        super().__init__(message)
        self.records = records


@dataclass
class RunSettings:
    """How to run a matrix (not what to run): the user's choices, the same for every run.
    Plain, picklable data: executors send it to their workers."""

    results: Path = Path("results")
    device: str = "auto"
    data_dir: Path | None = None
    download: bool = False
    force: bool = False
    checkpoint_seconds: float = 300.0
    compile: bool = False
    threads: int | None = None        # CPU threads per run; None: the spec's train.threads
    cache_dir: Path | None = None
    deterministic: bool = False       # torch's deterministic algorithms (run --deterministic)
    executor: str = "serial"          # what trains the runs: recorded in every run
    runs_at_once: int | None = 1      # runs training at once on this machine (None: unknown)

    def threads_for(self, spec) -> int:
        """The intra-op threads a run of `spec` trains with on a CPU."""
        return self.threads or spec.train.threads

    def conditions(self) -> dict:
        """What a record says about how its run was scheduled."""
        return {"executor": self.executor, "runs_at_once": self.runs_at_once,
                "deterministic": self.deterministic}


@dataclass
class MatrixState:
    """Where each run of a selection stands."""

    done: dict[str, RunRecord] = field(default_factory=dict)    # run_id -> ok / diverged record
    failed: dict[str, RunRecord] = field(default_factory=dict)  # run_id -> record, to retry
    todo: list[RunConfig] = field(default_factory=list)
    started: set[str] = field(default_factory=set)           # todo runs with a checkpoint


def matrix_state(results: ResultsDir, configs: list[RunConfig]) -> MatrixState:
    state = MatrixState()
    for cfg in configs:
        run = results.run(cfg.run_id)
        record = run.record()
        if record is not None and record.status != "failed":
            state.done[cfg.run_id] = record
            continue
        if record is not None:
            state.failed[cfg.run_id] = record
        if run.checkpoint_path.exists():
            state.started.add(cfg.run_id)
        state.todo.append(cfg)
    return state


@contextmanager
def _heartbeat(run):
    """Touch the run's claim every HEARTBEAT_SECONDS while it trains."""
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT_SECONDS):
            run.heartbeat()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def stop_on_first_ctrl_c():
    """First Ctrl-C: ask the run to checkpoint and stop. Second: the usual KeyboardInterrupt."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


class DataCache:
    """Loads a spec's data once per process and device, for every run that needs it."""

    def __init__(self):
        self._cache: dict = {}

    def clear(self) -> None:
        self._cache.clear()

    def get(self, spec, device, settings: RunSettings):
        key = (spec.hash, str(device))
        if key not in self._cache:
            from elubench.data import load_data
            self._cache.clear()  # one dataset resident at a time
            self._cache[key] = load_data(spec.data, device=device, data_dir=settings.data_dir,
                                         download=settings.download, cache_dir=settings.cache_dir)
        return self._cache[key]


_DATA = DataCache()


def release_data() -> None:
    """Drop the data this process holds (a driver whose workers load their own)."""
    _DATA.clear()


def execute_run(spec, cfg: RunConfig, settings: RunSettings, *, should_stop=lambda: False,
                progress=None) -> RunRecord | None:
    """Claim, train and record one run; the building block of every executor.

    Returns the record, or None when another process holds the run's claim.
    A crash inside training is recorded as a `failed` run, not raised.
    """
    from elubench.runtime import configure, resolve_device
    from elubench.train import BadCheckpoint, LoopOptions, Stopped, train_run

    results = ResultsDir(settings.results, spec)
    run = results.run(cfg.run_id)
    if not run.claim(STALE_SECONDS):
        return None
    try:
        existing = run.record()
        if existing is not None and existing.status != "failed":
            return existing  # finished by another process since we looked
        if existing is not None:
            run.archive_attempt()
        device = resolve_device(settings.device)
        configure(device, settings.threads_for(spec), settings.deterministic)
        data = _DATA.get(spec, device, settings)
        options = LoopOptions(device=device, checkpoint_seconds=settings.checkpoint_seconds,
                              compile=settings.compile, should_stop=should_stop,
                              progress=progress)
        started = time.time()
        with _heartbeat(run):
            try:
                record = train_run(spec, cfg, data, run, options)
            except BadCheckpoint as exc:  # the user's to resolve: say which file and how
                raise StoreError(f"cannot resume from this checkpoint ({exc})",
                                 where=str(run.checkpoint_path),
                                 hint="delete it to train this run from the start, or run with "
                                      "--force") from None
            except (Stopped, ElubenchError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a crash is a result to record, not a reason to stop the matrix
                record = RunRecord.failed(cfg.to_dict(), reason=f"{exc.__class__.__name__}: {exc}",
                                          traceback=traceback.format_exc(), task=spec.task,
                                          device=str(device), wall_seconds=time.time() - started,
                                          finished_at=time.time())
        record = record.model_copy(update=settings.conditions())
        run.write_record(record)
        run.checkpoint_path.unlink(missing_ok=True)
        return record
    finally:
        run.release()


def prepare_matrix(spec, configs: list[RunConfig], settings: RunSettings, *,
                   load_data: bool = True, check_data: bool = False) -> tuple[ResultsDir, MatrixState]:
    """Find where each run stands and ready the results folder (--force: every selected run
    again, old records moved to superseded/). With `load_data`, a missing dataset or device
    fails before anything is written; a cluster's driver skips it (it may not see the data,
    and loading it would pull torch into the driver). With `check_data` (worker processes on
    this machine) it only looks for the dataset's files, so a missing one stops the matrix
    before anything is written."""
    results = ResultsDir(settings.results, spec)
    results.check(force=settings.force)
    state = MatrixState(todo=list(configs)) if settings.force else matrix_state(results, configs)
    if state.todo and load_data:
        from elubench.runtime import configure, resolve_device
        device = resolve_device(settings.device)
        configure(device, settings.threads_for(spec), settings.deterministic)
        _DATA.get(spec, device, settings)
    elif state.todo and check_data:
        from elubench.errors import DataError
        from elubench.paths import missing_data
        missing = missing_data(spec.data, settings.data_dir)
        if missing is not None:
            raise DataError(f"{spec.data.dataset} was not found (or is incomplete): no {missing}",
                            hint="pass --download to fetch it there, or --data-dir DIR pointing at "
                                 "a directory that holds it")
    results.prepare(force=settings.force)
    if settings.force:
        for cfg in configs:
            if results.run(cfg.run_id).path.exists():
                results.supersede_run(cfg.run_id)
    return results, state


def run_matrix(spec, configs: list[RunConfig], settings: RunSettings,
               reporter: Reporter | None = None) -> list[RunRecord]:
    """Train every run of `configs` that is not done yet, one after another on one device."""
    from elubench.train import Stopped

    reporter = reporter or Reporter()
    _, state = prepare_matrix(spec, configs, settings)
    records = list(state.done.values())
    reporter.matrix_start(len(configs), len(state.done), len(state.todo))
    with stop_on_first_ctrl_c() as stop_requested:
        for index, cfg in enumerate(state.todo):
            reporter.run_start(cfg, index, len(state.todo))
            try:
                record = execute_run(spec, cfg, settings, should_stop=stop_requested,
                                     progress=lambda event, cfg=cfg: reporter.run_progress(cfg, event))
            except Stopped as exc:
                raise Interrupted(str(exc), records) from None
            if record is None:
                reporter.run_skipped(cfg, "another process is training it")
                continue
            records.append(record)
            reporter.run_end(cfg, record)
            if stop_requested():
                raise Interrupted(f"stopped after {cfg.run_id}", records)
    return records


@dataclass
class Estimate:
    step_seconds: float       # one training step, measured on this device with `threads`
    eval_seconds: float       # one evaluation of the whole test set (estimated from batches)
    iterations: int           # per run
    evaluations: int          # per run
    runs: int                 # runs left to train
    device: str
    threads: int = 1          # CPU threads per run while timed
    at_once: int = 1          # runs training at once

    @property
    def run_seconds(self) -> float:
        return self.iterations * self.step_seconds + self.evaluations * self.eval_seconds

    @property
    def total_seconds(self) -> float:
        """Waves of `at_once` runs; assumes runs at once do not slow each other (each has its
        own cores), which memory bandwidth may not quite allow."""
        return math.ceil(self.runs / max(1, self.at_once)) * self.run_seconds


def estimate(spec, cfg: RunConfig, runs: int, settings: RunSettings, *, threads: int | None = None,
             at_once: int = 1, steps: int = 8, warmup: int = 3) -> Estimate:
    """Time a few steps of `cfg`'s net on random data of the spec's shape (no dataset needed),
    with `threads` CPU threads (default: a run's), and scale to the matrix: a user learns the
    cost before starting."""
    import torch

    from elubench.runtime import configure, resolve_device, synchronize
    from elubench.train import build_for_training, eval_batch_size, make_step

    device = resolve_device(settings.device)
    threads = threads or settings.threads_for(spec)
    configure(device, threads)
    train = spec.train
    sizes = spec.data.sizes()
    batch = train.batch_size if sizes is None else min(train.batch_size, sizes[0])
    model, optimizer, _, memory_format = build_for_training(spec, cfg, device)
    step = make_step(model, optimizer, spec.task, train.precision, memory_format)
    classes = spec.data.classes() or 2
    x = torch.randn(batch, *spec.data.input_shape(), device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    for _ in range(warmup):
        step(x, y)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(x, y)
    loss.item()
    step_seconds = (time.perf_counter() - start) / steps

    eval_batch = eval_batch_size(batch)
    model.eval()
    with torch.no_grad():
        xe = torch.randn(eval_batch, *spec.data.input_shape(), device=device)
        model(xe.contiguous(memory_format=memory_format))
        synchronize(device)
        start = time.perf_counter()
        model(xe.contiguous(memory_format=memory_format)).sum().item()
        batch_seconds = time.perf_counter() - start
    test_size = sizes[1] if sizes else 50_000
    eval_seconds = batch_seconds * test_size / eval_batch

    steps_per_epoch = max(1, (sizes[0] if sizes else 1_281_167) // batch)
    iterations = train.iterations or train.epochs * steps_per_epoch
    evaluations = iterations // train.eval_interval(iterations) + 1
    return Estimate(step_seconds, eval_seconds, iterations, evaluations, runs, str(device),
                    threads if device.type == "cpu" else 1, at_once)


@dataclass
class DryRun:
    """What `run --dry-run` shows: where each run stands and what the rest would cost."""

    configs: list[RunConfig]
    state: MatrixState
    folder: Path
    other_version: bool              # the folder holds another version of this spec
    estimate: Estimate | None        # None when nothing is left to train
    timed_on: str | None = None      # the configuration whose steps were timed
    plan: list = field(default_factory=list)  # stats.planning.FamilyPlan per family of tests
    alternative: Estimate | None = None  # CPU: one run at a time with every core, for contrast


def dry_run(spec, configs: list[RunConfig], settings: RunSettings, at_once: int = 1) -> DryRun:
    """Where the matrix stands in the results folder, an estimate of the rest (with `at_once`
    runs training at once), and whether its seeds can make a comparison significant at all;
    writes nothing. On a CPU with more cores than a run's threads it also times the other layout
    (one run at a time on every core), so a user sees which is faster for this net."""
    from elubench.runtime import cpu_count

    results = ResultsDir(settings.results, spec)
    other = results.stored_hash() not in (None, spec.hash)
    state = MatrixState(todo=list(configs)) if other or settings.force else matrix_state(results, configs)
    guess = alternative = None
    if state.todo:
        at_once = max(1, min(at_once, len(state.todo)))
        guess = estimate(spec, state.todo[0], len(state.todo), settings, at_once=at_once)
        cores = cpu_count()
        if guess.device == "cpu" and cores > guess.threads:
            alternative = estimate(spec, state.todo[0], len(state.todo), settings, threads=cores)
    return DryRun(configs, state, results.path, other, guess,
                  state.todo[0].config if state.todo else None, significance(spec, configs),
                  alternative)


def significance(spec, configs: list[RunConfig]) -> list:
    """The families `compare` will test on these runs, with their floors (stats.planning)."""
    from elubench.spec import default_baseline
    from elubench.stats.planning import significance_plan

    if not configs:
        return []
    activations = list(dict.fromkeys(c.activation for c in configs))
    labels = {c.config for c in configs}
    baseline = spec.compare.baseline
    if baseline not in activations and baseline not in labels:
        baseline = default_baseline(activations)
    return significance_plan(activations, sorted({c.batchnorm for c in configs}),
                             list(dict.fromkeys(c.init for c in configs)), baseline,
                             len({c.seed for c in configs}), spec.compare.alpha,
                             spec.compare.alternative)
