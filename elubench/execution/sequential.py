"""`run --until-decided`: the sequential design's driver (docs/statistics.md).

The design is fixed before the first round and recorded in the results folder
(sequential.json: alpha, side, most seeds, baseline, the seeds in the order they are trained,
the configurations compared); a later driver of the folder must ask for the same. Then, round
after round: read the records, decide every comparison of the plan (stats.sequential.plan: a
pure function of the records in seed order, so a driver that was stopped and started again
reaches the same decisions), and hand the runs the open comparisons need next to the
executor, whichever it is (serial, local workers, Ray, Slurm: each trains a round and
returns), until every comparison is decided, futile or at its most seeds.

The first round trains every configuration at the first look's seeds. After it, an open
comparison needs its configurations at its next look's count of paired seeds: the first seeds
of the design's order where none of its runs has diverged or failed (those seeds have no
difference to test; the next seed stands in). A configuration no open comparison needs stops
training; the baseline trains while any comparison against it is open. A crashed run is not
tried again within the design (its seed is passed over, as a diverged one is); the run stays
recorded as failed. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from elubench.activations.names import parse_activation
from elubench.core.errors import ActivationError, Interrupted, SpecError
from elubench.execution.peers import wait_for_peers
from elubench.execution.state import Tally, matrix_state
from elubench.spec.matrix import RunConfig
from elubench.spec.schema import Spec, default_baseline
from elubench.stats.scores import prepare
from elubench.stats.sequential.decisions import OPEN
from elubench.stats.sequential.design import SequentialDesign
from elubench.stats.sequential.plan import (
    FAMILIES,
    MatrixDecisions,
    fewest_max_seeds,
    plan_decisions,
    planned_comparisons,
)
from elubench.store.reader import runs_frame
from elubench.store.record import RunRecord, SequentialPlan
from elubench.store.rundir import ResultsDir


def sequential_plan(spec: Spec, pool: list[RunConfig]) -> SequentialPlan:
    """The design `spec` asks for over the runs it may train (`pool`: spec.matrix.select with
    compare.until_decided), checked: something to compare, a baseline in the matrix, and enough
    seeds that a comparison can be decided at all. SpecError (exit 2) otherwise."""
    compare = spec.compare
    configurations = list(dict.fromkeys(cfg.config for cfg in pool))
    plan = SequentialPlan(
        alpha=compare.alpha,
        alternative=compare.alternative,
        max_seeds=compare.max_seeds,
        baseline=_baseline(compare.baseline, pool),
        seeds=compare.sequential_seeds(),
        configurations=configurations,
    )
    sizes = family_sizes(plan, pool)
    if not sum(sizes.values()):
        raise SpecError(
            f"nothing to compare: the selection trains {', '.join(configurations)}",
            where="--until-decided",
            hint="select at least two activations, or one activation with and without BN",
        )
    family, m = next((f, m) for f, m in sizes.items() if m)
    alternative = plan.alternative if family == "activations" else "two-sided"
    fewest = fewest_max_seeds(m, plan.alpha, alternative)
    if fewest is None or plan.max_seeds < fewest:
        can = f"needs at least {fewest}" if fewest else "cannot decide any of them"
        raise SpecError(
            f"with at most {plan.max_seeds} seeds no outcome can decide any of the {m} "
            f"{FAMILIES[family][0]} ({alternative}, Holm at alpha {plan.alpha:g}): the "
            f"design {can}",
            where="--max-seeds",
            hint=f"use --max-seeds {fewest} or more (20 by default)"
            if fewest
            else "compare fewer configurations, or raise alpha",
        )
    return plan


def family_sizes(plan: SequentialPlan, pool: list[RunConfig]) -> dict[str, int]:
    """How many comparisons each family of the design holds (fixed before any run: a family's
    size is part of its Holm correction)."""
    first = {cfg.config: cfg for cfg in pool}
    rows = [
        {
            "config": cfg.config,
            "activation": cfg.activation,
            "batchnorm": cfg.batchnorm,
            "init": cfg.init,
            "seed": seed,
            "status": "ok",
            "test_error": 0.0,
        }
        for cfg in first.values()
        for seed in (0, 1)
    ]
    planned = planned_comparisons(prepare(pd.DataFrame(rows)), plan.baseline)
    return {family: sum(p.family == family for p in planned) for family in FAMILIES}


def _baseline(given: str | None, pool: list[RunConfig]) -> str:
    """The baseline as the records label it: an activation (compared at each BN setting) or a
    configuration label; the default rule's when none is given."""
    labels = list(dict.fromkeys(cfg.activation for cfg in pool))
    if given is None:
        return default_baseline(labels)
    if given in labels or given in {cfg.config for cfg in pool}:
        return given
    for cfg in pool:  # a custom activation by the reference the spec lists it by
        ref = cfg.activation_ref
        if ref and given in (ref, Path(ref).name):
            return cfg.activation
    try:
        canonical = str(parse_activation(given))
    except ActivationError:
        canonical = None
    if canonical in labels:
        return str(canonical)
    raise SpecError(
        f"baseline {given!r} is not in the matrix the design trains",
        where="compare.baseline",
        hint=f"activations: {', '.join(labels)}",
    )


@dataclass
class Round:
    """What the next round trains, and why in words; `decisions` None before the first."""

    configs: list[RunConfig]
    decisions: MatrixDecisions | None
    text: str


def next_runs(plan: SequentialPlan, pool: list[RunConfig], records: list[RunRecord]) -> Round:
    """The runs the design needs next, from the records so far (any order)."""
    recorded = {(r.config, r.seed) for r in records}
    by_key = {(cfg.config, cfg.seed): cfg for cfg in pool}
    have = {r.config for r in records if r.seed in plan.seeds}
    decisions = None
    if set(plan.configurations) <= have:  # else the first round is not done yet
        decisions = plan_decisions(runs_frame(records), plan)
    if decisions is None:
        first = SequentialDesign.default(plan.alpha, plan.max_seeds, plan.alternative).looks[0]
        wanted = [
            by_key[c, s]
            for s in plan.seeds[:first]
            for c in plan.configurations
            if (c, s) in by_key
        ]
        todo = [cfg for cfg in wanted if (cfg.config, cfg.seed) not in recorded]
        return Round(todo, None, f"first look: every configuration at {first} seeds")
    if decisions.decided:
        return Round([], decisions, "every comparison is decided or stopped")
    bad = {(r.config, r.seed) for r in records if r.status != "ok"}
    n = decisions.next.seeds
    assert n is not None
    wanted_keys: dict[tuple[str, int], None] = {}
    for planned in decisions.planned:
        if decisions.decisions[planned.name].state != OPEN:
            continue
        usable = [s for s in plan.seeds if not any((c, s) in bad for c in planned.configs)]
        for seed in usable[:n]:
            for config in planned.configs:
                wanted_keys[config, seed] = None
    todo = [
        by_key[key]
        for key in sorted(wanted_keys, key=lambda k: (plan.seeds.index(k[1]), k[0]))
        if key not in recorded and key in by_key
    ]
    open_ = len(decisions.next.open)
    text = (
        f"{open_} comparison{'s' * (open_ != 1)} open: the next look at {n} paired seeds needs "
        f"{', '.join(decisions.next.configurations)}"
    )
    if not todo:
        text = (
            f"{open_} comparison{'s' * (open_ != 1)} open, with no seed left to train "
            f"({plan.max_seeds} seeds at most; diverged or failed runs leave no difference)"
        )
    return Round(todo, decisions, text)


@dataclass
class SequentialOutcome:
    """What the driver left: the records of the design's runs, the runs it asked for (those it
    trained and those recorded before), and the last decisions."""

    records: list[RunRecord]
    asked: list[RunConfig]
    decisions: MatrixDecisions | None
    rounds: int


def run_until_decided(experiment, settings, tally: Tally) -> SequentialOutcome:
    """Train `experiment` (execution.campaign.Experiment, its configs the design's pool) in
    rounds through its executor until the design's decisions need nothing more."""
    spec, pool = experiment.spec, experiment.configs
    plan = sequential_plan(spec, pool)
    folder = ResultsDir(settings.results, spec)
    folder.prepare()
    folder.fix_sequential_plan(plan)
    asked: dict[str, RunConfig] = {}
    rounds = 0
    while True:
        state = matrix_state(folder, pool)
        records = [*state.done.values(), *state.failed.values()]
        for record in records:
            asked.setdefault(record.run_id, next(c for c in pool if c.run_id == record.run_id))
        plan_round = next_runs(plan, pool, records)
        if not plan_round.configs:
            tally.note(f"sequential design: {plan_round.text}")
            break
        rounds += 1
        tally.note(f"sequential round {rounds}: {plan_round.text}; {len(plan_round.configs)} runs")
        for cfg in plan_round.configs:
            asked[cfg.run_id] = cfg
        try:
            new = experiment.runner.run(spec, plan_round.configs, settings, tally)
        except Interrupted as stop:  # what the whole design has recorded, not this round alone
            raise Interrupted(str(stop), _records(folder, pool)) from None
        if settings.wait:
            new = wait_for_peers(folder, plan_round.configs, new, tally, tally.reasons)
        trained = {r.run_id for r in new}
        if not any(cfg.run_id in trained for cfg in plan_round.configs):
            break  # nothing of the round was recorded: why is in tally.reasons (exit 4)
    order = {cfg.run_id: i for i, cfg in enumerate(pool)}
    records = _records(folder, pool)
    return SequentialOutcome(
        records,
        sorted(asked.values(), key=lambda cfg: order[cfg.run_id]),
        next_runs(plan, pool, records).decisions,
        rounds,
    )


def _records(folder: ResultsDir, pool: list[RunConfig]) -> list[RunRecord]:
    state = matrix_state(folder, pool)
    return [*state.done.values(), *state.failed.values()]


def check_sequential(
    spec: Spec, pool: list[RunConfig], settings, *, folder: bool = True
) -> SequentialPlan:
    """Before anything trains: the design checked (sequential_plan), not with --force (it
    would train again runs the design has decided on), and (`folder`) the same as the one the
    results folder recorded, if any. Writes nothing."""
    if settings.force:
        raise SpecError(
            "--force does not go with --until-decided: the sequential design decides on the "
            "runs recorded, in order",
            where="--force",
            hint="train the design again into another --results folder",
        )
    plan = sequential_plan(spec, pool)
    if folder:
        results = ResultsDir(settings.results, spec)
        results.check()
        stored = results.sequential_plan()
        if stored is not None and stored.differences(plan):
            results.fix_sequential_plan(plan)  # raises, naming what differs
    return plan
