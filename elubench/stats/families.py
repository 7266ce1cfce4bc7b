"""The families of tests over a spec's configurations, one Holm family per question:

    activation comparisons  each activation against the baseline activation at the same BN
                            setting (and init); or every configuration against one configuration
                            (`--baseline relu+bn`); or every pair (`--all-pairs`)
    BN effects              per activation: with BN against without, seed by seed
    BN x activation         per activation: its BN effect against the baseline activation's

plus the Friedman omnibus test over every configuration. In each family the verdict of a row
comes from the primary test (Wilcoxon signed-rank) at the family's Holm-adjusted alpha, and its
direction from that test's statistic (the sign of T+ - T-, i.e. of the rank-biserial
correlation), never from the mean; where the mean points the other way the row says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from elubench.core.errors import StatsError
from elubench.stats.omnibus import Friedman, friedman_test
from elubench.stats.paired import (
    PAIRED_COLUMNS,
    PRIMARY,
    best_holm,
    bh,
    holm,
    paired_or_untestable,
    seeds_to_reach,
    wilcoxon_seeds,
)
from elubench.stats.scores import ScoreTable, prepare
from elubench.stats.verdicts import BETTER, WORSE, check_options, verdicts

FAMILY_COLUMNS = ["p_holm", "best_holm_p", "cannot_reach", "verdict", "seeds_for_80_power"]


def judge_family(
    rows: list[dict],
    leading: list[str],
    *,
    alpha: float,
    alternative: str,
    words: tuple[str, str] = (BETTER, WORSE),
) -> pd.DataFrame:
    """One family's table: Holm over its testable rows, the smallest Holm-adjusted p each row
    could reach (`cannot_reach` when even that is above alpha), the verdict from the primary
    test, and the seeds the primary test would need at the family's strictest Holm step.

    The family is the testable rows: a row with too few pairs is not tested, is not counted in
    Holm's m, and reads "not testable". `words` name the two directions (a lower, a higher)."""
    out = pd.DataFrame(rows, columns=[*leading, *PAIRED_COLUMNS])
    out["notes"] = [list(n) if isinstance(n, list) else [] for n in out["notes"]]
    p = out["wilcoxon_p"].to_numpy(dtype=float)
    testable = ~np.isnan(p)
    m = int(testable.sum())
    out["p_holm"] = holm(p)
    reachable = np.full(len(out), np.nan)
    if m:
        reachable[testable] = best_holm(out.loc[testable, "p_floor"].to_numpy(dtype=float))
    out["best_holm_p"] = reachable
    out["cannot_reach"] = testable & (reachable > alpha)
    # direction: the sign of T+ - T- (the rank-biserial correlation), < 0: a has the lower error
    out["verdict"] = verdicts(out["p_holm"], out["rank_biserial"], alpha, words)
    for i, (mean, rank) in enumerate(zip(out["mean_diff_pp"], out["rank_biserial"])):
        if testable[i] and mean != 0 and rank != 0 and np.sign(mean) != np.sign(rank):
            side = "lower" if rank < 0 else "higher"
            out["notes"].iat[i].append(
                f"the mean difference ({mean:+.2f} pp) points the other way from the ranks "
                f"(rank-biserial {rank:+.2f}: by rank, a's error is mostly {side}): a few seeds with large "
                f"differences outweigh the rest; the verdict follows the {PRIMARY} test"
            )
    seeds = [
        wilcoxon_seeds(dz, alpha / m, alternative) if t and m else None
        for dz, t in zip(out["d_z"].to_numpy(dtype=float), testable)
    ]
    out["seeds_for_80_power"] = pd.array(seeds, dtype="Int64")
    if not testable.all():  # what an untested comparison would need: 2 pairs to be tested, and
        # enough to reach the family's strictest Holm level were every comparison tested
        level = alpha / len(out)
        need = seeds_to_reach(level, alternative)
        for row in np.flatnonzero(~testable):
            out["notes"].iat[row].append(
                f"{need} or more paired seeds (every difference non-zero) could reach "
                f"significance at the family's strictest Holm level ({level:.3g})"
            )
    return out


# --- activation comparisons -------------------------------------------------------------------


@dataclass
class PairedComparisons:
    table: pd.DataFrame
    baseline: str | None  # an activation (within-setting), a configuration, or None (all pairs)
    alternative: str  # on d = err(a) - err(b): "less" = a has fewer errors
    alpha: float
    q_values: bool
    family_size: int  # testable comparisons: Holm's m
    n_seeds: int  # seeds with at least one run
    counts: bool  # differences of integer error counts (else of error fractions)
    family: str = ""  # the question, in words (table captions, the methods paragraph)
    mode: str = "activation"  # activation | configuration | all-pairs
    primary: str = PRIMARY
    correction: str = "Holm"
    zero_method: str = "zero differences dropped (Wilcoxon's original method)"
    difference: str = "d = err(a) - err(b) per seed; negative = a better"
    untestable: list[str] = field(default_factory=list)  # comparisons with fewer than 2 pairs
    not_compared: list[str] = field(
        default_factory=list
    )  # configurations with no baseline beside them


def paired_comparisons(
    runs: pd.DataFrame,
    baseline: str,
    *,
    all_pairs: bool = False,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    q_values: bool = False,
    rope: float | None = None,
) -> PairedComparisons:
    """The activation-comparison family of `runs` (see the module docstring for `baseline`)."""
    return comparisons(prepare(runs), baseline, all_pairs, alternative, alpha, q_values, rope)


def _setting(info: pd.Series, inits: bool) -> str:
    text = "BN" if info["batchnorm"] else "no BN"
    return f"{text}, {info['init']}" if inits else text


@dataclass
class Configurations:
    """What comparison_pairs reads of a table: a ScoreTable's, or the configurations several
    experiments share (stats.experiments)."""

    info: pd.DataFrame  # per config: activation, batchnorm, group
    configs: list[str]


def comparison_pairs(table: ScoreTable | Configurations, baseline: str | None, all_pairs: bool):
    """(pairs, mode, family text, configurations left out) for a baseline: an activation of the
    runs (each activation against it at the same BN setting and init), a configuration label
    (every configuration against it), or every pair."""
    info, configs = table.info, table.configs
    if all_pairs:
        return list(combinations(configs, 2)), "all-pairs", "every pair of configurations", []
    if baseline in set(info["activation"]):
        several = info["group"].ne("").any()
        key = {c: (bool(info.loc[c, "batchnorm"]), info.loc[c, "group"]) for c in configs}
        base = {key[c]: c for c in configs if info.loc[c, "activation"] == baseline}
        settings = list(dict.fromkeys(key.values()))
        pairs = [
            (c, base[k])
            for k in settings
            if k in base
            for c in configs
            if key[c] == k and c != base[k]
        ]
        left_out = [c for c in configs if key[c] not in base]
        where = "BN setting and init" if several else "BN setting"
        return (
            pairs,
            "activation",
            f"each activation against {baseline} at the same {where}",
            left_out,
        )
    if baseline in configs:
        pairs = [(c, baseline) for c in configs if c != baseline]
        return pairs, "configuration", f"each configuration against {baseline}", []
    raise StatsError(
        f"baseline {baseline!r} is neither an activation nor a configuration of the runs",
        hint=f"activations: {', '.join(dict.fromkeys(info['activation']))}; "
        f"configurations: {', '.join(configs)}",
    )


def comparisons(
    table: ScoreTable, baseline, all_pairs, alternative, alpha, q_values, rope=None
) -> PairedComparisons:
    check_options(alternative, alpha)
    pairs, mode, family, left_out = comparison_pairs(table, baseline, all_pairs)
    rows: list[dict] = []
    untestable: list[str] = []
    for a, b in pairs:
        d = (table.scores[a] - table.scores[b]).dropna().to_numpy()
        rows.append(
            {
                "a": a,
                "b": b,
                "setting": _setting(table.info.loc[a], table.info["group"].ne("").any()),
                **paired_or_untestable(f"{a} vs {b}", d, table.pp, alternative, untestable),
                **bayes_columns(d * table.pp, rope),
            }
        )
    out = judge_family(
        rows, ["a", "b", "setting", *BAYES_COLUMNS], alpha=alpha, alternative=alternative
    )
    if q_values:
        out["q_bh"] = bh(out["wilcoxon_p"].to_numpy(dtype=float))
    return PairedComparisons(
        out,
        None if all_pairs else baseline,
        alternative,
        alpha,
        q_values,
        int(out["wilcoxon_p"].notna().sum()),
        len(table.status),
        table.counts,
        family,
        mode,
        difference=_difference(table),
        untestable=untestable,
        not_compared=left_out,
    )


def _difference(table: ScoreTable) -> str:
    score = table.unit.score
    return f"d = {score}(a) - {score}(b) per seed; negative = a better"


BAYES_COLUMNS = ["p_a_better", "p_equivalent", "p_b_better", "rope_pp"]


def bayes_columns(d_pp: np.ndarray, rope: float | None) -> dict:
    """The Bayesian signed-rank test's three probabilities for differences in pp (none without
    a ROPE or with fewer than 2 pairs)."""
    if rope is None or d_pp.size < 2:
        return dict.fromkeys(BAYES_COLUMNS)
    from elubench.stats.bayes import bayes_signed_rank

    # 50,000 posterior samples (baycomp's default) up to 50 seeds; 20,000 above, where each
    # sample costs n weights: the Monte Carlo error stays below 0.004, under the 2 decimals shown
    result = bayes_signed_rank(d_pp, rope, samples=50_000 if d_pp.size <= 50 else 20_000)
    return {
        "p_a_better": result.p_left,
        "p_equivalent": result.p_rope,
        "p_b_better": result.p_right,
        "rope_pp": rope,
    }


# --- Friedman ---------------------------------------------------------------------------------


@dataclass
class FriedmanResult:
    test: Friedman  # statistic, p, method, F, degenerate, ...
    seeds: list[int]  # the complete blocks
    excluded: dict[int, str]  # seed -> why it is not a complete block
    mean_ranks: pd.Series  # per config; rank 1 = lowest error, ties get mid-ranks

    def __getattr__(self, name):  # statistic, p, method, k, n, f_statistic, ... of the test
        if name == "test":
            raise AttributeError(name)
        return getattr(self.test, name)

    @property
    def n_blocks(self) -> int:
        return len(self.seeds)


def friedman(runs: pd.DataFrame) -> FriedmanResult:
    """Friedman test over configurations with seeds as blocks (exact p where feasible)."""
    return friedman_table(prepare(runs))


def friedman_table(table: ScoreTable) -> FriedmanResult:
    complete = table.scores.notna().all(axis=1)
    excluded = {
        int(seed): ", ".join(f"{c} {s}" for c, s in row.items() if s != "ok")
        for seed, row in table.status[~complete].iterrows()
    }
    values = table.scores[complete].to_numpy()
    n, k = values.shape
    if k < 2 or n < 2:
        raise StatsError(
            f"the Friedman test needs 2 or more configurations and 2 or more seeds ok in "
            f"all of them; got {k} configuration(s) and {n} complete seed(s)",
            hint="run more seeds or rerun the failed runs",
        )
    test = friedman_test(values)
    ranks = pd.Series(test.mean_ranks, index=table.configs, name="mean_rank")
    return FriedmanResult(test, [int(s) for s in table.status.index[complete]], excluded, ranks)
