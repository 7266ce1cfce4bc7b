"""Across experiments: how each configuration fares over several specs (data sets), at two
levels (docs/statistics.md, "Across experiments").

    experiment level   each experiment's mean test error per configuration is one score; the
                       experiments are the blocks (Demšar 2006): mean ranks, the Friedman test
                       (exact p at few experiments), Holm-adjusted post-hoc tests of each
                       comparison on its rank sums (exact), Nemenyi's critical difference for
                       all pairs, and wins/ties/losses counted by each experiment's own verdict
    seed level         per experiment the mean of its paired per-seed differences and that
                       mean's variance, pooled by a random-effects meta-analysis (stats.meta)
                       with its heterogeneity, one Holm family over the comparisons

Only configurations with an ok run in every experiment are compared (named when some are
left out). Comparisons are the ones each experiment makes: each activation against the
baseline activation at the same BN setting (and init), every configuration against one, or
every pair. Pure functions on DataFrames; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from elubench.core.errors import StatsError
from elubench.core.units import CLASSIFICATION, Unit
from elubench.stats.families import Configurations, comparison_pairs
from elubench.stats.meta import random_effects
from elubench.stats.methods import across_methods
from elubench.stats.omnibus import Friedman, friedman_test
from elubench.stats.paired import holm
from elubench.stats.ranks import Nemenyi, nemenyi, rank_difference_test
from elubench.stats.scores import prepare
from elubench.stats.summary import Comparison
from elubench.stats.verdicts import BETTER, NO_EVIDENCE, WORSE, check_options, flipped, verdicts


@dataclass
class ExperimentResult:
    """One spec's runs and its own statistics (computed with the summary's baseline)."""

    name: str
    runs: pd.DataFrame
    comparison: Comparison | None


@dataclass
class Across:
    experiments: list[str]
    configs: list[str]  # shared: an ok run in every experiment
    left_out: dict[str, list[str]]  # configuration -> the experiments that have it
    baseline: str | None
    mode: str  # activation | configuration | all-pairs
    family: str  # the comparisons, in words
    alternative: str
    alpha: float
    unit: Unit  # of mean scores and differences (core.units)
    scores: pd.DataFrame  # experiment x config: mean test error of the ok runs (unit)
    ranks: pd.DataFrame  # experiment x config: rank, 1 = lowest mean error
    friedman: Friedman | None  # over experiments (blocks)
    nemenyi: Nemenyi | None
    posthoc: pd.DataFrame  # per comparison: rank test, Holm, verdict, W/T/L
    verdicts: pd.DataFrame  # per comparison and experiment (rows): that experiment's verdict
    meta: pd.DataFrame  # per comparison: pooled difference, heterogeneity, Holm
    per_experiment: pd.DataFrame  # per comparison x experiment: mean difference, se, CI, n
    warnings: list[str] = field(default_factory=list)
    methods: str = ""


def across_experiments(
    experiments: list[ExperimentResult],
    baseline: str | None,
    *,
    all_pairs: bool = False,
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> Across:
    check_options(alternative, alpha)
    names = [e.name for e in experiments]
    if len(experiments) < 2:
        raise StatsError(
            f"a summary across experiments needs two or more; there is one here "
            f"({', '.join(names) or 'none'})",
            hint="train another spec into the same results folder (elubench run "
            "SPEC --results DIR), or leave out --across",
        )
    tables = {e.name: prepare(e.runs) for e in experiments}
    has_ok = {
        name: [c for c in t.configs if t.scores[c].notna().any()] for name, t in tables.items()
    }
    every = list(dict.fromkeys(c for name in names for c in tables[name].configs))
    shared = [c for c in every if all(c in has_ok[name] for name in names)]
    left_out = {c: [name for name in names if c in has_ok[name]] for c in every if c not in shared}
    if not shared:
        raise StatsError(
            "the experiments share no configuration with an ok run",
            hint="; ".join(f"{name}: {', '.join(has_ok[name]) or 'no ok runs'}" for name in names)
            + ": train the same activations and BN settings in each",
        )
    if baseline is not None and not all_pairs:
        missing = [
            n
            for n in names
            if baseline not in set(tables[n].info["activation"])
            and baseline not in tables[n].configs
        ]
        if missing:
            raise StatsError(
                f"the baseline {baseline!r} is not in experiment(s) {', '.join(missing)}",
                hint="pick a baseline every experiment has (--baseline), or train it there",
            )
    info = (
        pd.concat([tables[n].info for n in names])
        .loc[lambda f: ~f.index.duplicated()]
        .loc[shared]
        .copy()
    )
    several = info["init"].nunique() > 1
    info["group"] = [str(i) if several else "" for i in info["init"]]
    pairs, mode, family, not_compared = comparison_pairs(
        Configurations(info=info, configs=shared), baseline, all_pairs
    )
    units = {tables[e.name].unit for e in experiments}
    unit = units.pop() if len(units) == 1 else CLASSIFICATION
    scores = pd.DataFrame(
        {
            name: [
                float(
                    e.runs.loc[(e.runs["config"] == c) & (e.runs["status"] == "ok"), "test_error"]
                    .astype(float)
                    .mean()
                )
                * unit.scale
                for c in shared
            ]
            for name, e in zip(names, experiments)
        },
        index=shared,
    ).T.rename_axis(index="experiment", columns="config")
    ranks = scores.rank(axis=1, method="average")
    warnings = []
    if left_out:
        warnings.append(
            "compared on the configurations every experiment has; left out: "
            + "; ".join(f"{c} (only in {', '.join(have)})" for c, have in left_out.items())
        )
    if not_compared:
        warnings.append(
            f"not compared across experiments: {', '.join(not_compared)} (no {baseline} "
            "at the same setting in every experiment)"
        )
    # seeds: every seed the experiment has a run of (a configuration's missing seeds count)
    incomplete = [
        f"{name}: {c} ({int(ok)} of {len(tables[name].status)} ok)"
        for name in names
        for c, ok in (tables[name].status[shared] == "ok").sum().items()
        if ok < len(tables[name].status)
    ]
    if incomplete:
        warnings.append(
            "the experiment-level scores are means over the ok runs only, so a "
            "configuration whose runs diverged, failed or are missing is scored on "
            "fewer (and perhaps easier) seeds: " + "; ".join(incomplete)
        )
    friedman, nemenyi_result = _omnibus(scores, warnings, alpha)
    posthoc, per_verdicts = _posthoc(experiments, scores, pairs, alternative, alpha)
    if units:  # more than one: the experiments mix tasks
        tasks = sorted(tables[e.name].unit.task for e in experiments)
        warnings.append(
            "the seed-level meta-analysis is left out: the experiments mix tasks "
            f"({', '.join(dict.fromkeys(tasks))}), whose errors have no common unit"
        )
        meta, per_experiment = _meta(experiments, tables, [], alternative, alpha, warnings)
    else:
        meta, per_experiment = _meta(experiments, tables, pairs, alternative, alpha, warnings)
    result = Across(
        names,
        shared,
        left_out,
        None if all_pairs else baseline,
        mode,
        family,
        alternative,
        alpha,
        unit,
        scores,
        ranks,
        friedman,
        nemenyi_result,
        posthoc,
        per_verdicts,
        meta,
        per_experiment,
        warnings,
    )
    result.methods = across_methods(result)
    return result


def _omnibus(scores: pd.DataFrame, warnings: list[str], alpha: float):
    n, k = scores.shape
    if k < 2:
        warnings.append(
            "Friedman test and Nemenyi's critical difference skipped: one shared configuration"
        )
        return None, None
    friedman = friedman_test(scores.to_numpy(), block="experiment")
    if friedman.degenerate:
        warnings.append(f"Friedman test over experiments: {friedman.degenerate}")
    mean_ranks = dict(zip(scores.columns, friedman.mean_ranks))
    return friedman, nemenyi(mean_ranks, n, alpha)


POSTHOC_COLUMNS = [
    "a",
    "b",
    "mean_rank_a",
    "mean_rank_b",
    "z",
    "p_z",
    "p_exact",
    "p",
    "p_method",
    "p_holm",
    "verdict",
    "wins",
    "ties",
    "losses",
    "untestable",
]


def _posthoc(experiments, scores: pd.DataFrame, pairs, alternative, alpha):
    """One Holm family of rank-sum tests over the comparisons, and per experiment its verdict."""
    columns = list(scores.columns)
    rows, verdict_rows = [], []
    for a, b in pairs:
        by_experiment = {}
        for e in experiments:
            table = e.comparison.paired.table
            row = table[(table["a"] == a) & (table["b"] == b)]
            other_way = table[(table["a"] == b) & (table["b"] == a)]  # all pairs, in another order
            if len(row):
                by_experiment[e.name] = str(row["verdict"].iloc[0])
            elif len(other_way):
                by_experiment[e.name] = flipped(str(other_way["verdict"].iloc[0]))
            else:
                by_experiment[e.name] = "not compared"
            verdict_rows.append(
                {"a": a, "b": b, "experiment": e.name, "verdict": by_experiment[e.name]}
            )
        counts = pd.Series(list(by_experiment.values())).value_counts()
        tally = {
            "wins": int(counts.get(BETTER, 0)),
            "ties": int(counts.get(NO_EVIDENCE, 0)),
            "losses": int(counts.get(WORSE, 0)),
        }
        tally["untestable"] = len(experiments) - sum(tally.values())
        if len(columns) >= 2 and len(scores) >= 2:
            test = rank_difference_test(
                scores.to_numpy(), columns.index(a), columns.index(b), alternative
            )
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "mean_rank_a": test.mean_rank_a,
                    "mean_rank_b": test.mean_rank_b,
                    "z": test.z,
                    "p_z": test.p_z,
                    "p_exact": test.p_exact,
                    "p": test.p,
                    "p_method": test.method,
                    **tally,
                }
            )
        else:
            rows.append({"a": a, "b": b, **tally})
    out = pd.DataFrame(rows, columns=[c for c in POSTHOC_COLUMNS if c not in ("p_holm", "verdict")])
    out["p_holm"] = holm(out["p"].to_numpy(dtype=float))
    direction = out["mean_rank_a"].to_numpy(dtype=float) - out["mean_rank_b"].to_numpy(dtype=float)
    out["verdict"] = verdicts(out["p_holm"], direction, alpha)  # a lower mean rank: a better
    return out[POSTHOC_COLUMNS], pd.DataFrame(
        verdict_rows, columns=["a", "b", "experiment", "verdict"]
    )


META_COLUMNS = [
    "a",
    "b",
    "k",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "t",
    "p",
    "p_holm",
    "verdict",
    "tau2",
    "q",
    "q_p",
    "i2",
    "left_out",
]
EXPERIMENT_COLUMNS = [
    "a",
    "b",
    "experiment",
    "n_pairs",
    "mean_diff",
    "se",
    "ci_low",
    "ci_high",
    "weight",
]


def _meta(experiments, tables, pairs, alternative, alpha, warnings):
    """Per comparison: each experiment's mean per-seed difference and its standard error, and
    the random-effects pool of those (differences in the unit of core.units)."""
    from scipy import stats

    rows, per_experiment = [], []
    for a, b in pairs:
        effects, variances, used, left = [], [], [], []
        for e in experiments:
            table = tables[e.name]
            unit = table.pp  # per unit of the stored scores: pp, or MSE x 100 (core.units)
            # on the scores as stored (integer error counts, exact in float64), so that a
            # constant difference has a variance of exactly 0; then in pp (or MSE)
            d = (table.scores[a] - table.scores[b]).dropna().to_numpy()
            n = d.size
            mean = float(d.mean()) * unit if n else np.nan
            var = float(d.var(ddof=1)) * unit**2 / n if n >= 2 else np.nan
            se = np.sqrt(var) if n >= 2 else np.nan
            half = float(stats.t.ppf(0.975, n - 1)) * se if n >= 2 else np.nan
            per_experiment.append(
                {
                    "a": a,
                    "b": b,
                    "experiment": e.name,
                    "n_pairs": n,
                    "mean_diff": mean,
                    "se": se,
                    "ci_low": mean - half,
                    "ci_high": mean + half,
                    "weight": np.nan,
                }
            )
            if n < 2:
                left.append(f"{e.name} ({n} paired seed{'s' * (n != 1)})")
            elif var == 0:
                left.append(
                    f"{e.name} (every seed gives the same difference, {mean:+.3g}: a variance "
                    "of 0 cannot be weighted)"
                )
            else:
                effects.append(mean)
                variances.append(var)
                used.append(len(per_experiment) - 1)
        row = {"a": a, "b": b, "k": len(effects), "left_out": "; ".join(left)}
        if len(effects) >= 2:
            pooled = random_effects(effects, variances, alternative)
            row.update(
                estimate=pooled.estimate,
                se=pooled.se,
                ci_low=pooled.ci_low,
                ci_high=pooled.ci_high,
                t=pooled.t,
                p=pooled.p,
                tau2=pooled.tau2,
                q=pooled.q,
                q_p=pooled.q_p,
                i2=pooled.i2,
            )
            for index, weight in zip(used, pooled.weights):
                per_experiment[index]["weight"] = weight
        if left:
            warnings.append(f"meta-analysis of {a} vs {b}: left out {'; '.join(left)}")
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in META_COLUMNS if c not in ("p_holm", "verdict")])
    out["p_holm"] = holm(out["p"].to_numpy(dtype=float))
    out["verdict"] = verdicts(
        out["p_holm"], out["estimate"], alpha
    )  # a pooled difference < 0: a better
    return out[META_COLUMNS], pd.DataFrame(per_experiment, columns=EXPERIMENT_COLUMNS)
