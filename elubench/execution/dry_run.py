"""`run --dry-run`: where a matrix stands, what the rest would cost on this machine (a few
steps timed on random data of the spec's shape), and whether its seeds can make a comparison
significant at all. Writes nothing."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from elubench.data.catalog import DatasetStatus, dataset_status
from elubench.execution.state import MatrixState, RunSettings, matrix_state
from elubench.spec.matrix import RunConfig
from elubench.stats.reach import FamilyReach, significance_reach
from elubench.store.rundir import ResultsDir


@dataclass
class Estimate:
    step_seconds: float  # one training step, measured on this device with `threads`
    eval_seconds: float  # one evaluation of the whole test set (estimated from batches)
    iterations: int  # per run
    evaluations: int  # per run
    runs: int  # runs left to train
    device: str
    threads: int = 1  # CPU threads per run while timed
    at_once: int = 1  # runs training at once

    @property
    def run_seconds(self) -> float:
        return self.iterations * self.step_seconds + self.evaluations * self.eval_seconds

    @property
    def total_seconds(self) -> float:
        """Waves of `at_once` runs; assumes runs at once do not slow each other (each has its
        own cores), which memory bandwidth may not quite allow."""
        return math.ceil(self.runs / max(1, self.at_once)) * self.run_seconds


def estimate(
    spec,
    cfg: RunConfig,
    runs: int,
    settings: RunSettings,
    *,
    threads: int | None = None,
    at_once: int = 1,
    steps: int = 8,
    warmup: int = 3,
) -> Estimate:
    """Time a few steps of `cfg`'s net on random data of the spec's shape (no dataset needed),
    with `threads` CPU threads (default: a run's), and scale to the matrix: a user learns the
    cost before starting."""
    import torch

    from elubench.training.runtime import configure, resolve_device, synchronize
    from elubench.training.steps import build_for_training, eval_batch_size, make_step

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
    return Estimate(
        step_seconds,
        eval_seconds,
        iterations,
        evaluations,
        runs,
        str(device),
        threads if device.type == "cpu" else 1,
        at_once,
    )


@dataclass
class DryRun:
    """What `run --dry-run` shows: where each run stands and what the rest would cost."""

    configs: list[RunConfig]
    state: MatrixState
    folder: Path
    other_version: bool  # the folder holds another version of this spec
    estimate: Estimate | None  # None when nothing is left to train
    timed_on: str | None = None  # the configuration whose steps were timed
    reach: list[FamilyReach] = field(default_factory=list)  # per family of tests
    alternative: Estimate | None = None  # CPU: one run at a time with every core, for contrast
    data: DatasetStatus | None = None  # the spec's dataset as found here
    forecast: Forecast | None = None  # run --until-decided: the design simulated


@dataclass
class Forecast:
    """`run --dry-run --until-decided`: the sequential design of the activation family (or,
    without one, the BN effects) simulated beside the fixed design, one row per effect size."""

    family: str  # the family simulated, in words
    comparisons: int
    configurations: int  # of the matrix
    max_seeds: int
    fixed_seeds: int  # the spec's fixed design
    rows: list  # stats.sequential.simulation.DesignComparison, one per effect
    simulations: int


FORECAST_SIMULATIONS = 2000  # a few seconds on one core; power to within about +-0.01


def forecast(spec, configs: list[RunConfig], effects: list[float]) -> Forecast:
    """The sequential design's power and runs at each effect size d_z (every comparison of the
    family given the same effect; normal differences) beside the fixed design of the spec's
    seeds, from FORECAST_SIMULATIONS simulated matrices each."""
    from elubench.core.limits import MAX_EXACT_PAIRS
    from elubench.execution.sequential import family_sizes, sequential_plan
    from elubench.stats.sequential.design import SequentialDesign
    from elubench.stats.sequential.plan import FAMILIES
    from elubench.stats.sequential.simulation import simulate_design

    plan = sequential_plan(spec, configs)
    sizes = family_sizes(plan, configs)
    family, m = next((f, m) for f, m in sizes.items() if m)
    alternative = plan.alternative if family == "activations" else "two-sided"
    design = SequentialDesign.default(plan.alpha, plan.max_seeds, alternative)
    fixed = min(len(spec.compare.seed_list()), MAX_EXACT_PAIRS)
    rows = [
        simulate_design(
            design, m, effect, simulations=FORECAST_SIMULATIONS, seed=k, fixed_seeds=fixed
        )
        for k, effect in enumerate(effects)
    ]
    return Forecast(
        FAMILIES[family][0],
        m,
        len(plan.configurations),
        plan.max_seeds,
        fixed,
        rows,
        FORECAST_SIMULATIONS,
    )


def parse_effects(text: str) -> list[float]:
    """`--effects 0,0.5,1,2`: effect sizes d_z, each a finite number >= 0."""
    from elubench.core.errors import ElubenchError

    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and 0 <= v <= 10 for v in values):
        raise ElubenchError(
            f"cannot read effect sizes {text!r}",
            where="--effects",
            hint="comma-separated d_z values from 0 to 10, e.g. --effects 0,0.5,1,2",
        )
    return values


def dry_run(
    spec,
    configs: list[RunConfig],
    settings: RunSettings,
    at_once: int = 1,
    effects: list[float] | None = None,
) -> DryRun:
    """Where the matrix stands in the results folder, an estimate of the rest (with `at_once`
    runs training at once), and whether its seeds can make a comparison significant at all;
    writes nothing. On a CPU with more cores than a run's threads it also times the other layout
    (one run at a time on every core), so a user sees which is faster for this net. With the
    sequential design, `configs` are every run it may train, and its forecast at `effects`."""
    from elubench.core.machine import usable_cores

    results = ResultsDir(settings.results, spec)
    other = results.stored_hash() not in (None, spec.hash)
    state = (
        MatrixState(todo=list(configs))
        if other or settings.force
        else matrix_state(results, configs)
    )
    guess = alternative = None
    if state.todo:
        at_once = max(1, min(at_once, len(state.todo)))
        guess = estimate(spec, state.todo[0], len(state.todo), settings, at_once=at_once)
        cores = usable_cores()
        if guess.device == "cpu" and cores > guess.threads:
            alternative = estimate(spec, state.todo[0], len(state.todo), settings, threads=cores)
    return DryRun(
        configs,
        state,
        results.path,
        other,
        guess,
        state.todo[0].config if state.todo else None,
        reach(spec, configs),
        alternative,
        dataset_status(spec.data, settings.data_dir),
        forecast(spec, configs, effects or [0.0, 0.5, 1.0, 2.0])
        if spec.compare.until_decided
        else None,
    )


def reach(spec, configs: list[RunConfig]) -> list[FamilyReach]:
    """The families `compare` will test on these runs, with their floors (stats.reach)."""
    from elubench.spec.schema import default_baseline

    if not configs or spec.compare.until_decided:  # the forecast says what its seeds can do
        return []
    activations = list(dict.fromkeys(c.activation for c in configs))
    labels = {c.config for c in configs}
    baseline = spec.compare.baseline
    refs = {c.activation_ref: c.activation for c in configs if c.activation_ref}
    baseline = refs.get(baseline, baseline)  # a custom activation's reference: its label
    if baseline not in activations and baseline not in labels:
        baseline = default_baseline(activations)
    return significance_reach(
        activations,
        sorted({c.batchnorm for c in configs}),
        list(dict.fromkeys(c.init for c in configs)),
        baseline,
        len({c.seed for c in configs}),
        spec.compare.alpha,
        spec.compare.alternative,
    )
