"""Training a matrix, from Python (`elubench.run`) and from `elubench run`: one preparation
(the spec with its overrides, the selection, the executor, the checks before anything trains)
and one engine (execution.campaign), so the two cannot drift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elubench.api.specs import override_texts
from elubench.spec.schema import Spec

if TYPE_CHECKING:
    import pandas as pd

    from elubench.execution.campaign import Campaign, Outcome
    from elubench.execution.state import RunSettings

SpecSource = str | Path | Spec


def split_names(values: Sequence[str] | str | None) -> list[str] | None:
    """`elu,lrelu(0.2)` and repeated values: split on commas outside parentheses."""
    if not values:
        return None
    names, depth, current = [], 0, ""
    for char in ",".join([values] if isinstance(values, str) else values):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            names.append(current.strip())
            current = ""
        else:
            current += char
    names.append(current.strip())
    return [n for n in names if n]


def prepare_run(
    specs: SpecSource | Sequence[SpecSource],
    *,
    results: str | Path = "results",
    activations: Sequence[str] | str | None = None,
    batchnorm: str | None = None,
    seeds: int | None = None,
    until_decided: bool = False,
    max_seeds: int | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    width: float | None = None,
    precision: str | None = None,
    threads: int | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    download: bool = False,
    force: bool = False,
    checkpoint_every: float = 300.0,
    compile: bool = False,
    shard: str | None = None,
    deterministic: bool = False,
    take_over: bool = False,
    wait: bool = True,
    executor: str = "auto",
    parallel: int | None = None,
    workers: int | None = None,
    gpus: str | Sequence[str] | None = None,
    ray_address: str | None = None,
    ray_cpus: int | None = None,
    cpus_per_run: float | None = None,
    gpus_per_run: float | None = None,
    slurm_partition: str | None = None,
    slurm_time: int | None = None,
    slurm_parallelism: int | None = None,
    sbatch: Sequence[str] | None = None,
    slurm_cluster: str | None = None,
    memory_check: bool = True,
    dry_run: bool = False,
) -> tuple[Campaign, RunSettings]:
    """Every spec loaded with the overrides, its runs selected, its executor chosen, its
    memory and custom activations checked, before anything trains (ElubenchError for the
    first mistake). The options are `elubench run`'s (its --help says what each does);
    `until_decided` and `max_seeds` set the spec's compare.until_decided and
    compare.max_seeds (the sequential design, docs/statistics.md)."""
    from elubench.activations.code import with_names
    from elubench.execution.campaign import prepare_campaign
    from elubench.execution.executors.factory import executor_for
    from elubench.execution.state import RunSettings
    from elubench.spec.loader import load_spec
    from elubench.spec.matrix import select

    settings = RunSettings(
        results=Path(results),
        device=device,
        data_dir=None if data_dir is None else Path(data_dir),
        download=download,
        force=force,
        checkpoint_seconds=checkpoint_every,
        compile=compile,
        deterministic=deterministic,
        take_over=take_over,
        wait=wait,
    )
    texts = override_texts(overrides)
    texts += ["compare.until_decided=true"] if until_decided else []
    texts += [f"compare.max_seeds={max_seeds}"] if max_seeds is not None else []
    texts += [f"train.precision={precision}"] if precision else []
    texts += [f"train.threads={threads}"] if threads else []
    given = [specs] if isinstance(specs, (str, Path, Spec)) else list(specs)
    objects: dict[Path, Spec] = {}  # Spec objects stand in for files: a path of their own
    paths = []
    for item in given:
        if isinstance(item, Spec):
            if texts or width is not None:
                from elubench.core.errors import SpecError

                raise SpecError(
                    "overrides and width apply to a spec file, not a loaded spec",
                    hint="give them to elubench.load_spec, or pass the file's path",
                )
            path = Path(f"<spec {item.name}>")
            objects[path.resolve()] = item
            paths.append(path)
        else:
            paths.append(Path(item))
    names = split_names(activations)

    def load(path: Path):
        loaded = objects.get(path.resolve()) or load_spec(path, texts, width)
        base = Path.cwd() if path.resolve() in objects else path.parent
        return with_names(loaded, names, base, "--activations")

    campaign = prepare_campaign(
        paths,
        settings,
        load=load,
        select=lambda spec, chosen: select(
            spec, activations=chosen, batchnorm=batchnorm, seeds=seeds, shard_text=shard
        ),
        executor=lambda spec: executor_for(
            executor,
            parallel=parallel,
            device=device,
            spec=spec,
            workers=workers,
            gpus=gpus.split(",") if isinstance(gpus, str) else gpus,
            address=ray_address,
            local_cpus=ray_cpus,
            cpus_per_run=cpus_per_run,
            gpus_per_run=gpus_per_run,
            partition=slurm_partition,
            time_min=slurm_time,
            array_parallelism=slurm_parallelism,
            sbatch=list(sbatch) if sbatch else None,
            cluster=slurm_cluster,
        ),
        memory_check=memory_check,
        dry_run=dry_run,
    )
    return campaign, settings


@dataclass
class RunSummary:
    """What `elubench.run` left: every run asked for, its record or why it has none.

    `exit_code` is what `elubench run` would exit with: 0 every run has a record (ok or
    diverged), 3 some crashed (recorded failed), 4 some have no record (run again)."""

    outcomes: list[Outcome]
    results: Path

    @property
    def _summary(self):
        from elubench.execution.campaign import combined_summary

        if len(self.outcomes) == 1:
            return self.outcomes[0].summary
        return combined_summary(self.outcomes)

    @property
    def exit_code(self) -> int:
        return self._summary.exit_code

    @property
    def complete(self) -> bool:
        """Every run asked for has a record."""
        return not self._summary.missing

    @property
    def missing(self) -> dict[str, str]:
        """Run id -> why it has no record."""
        return self._summary.missing

    @property
    def failed(self) -> list[str]:
        return self._summary.failed

    @property
    def records(self) -> list[dict]:
        """Every record, as run.json holds it."""
        return [r.to_json() for outcome in self.outcomes for r in outcome.records]

    @property
    def decisions(self) -> pd.DataFrame | None:
        """With `until_decided=True` (one spec): the sequential design's decisions when the run
        ended, one row per comparison (as `compare(...).sequential`); else None."""
        sequential = self.outcomes[0].sequential if len(self.outcomes) == 1 else None
        if sequential is None or sequential.decisions is None:
            return None
        return sequential.decisions.table()

    def to_frame(self) -> pd.DataFrame:
        """One row per recorded run (the same columns as `elubench.load_results(...).runs`)."""
        import pandas as pd

        return pd.DataFrame(self.records)

    def __repr__(self) -> str:
        records = sum(len(o.records) for o in self.outcomes)
        asked = len(self._summary.asked)
        folders = ", ".join(str(o.experiment.folder(self.results)) for o in self.outcomes)
        state = "complete" if self.complete else f"{len(self.missing)} without a record"
        return f"RunSummary({records} of {asked} runs recorded in {folders}; {state}; exit code {self.exit_code})"


def run(
    spec: SpecSource | Sequence[SpecSource],
    *,
    results: str | Path = "results",
    activations: Sequence[str] | str | None = None,
    batchnorm: str | None = None,
    seeds: int | None = None,
    progress: bool = True,
    **options: Any,
) -> RunSummary:
    """Train every activation × BN × seed of a spec (a file, or one `load_spec` gave), or of
    several one after another; runs already recorded are kept. The same engine and records as
    `elubench run`: `options` are its other options by their Python names (`overrides`,
    `device`, `executor`, `parallel`, `force`, `precision`, `deterministic`, ...; see
    `prepare_run`). A mistake raises an `elubench.errors.ElubenchError` before anything trains;
    interrupting (Ctrl-C, a notebook's stop button) checkpoints the runs in progress and raises
    `CampaignInterrupted`: run the same again to continue. `progress` shows bars that render
    in a terminal and in Jupyter."""
    from elubench.execution.campaign import run_campaign
    from elubench.execution.state import Reporter

    campaign, settings = prepare_run(
        spec, results=results, activations=activations, batchnorm=batchnorm, seeds=seeds, **options
    )
    reporter: Any = Reporter()
    if progress:
        from elubench.api.progress import CampaignReporter, RichReporter
        from elubench.core.units import unit_of

        first = campaign.experiments[0]
        reporter = (
            CampaignReporter(None, campaign.experiments)
            if campaign.several
            else RichReporter(None, unit_of(first.spec.task))
        )
    try:
        outcomes = run_campaign(campaign, settings, reporter)
    finally:
        if progress:
            reporter.close()
    return RunSummary(outcomes, settings.results)
