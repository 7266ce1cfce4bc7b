"""Learning speed, cost, the methods paragraph, and `compare`: every statistic of one spec."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from elubench.core.errors import StatsError
from elubench.core.units import CLASSIFICATION, Unit
from elubench.spec.schema import default_baseline
from elubench.stats.bn_families import BNInteraction, bn_effects, reference_activation
from elubench.stats.families import (
    FriedmanResult,
    PairedComparisons,
    comparisons,
    friedman_table,
)
from elubench.stats.methods import condition_warnings, methods_text, reach_warnings, run_warnings
from elubench.stats.scores import ScoreTable, descriptives_table, prepare
from elubench.stats.sequential.decisions import OPEN
from elubench.stats.sequential.plan import SequentialResult, design_text, sequential_result
from elubench.stats.verdicts import check_options
from elubench.store.record import SequentialPlan

# --- learning speed and cost ------------------------------------------------------------------


@dataclass
class LearningSpeed:
    target: float  # test error fraction to reach
    target_source: str
    per_run: pd.DataFrame  # run_id, config, seed, iterations (NaN: never reached)
    table: pd.DataFrame  # config, n, n_reached, mean_iterations, median_iterations


def learning_speed(
    runs: pd.DataFrame, metrics: pd.DataFrame, target: float | None = None
) -> LearningSpeed:
    """Iterations each ok run needed to reach `target` test error (the first evaluation at or
    below it). Default target: the worst configuration's mean final test error."""
    return _speed(prepare(runs), runs, metrics, target)


def _speed(
    table: ScoreTable, runs: pd.DataFrame, metrics: pd.DataFrame, target: float | None
) -> LearningSpeed:
    ok = runs[runs["status"] == "ok"]
    source = "given"
    if target is None:
        means = ok.groupby("config")["test_error"].mean()
        target, source = (
            float(means.max()),
            (f"mean final {table.unit.metric} of the worst configuration ({means.idxmax()})"),
        )
    hits = metrics[metrics["run_id"].isin(ok["run_id"]) & (metrics["test_error"] <= target)]
    first = hits.groupby("run_id")["iteration"].min()
    per_run = ok[["run_id", "config", "seed"]].reset_index(drop=True)
    per_run["iterations"] = per_run["run_id"].map(first).astype(float)
    grouped = per_run.groupby("config", sort=False)["iterations"]
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "n_reached": grouped.count(),
            "mean_iterations": grouped.mean(),
            "median_iterations": grouped.median(),
        }
    )
    out = (
        out.reindex([c for c in table.configs if c in out.index])
        .rename_axis("config")
        .reset_index()
    )
    return LearningSpeed(float(target), source, per_run, out)


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Images/s per configuration (ok runs) and time per image relative to relu with the same
    BN and init (relu's images/s over the configuration's); NaN without such a relu."""
    return _cost(prepare(runs), runs)


def _cost(table: ScoreTable, runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"] == "ok"]
    speed = ok.groupby("config")["images_per_second"].mean().reindex(table.configs)
    info = table.info
    relu = {
        (bn, g): c
        for c, bn, g in zip(info.index, info["batchnorm"], info["group"])
        if info.loc[c, "activation"] == "relu"
    }
    relu_speed = [
        speed.get(relu.get((bn, g)), math.nan) for bn, g in zip(info["batchnorm"], info["group"])
    ]
    return pd.DataFrame(
        {
            "config": table.configs,
            "activation": info["activation"].to_numpy(),
            "batchnorm": info["batchnorm"].to_numpy(),
            "n": ok.groupby("config").size().reindex(table.configs, fill_value=0).to_numpy(),
            "images_per_second": speed.to_numpy(),
            "time_per_image_vs_relu": np.asarray(relu_speed) / speed.to_numpy(),
        }
    )


# --- compare ----------------------------------------------------------------------------------


@dataclass
class Comparison:
    spec_name: str | None
    baseline: str
    configs: list[str]
    descriptives: pd.DataFrame
    friedman: FriedmanResult | None
    paired: PairedComparisons
    bn: BNInteraction | None
    speed: LearningSpeed | None
    cost: pd.DataFrame
    methods: str
    warnings: list[str]
    rope: float | None = None
    unit: Unit = CLASSIFICATION  # of every score and difference (core.units)
    # run --until-decided: the design's decisions; the fixed-n tests are then descriptive
    sequential: SequentialResult | None = None


def compare(
    runs: pd.DataFrame,
    metrics: pd.DataFrame | None = None,
    *,
    baseline: str | None = None,
    all_pairs: bool = False,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    q_values: bool = False,
    target: float | None = None,
    reference: dict[str, tuple[float, float]] | None = None,
    rope: float | None = None,
    target_shown: float | None = None,
    sequential: SequentialPlan | None = None,
) -> Comparison:
    """Every statistic of one spec's runs, with warnings a reader must see.

    `baseline` is an activation (each activation against it at the same BN setting: the
    default, relu when the runs have it), a configuration label (every configuration against
    it), or ignored with `all_pairs`. `rope` (percentage points) adds the Bayesian signed-rank
    test's probabilities. The learning-speed target is a score (`target`: a fraction, an MSE) or
    a value as the tables show it (`target_shown`: % or MSE x 100, core.units). `sequential`:
    the design the runs were trained under (run --until-decided): its decisions are the
    verdicts, and the fixed-n tests descriptive."""
    check_options(alternative, alpha)
    table = prepare(runs)
    if target is None and target_shown is not None:
        target = target_shown / table.unit.scale
    baseline = baseline or default_baseline(list(dict.fromkeys(table.info["activation"])))
    paired = comparisons(table, baseline, all_pairs, alternative, alpha, q_values, rope)
    warnings = run_warnings(table, by_design=sequential is not None)
    if paired.not_compared:
        warnings.append(
            f"not compared: {', '.join(paired.not_compared)} (no {baseline} run at "
            "the same BN setting)"
        )
    try:
        omnibus = friedman_table(table) if len(table.configs) > 1 else None
    except StatsError as exc:
        omnibus = None
        warnings.append(f"Friedman test skipped: {exc.message}")
    if omnibus is not None and omnibus.degenerate:
        warnings.append(f"Friedman test: {omnibus.degenerate}")
    warnings += [f"not tested: {message}" for message in paired.untestable]
    warnings += reach_warnings("activation comparisons", paired.table, alpha, alternative)
    interaction = bn_effects(table, reference_activation(table, paired), all_pairs, alpha, rope)
    bn = interaction if len(interaction.effects) else None
    if bn is not None:
        warnings += [f"not tested: {message}" for message in bn.untestable]
        warnings += reach_warnings("BN effects", bn.effects, alpha, "two-sided")
        warnings += reach_warnings("BN × activation", bn.contrasts, alpha, "two-sided")
    warnings += condition_warnings(table, [paired.table, *([bn.effects] if bn is not None else [])])
    desc = descriptives_table(table, runs, reference)
    any_ok = bool(table.scores.notna().any().any())  # a matrix may hold no ok run yet
    speed = _speed(table, runs, metrics, target) if metrics is not None and any_ok else None
    names = pd.unique(runs["spec_name"]) if "spec_name" in runs else []
    methods = methods_text(paired, desc, omnibus, bn, rope, table)
    decided = None
    if sequential is not None:
        decided = sequential_result(runs, sequential)
        methods, warnings = _sequential_notes(decided, methods, warnings)
    return Comparison(
        str(names[0]) if len(names) else None,
        baseline,
        table.configs,
        desc,
        omnibus,
        paired,
        bn,
        speed,
        _cost(table, runs),
        methods,
        warnings,
        rope,
        table.unit,
        decided,
    )


def _sequential_notes(
    result: SequentialResult, methods: str, warnings: list[str]
) -> tuple[str, list[str]]:
    """The methods paragraph and warnings of runs trained by the sequential design: the design
    first, the fixed-n tests' own warnings marked descriptive, what is still open."""
    warnings = [
        f"(descriptive tests) {w}" if "cannot reach significance" in w else w for w in warnings
    ]
    if result.decisions is None:
        return methods, [f"sequential design: no decisions yet ({result.note})", *warnings]
    still = [name for name, d in result.decisions.decisions.items() if d.state == OPEN]
    if still:
        warnings.insert(
            0,
            f"sequential design: {len(still)} comparison{'s' * (len(still) > 1)} still open "
            f"({', '.join(still)}): run the same `elubench run --until-decided` to go on",
        )
    methods = (
        design_text(result.plan, result.decisions)
        + " The fixed-n tests reported beside the sequential decisions are descriptive: "
        "computed on the seeds the design trained, they ignore its repeated looks. " + methods
    )
    return methods, warnings
