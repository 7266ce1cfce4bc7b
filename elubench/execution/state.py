"""Where a matrix stands and what a `run` leaves: the settings every run of it shares, what the
results folder holds of it (`MatrixState`), what a reporter is told, and the summary with its
exit code (README, docs/reliability.md). Plain data, no torch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from elubench.core.errors import ElubenchError, StoreError
from elubench.spec.matrix import RunConfig
from elubench.store.record import RunRecord
from elubench.store.rundir import Holder, ResultsDir


class Reporter:
    """What a runner tells its user; the default says nothing."""

    def matrix_start(self, total: int, done: int, todo: int) -> None: ...
    def run_start(self, cfg: RunConfig, index: int, todo: int) -> None: ...
    def run_progress(self, cfg: RunConfig, event: dict) -> None: ...
    def run_end(self, cfg: RunConfig, record: RunRecord) -> None: ...
    def run_skipped(self, cfg: RunConfig, reason: str) -> None: ...
    def note(self, text: str) -> None: ...
    # runs another driver trains (execution.peers): waited for, and their records as they land
    def waiting(self, holders: list[Holder]) -> None: ...
    def run_done_elsewhere(self, cfg: RunConfig, record: RunRecord) -> None:
        """A run handed to this driver that another process recorded first."""
        self.run_end(cfg, record)

    def peer_run_end(self, cfg: RunConfig, record: RunRecord, holder: Holder | None) -> None: ...
    # several specs in one `run` (campaign.run_campaign): told to the outermost reporter
    def experiment_start(self, index: int, experiment) -> None: ...
    def experiment_stopped(self, experiment, error: ElubenchError) -> None: ...


class Tally(Reporter):
    """Passes every event on to `inner` and remembers why each run was left without a record."""

    def __init__(self, inner: Reporter | None = None):
        self.inner = inner or Reporter()
        self.reasons: dict[str, str] = {}

    def matrix_start(self, total, done, todo):
        self.inner.matrix_start(total, done, todo)

    def run_start(self, cfg, index, todo):
        self.inner.run_start(cfg, index, todo)

    def run_progress(self, cfg, event):
        self.inner.run_progress(cfg, event)

    def run_end(self, cfg, record):
        self.reasons.pop(cfg.run_id, None)
        self.inner.run_end(cfg, record)

    def run_skipped(self, cfg, reason):
        self.reasons[cfg.run_id] = reason
        self.inner.run_skipped(cfg, reason)

    def note(self, text):
        self.inner.note(text)

    def waiting(self, holders):
        self.inner.waiting(holders)

    def run_done_elsewhere(self, cfg, record):
        self.reasons.pop(cfg.run_id, None)
        self.inner.run_done_elsewhere(cfg, record)

    def peer_run_end(self, cfg, record, holder):
        self.reasons.pop(cfg.run_id, None)
        self.inner.peer_run_end(cfg, record, holder)


@dataclass
class DoneElsewhere:
    """A run another process recorded between this driver's look at the folder and its claim:
    its record, not trained again."""

    record: RunRecord


@dataclass
class Skipped:
    """A run left without a record, and why: another process's claim, a damaged file of its
    own, an OS error. Nothing of it is lost: the next `run` picks it up where it stands."""

    reason: str


# Exit codes of `elubench run` (README, docs/reliability.md).
EXIT_OK = 0  # every run asked for has a record: ok or diverged (a result too)
EXIT_FAILED = 3  # every run has a record, but some crashed (recorded failed)
EXIT_INCOMPLETE = 4  # some runs have no record (claimed elsewhere, blocked, lost): run again


@dataclass
class Summary:
    """What a `run` leaves: every run asked for, recorded or not, and why not."""

    asked: list[str]
    records: dict[str, RunRecord]
    reasons: dict[str, str]

    @property
    def failed(self) -> list[str]:
        return [
            run_id
            for run_id in self.asked
            if run_id in self.records and self.records[run_id].status == "failed"
        ]

    @property
    def missing(self) -> dict[str, str]:
        return {
            run_id: self.reasons.get(run_id, "no record (not trained)")
            for run_id in self.asked
            if run_id not in self.records
        }

    @property
    def exit_code(self) -> int:
        if self.missing:
            return EXIT_INCOMPLETE
        return EXIT_FAILED if self.failed else EXIT_OK


def summarize(
    configs: list[RunConfig], records: list[RunRecord], reasons: dict[str, str]
) -> Summary:
    return Summary([c.run_id for c in configs], {r.run_id: r for r in records}, dict(reasons))


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
    threads: int | None = None  # CPU threads per run; None: the spec's train.threads
    cache_dir: Path | None = None
    deterministic: bool = False  # torch's deterministic algorithms (run --deterministic)
    executor: str = "serial"  # what trains the runs: recorded in every run
    runs_at_once: int | None = 1  # runs training at once on this machine (None: unknown)
    take_over: bool = False  # take over claims from other hosts (run --take-over)
    wait: bool = True  # wait for runs another driver is training (run --no-wait: do not)

    def __post_init__(self):
        seconds = self.checkpoint_seconds
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise ElubenchError(
                f"seconds between checkpoints must be a number >= 0, got {seconds}",
                where="--checkpoint-every",
                hint="e.g. --checkpoint-every 300 (0: at every evaluation)",
            )

    def threads_for(self, spec) -> int:
        """The intra-op threads a run of `spec` trains with on a CPU."""
        return self.threads or spec.train.threads

    def conditions(self) -> dict:
        """What a record says about how its run was scheduled."""
        return {
            "executor": self.executor,
            "runs_at_once": self.runs_at_once,
            "deterministic": self.deterministic,
        }


@dataclass
class MatrixState:
    """Where each run of a selection stands."""

    done: dict[str, RunRecord] = field(default_factory=dict)  # run_id -> ok / diverged record
    failed: dict[str, RunRecord] = field(default_factory=dict)  # run_id -> record, to retry
    todo: list[RunConfig] = field(default_factory=list)
    started: set[str] = field(default_factory=set)  # todo runs with a checkpoint
    damaged: dict[str, str] = field(
        default_factory=dict
    )  # run_id -> why its run.json is not a record


def matrix_state(results: ResultsDir, configs: list[RunConfig]) -> MatrixState:
    """Where each run stands; reads, never writes. A run.json that does not validate is never
    taken as done: the run is `damaged` and left alone until the user moves the file away."""
    state = MatrixState()
    for cfg in configs:
        run = results.run(cfg.run_id)
        try:
            record = run.record()
        except StoreError as exc:
            state.damaged[cfg.run_id] = exc.render()
            continue
        if record is not None and record.status != "failed":
            state.done[cfg.run_id] = record
            continue
        if record is not None:
            state.failed[cfg.run_id] = record
        if run.checkpoint_path.exists():
            state.started.add(cfg.run_id)
        state.todo.append(cfg)
    return state
