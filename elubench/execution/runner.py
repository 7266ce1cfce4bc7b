"""Run a matrix of runs on this machine: skip what is done, claim, train, record.

The reporter (the CLI's rich progress, or nothing) is told what happens; the runner itself
prints nothing. A run that crashes is recorded as `failed` (its checkpoint kept) and the matrix
goes on; a run that cannot go on for a reason outside it (a damaged file of its own, an OS
error such as a full disk, another process's claim) is left as it is, resumable, and said
why; a user's mistake that concerns every run (a missing dataset, an unwritable folder) stops
the matrix with an ElubenchError. `Summary` says what is missing at the end and the exit code.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from contextlib import contextmanager

from elubench.core.errors import BadCheckpoint, ElubenchError, Interrupted, Stopped, StoreError
from elubench.data.catalog import require
from elubench.execution.state import (
    DoneElsewhere,
    MatrixState,
    Reporter,
    RunSettings,
    Skipped,
    matrix_state,
)
from elubench.spec.matrix import RunConfig
from elubench.store.record import RunRecord
from elubench.store.rundir import ResultsDir

HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 180.0  # a claim with no heartbeat for this long is taken over


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
            from elubench.data.load import load_data

            self._cache.clear()  # one dataset resident at a time
            # a missing or damaged file (with --download: fetched first) is one message here,
            # not a crash inside torchvision's reader
            require(spec.data, settings.data_dir, download=settings.download)
            self._cache[key] = load_data(
                spec.data,
                device=device,
                data_dir=settings.data_dir,
                download=settings.download,
                cache_dir=settings.cache_dir,
            )
        return self._cache[key]


_DATA = DataCache()


def release_data() -> None:
    """Drop the data this process holds (a driver whose workers load their own)."""
    _DATA.clear()


def execute_run(
    spec, cfg: RunConfig, settings: RunSettings, *, should_stop=lambda: False, progress=None
) -> RunRecord | Skipped | DoneElsewhere:
    """Claim, train and record one run; the building block of every executor.

    Returns the record (DoneElsewhere: another process recorded it first), or Skipped (why)
    when the run cannot go on now: another process holds
    its claim, a file of its own is damaged, or the OS refused a write (a full disk, a file-size
    limit). A crash inside training is recorded as a `failed` run, not raised; its checkpoint
    stays, so the next attempt resumes rather than starting over.
    """
    from elubench.training.runtime import configure, resolve_device
    from elubench.training.trainer import LoopOptions, train_run

    results = ResultsDir(settings.results, spec)
    run = results.run(cfg.run_id)
    if not run.claim(STALE_SECONDS, take_over=settings.take_over):
        holder = run.claim_holder(STALE_SECONDS)
        return Skipped(holder.describe(STALE_SECONDS) if holder else "another process claimed it")
    try:
        run.clean_leftovers()
        try:
            existing = run.record()
        except StoreError as exc:
            return Skipped(exc.render())
        if existing is not None and existing.status != "failed":
            return DoneElsewhere(existing)  # finished by another process since we looked
        if existing is not None:
            run.archive_attempt()
        device = resolve_device(settings.device)
        configure(device, settings.threads_for(spec), settings.deterministic)
        data = _DATA.get(spec, device, settings)
        options = LoopOptions(
            device=device,
            checkpoint_seconds=settings.checkpoint_seconds,
            compile=settings.compile,
            should_stop=should_stop,
            progress=progress,
        )
        started = time.time()
        with _heartbeat(run):
            try:
                record = train_run(spec, cfg, data, run, options)
            except BadCheckpoint as exc:  # the user's to resolve: say which file and how
                return Skipped(
                    StoreError(
                        f"cannot resume from this checkpoint ({exc})",
                        where=str(run.checkpoint_path),
                        hint="delete it to train this run from the start, or run with --force",
                    ).render()
                )
            except StoreError as exc:  # a damaged metrics log: resuming on it would be a lie
                return Skipped(exc.render())
            except OSError as exc:  # the machine's fault, not the run's: keep it resumable
                return Skipped(_os_error(exc, run))
            except (Stopped, ElubenchError, KeyboardInterrupt):
                raise
            except (
                Exception
            ) as exc:  # a crash is a result to record, not a reason to stop the matrix
                record = RunRecord.failed(
                    cfg.model_dump(),
                    reason=f"{exc.__class__.__name__}: {exc}",
                    traceback=traceback.format_exc(),
                    task=spec.task,
                    device=str(device),
                    wall_seconds=time.time() - started,
                    finished_at=time.time(),
                )
        record = record.model_copy(update=settings.conditions())
        try:
            run.write_record(record)
        except OSError as exc:
            return Skipped(_os_error(exc, run))
        if record.status != "failed":  # a failed attempt keeps its progress for the next one
            run.checkpoint_path.unlink(missing_ok=True)
        return record
    finally:
        run.release()


def _os_error(exc: OSError, run) -> str:
    """Why a run was left unrecorded by an OS error, and that nothing of it is lost."""
    what = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    kept = "its last checkpoint is kept" if run.checkpoint_path.exists() else "nothing was recorded"
    return (
        f"the system refused a write: {what}{where}; {kept} and the next `run` resumes it "
        "once the cause (a full disk, a file-size limit, permissions) is fixed"
    )


def prepare_matrix(
    spec,
    configs: list[RunConfig],
    settings: RunSettings,
    *,
    load_data: bool = True,
    check_data: bool = False,
) -> tuple[ResultsDir, MatrixState]:
    """Find where each run stands and ready the results folder (--force: every selected run
    again, old records moved to superseded/). With `load_data`, a missing dataset or device
    fails before anything is written; a cluster's driver skips it (it may not see the data,
    and loading it would pull torch into the driver). With `check_data` (worker processes on
    this machine) it only checks the dataset's files (there, with their MD5s: elubench.data.catalog),
    so a missing or damaged one stops the matrix before anything is written."""
    results = ResultsDir(settings.results, spec)
    results.check(force=settings.force)
    state = MatrixState(todo=list(configs)) if settings.force else matrix_state(results, configs)
    if state.todo and load_data:
        from elubench.training.runtime import configure, resolve_device

        device = resolve_device(settings.device)
        configure(device, settings.threads_for(spec), settings.deterministic)
        _DATA.get(spec, device, settings)
    elif state.todo and check_data:
        require(spec.data, settings.data_dir)
    results.prepare(force=settings.force)
    if settings.force:
        for cfg in configs:
            if results.run(cfg.run_id).path.exists():
                results.supersede_run(cfg.run_id)
    for run_id in state.done:  # a kill between the record's write and the claim's release
        run = results.run(run_id)
        if run.claim_path.exists() and run.claim_holder(STALE_SECONDS) is None:
            run.release()
    return results, state


def report_damaged(state: MatrixState, configs: list[RunConfig], reporter: Reporter) -> None:
    """Tell the reporter about runs whose run.json is damaged: never trained over, never done."""
    for cfg in configs:
        if cfg.run_id in state.damaged:
            reporter.run_skipped(cfg, state.damaged[cfg.run_id])


def run_matrix(
    spec, configs: list[RunConfig], settings: RunSettings, reporter: Reporter | None = None
) -> list[RunRecord]:
    """Train every run of `configs` that is not done yet, one after another on one device."""
    reporter = reporter or Reporter()
    _, state = prepare_matrix(spec, configs, settings)
    records = list(state.done.values())
    reporter.matrix_start(len(configs), len(state.done), len(state.todo))
    report_damaged(state, configs, reporter)
    with stop_on_first_ctrl_c() as stop_requested:
        for index, cfg in enumerate(state.todo):
            reporter.run_start(cfg, index, len(state.todo))
            try:
                record = execute_run(
                    spec,
                    cfg,
                    settings,
                    should_stop=stop_requested,
                    progress=lambda event, cfg=cfg: reporter.run_progress(cfg, event),
                )
            except Stopped as exc:
                raise Interrupted(str(exc), records) from None
            if isinstance(record, Skipped):
                reporter.run_skipped(cfg, record.reason)
                continue
            if isinstance(record, DoneElsewhere):
                records.append(record.record)
                reporter.run_done_elsewhere(cfg, record.record)
                continue
            records.append(record)
            reporter.run_end(cfg, record)
            if stop_requested():
                raise Interrupted(f"stopped after {cfg.run_id}", records)
    return records
