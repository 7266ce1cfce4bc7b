"""`elubench run SPEC [SPEC ...]`: several experiments in one call, one answer.

Every spec is loaded, selected, given its executor and checked against the memory before any
trains; with several specs also its results folder (another version of the spec there) and its
dataset (a file missing or damaged without --download: elubench.data.catalog's check). One mistake is one message naming the file, exit
2, nothing trained. Two files with the same spec name (they would share results/<name>/) are
such a mistake; the same file given twice is trained once, with a note.

Then the specs train one after another, in the order given, each through its own executor into
its own results/<spec name>/. A crashed or unrecorded run in one spec does not stop the next
(as within a matrix). A mistake found only once a spec starts (a dataset that does not load)
stops the campaign with exit 2 while nothing has trained yet in it; after that it stops only
its own spec, whose runs are then said to have no record. The campaign ends with one exit code,
the worst of its specs' (runner.Summary over every run asked for: 4 > 3 > 0), or 130 when
interrupted. The selection flags apply to every spec, --shard I/N included: each spec's own
I-th slice, the one `run SPEC --shard I/N` alone would train, so N machines given the same
specs and I = 1..N train every run once. No torch and no rich here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from elubench.core.errors import CampaignInterrupted, ElubenchError, Interrupted, SpecError
from elubench.data.catalog import require
from elubench.execution.executors.base import Executor
from elubench.execution.peers import wait_for_peers
from elubench.execution.state import MatrixState, Reporter, Summary, Tally, matrix_state, summarize
from elubench.spec.loader import naming, unique_paths
from elubench.spec.matrix import RunConfig
from elubench.spec.schema import Spec
from elubench.store.record import RunRecord
from elubench.store.rundir import ResultsDir

if TYPE_CHECKING:
    from elubench.execution.sequential import SequentialOutcome


@dataclass
class Experiment:
    """One spec of a campaign: what it trains and through which executor."""

    path: Path
    spec: Spec  # with the command line's overrides applied
    configs: list[RunConfig]  # the selection flags applied
    runner: Executor
    recorded: int = 0  # runs with a record when the campaign was prepared
    todo: int = 0  # runs to train then (several specs: the overall bar)

    @property
    def name(self) -> str:
        return self.spec.name

    def folder(self, results: Path) -> Path:
        return Path(results) / self.spec.name


@dataclass
class Campaign:
    experiments: list[Experiment]
    notes: list[str] = field(default_factory=list)  # e.g. a file given twice

    @property
    def several(self) -> bool:
        return len(self.experiments) > 1


def prepare_campaign(
    paths: list[Path],
    settings,
    *,
    load,
    select,
    executor,
    memory_check: bool = True,
    dry_run: bool = False,
) -> Campaign:
    """Every spec loaded (`load(path)`: the spec and the activation names the command line
    gives, resolved from its folder), selected (`select(spec, names)`), given its executor
    (`executor(spec)`) and checked (memory, custom activations), before anything trains;
    ElubenchError for the first mistake, naming its file when there are several."""
    from elubench.net.checks import check_matrix
    from elubench.net.memory import check_fits

    paths, notes = unique_paths(paths)
    several = len(paths) > 1
    experiments: list[Experiment] = []
    by_name: dict[str, Path] = {}
    for path in paths:
        with naming(path if several else None):
            spec, names = load(path)
        if spec.name in by_name:
            raise SpecError(
                f"has the same name as {by_name[spec.name]} ({spec.name!r}); both "
                f"would write to {Path(settings.results) / spec.name}",
                where=str(path),
                hint="give each spec its own `name`, or leave one of them out",
            )
        by_name[spec.name] = path
        configs = select(spec, names)
        runner = executor(spec)
        with naming(path if several else None):
            check_fits(
                spec,
                configs,
                settings.device,
                runner.runs_at_once(len(configs)),
                skip=not memory_check,
            )
            check_matrix(spec, configs)  # a custom activation's mistakes, before anything trains
            if spec.compare.until_decided:
                from elubench.execution.sequential import check_sequential

                check_sequential(spec, configs, settings, folder=not dry_run)
        experiments.append(Experiment(path, spec, configs, runner))
    if several and not dry_run:
        for experiment in experiments:
            with naming(experiment.path):
                _check_ready(experiment, settings)
    return Campaign(experiments, notes)


def _check_ready(experiment: Experiment, settings) -> None:
    """Refuse, before the first spec trains, what would stop a later one at its start: its
    results folder holds another version of it, or its dataset's files are missing or damaged. Counts
    what its folder holds for the overall progress bar. Writes nothing."""
    results = ResultsDir(settings.results, experiment.spec)
    results.check(force=settings.force)
    state = matrix_state(results, experiment.configs)
    experiment.recorded = len(state.done) + len(state.failed)
    experiment.todo = len(experiment.configs) if settings.force else len(state.todo)
    if experiment.todo and not settings.download:
        require(experiment.spec.data, settings.data_dir)


@dataclass
class Outcome:
    """What one spec of a campaign left."""

    experiment: Experiment
    records: list[RunRecord]
    summary: Summary
    error: ElubenchError | None = None  # a mistake that stopped this spec (several specs)
    sequential: SequentialOutcome | None = None  # run --until-decided: rounds and decisions


class _Counting(Tally):
    """A Tally that counts the runs it saw finish (has anything trained yet?)."""

    def __init__(self, inner, counter: list[int]):
        super().__init__(inner)
        self.counter = counter

    def run_end(self, cfg, record):
        self.counter[0] += 1
        super().run_end(cfg, record)


def run_campaign(campaign: Campaign, settings, reporter: Reporter) -> list[Outcome]:
    """Train every spec of the campaign, one after another; the outcome of each. A mistake
    (ElubenchError) stops the campaign while nothing has trained (or with a single spec);
    after that it stops only its own spec. Ctrl-C: CampaignInterrupted."""
    outcomes: list[Outcome] = []
    trained = [0]
    for index, experiment in enumerate(campaign.experiments):
        tally = _Counting(reporter, trained)
        reporter.experiment_start(index, experiment)
        asked, sequential = experiment.configs, None
        try:
            if experiment.spec.compare.until_decided:
                from elubench.execution.sequential import run_until_decided

                sequential = run_until_decided(experiment, settings, tally)
                records, asked = sequential.records, sequential.asked
            else:
                records = experiment.runner.run(
                    experiment.spec, experiment.configs, settings, tally
                )
        except Interrupted as stop:
            raise CampaignInterrupted(str(stop), outcomes, experiment, stop.records) from None
        except KeyboardInterrupt:
            if not campaign.several:
                raise
            raise CampaignInterrupted("interrupted", outcomes, experiment, None) from None
        except ElubenchError as exc:
            if not campaign.several or not trained[0]:
                raise
            outcomes.append(_stopped_by(experiment, exc, settings))
            reporter.experiment_stopped(experiment, exc)
            continue
        if settings.wait and sequential is None:  # a peer's runs: their records, as they land
            folder = ResultsDir(settings.results, experiment.spec)
            records = wait_for_peers(folder, experiment.configs, records, tally, tally.reasons)
        summary = summarize(asked, records, tally.reasons)
        outcomes.append(Outcome(experiment, records, summary, sequential=sequential))
    return outcomes


def _stopped_by(experiment: Experiment, exc: ElubenchError, settings) -> Outcome:
    """The outcome of a spec a mistake stopped: what its folder holds, and why the rest has
    no record."""
    records = recorded(experiment, settings.results)
    why = f"not trained: {exc.render().splitlines()[0]}"
    reasons = {cfg.run_id: why for cfg in experiment.configs}
    return Outcome(experiment, records, summarize(experiment.configs, records, reasons), exc)


def recorded(experiment: Experiment, results: Path) -> list:
    """The records a spec's results folder holds for its selection now (none when the folder
    holds another version of the spec, or cannot be read)."""
    folder = ResultsDir(results, experiment.spec)
    try:
        if folder.stored_hash() != experiment.spec.hash:
            return []
        state: MatrixState = matrix_state(folder, experiment.configs)
    except (ElubenchError, OSError):
        return []
    return [*state.done.values(), *state.failed.values()]


def combined_summary(outcomes: list[Outcome]) -> Summary:
    """Every spec's summary as one, its runs named `<spec name>/<run id>`: its exit code is
    the campaign's (the worst of its specs')."""
    asked, records, reasons = [], {}, {}
    for outcome in outcomes:
        name, summary = outcome.experiment.name, outcome.summary
        asked += [f"{name}/{run_id}" for run_id in summary.asked]
        records.update({f"{name}/{run_id}": r for run_id, r in summary.records.items()})
        reasons.update({f"{name}/{run_id}": why for run_id, why in summary.reasons.items()})
    return Summary(asked, records, reasons)
