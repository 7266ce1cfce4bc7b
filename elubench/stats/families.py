"""The families of tests over a spec's configurations: paired comparisons against a baseline
(or all pairs), the Friedman omnibus test, and batch norm × activation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from elubench.errors import StatsError
from elubench.stats.paired import PRIMARY, bh, paired_or_untestable, stats_frame
from elubench.stats.scores import ScoreTable, check_options, prepare


# --- paired comparisons -----------------------------------------------------------------------

@dataclass
class PairedComparisons:
    table: pd.DataFrame
    baseline: str | None  # None when every pair is compared
    alternative: str      # on d = err(a) - err(b): "less" = a has fewer errors
    alpha: float
    q_values: bool
    family_size: int
    n_seeds: int          # seeds with at least one run
    counts: bool          # differences of integer error counts (else of error fractions)
    primary: str = PRIMARY
    correction: str = "Holm"
    zero_method: str = "zero differences dropped (Wilcoxon's original method)"
    difference: str = "d = err(a) - err(b) per seed; negative = a better"
    untestable: list[str] = field(default_factory=list)  # comparisons with fewer than 2 pairs


def paired_comparisons(runs: pd.DataFrame, baseline: str, *, all_pairs: bool = False,
                       alternative: str = "two-sided", alpha: float = 0.05,
                       q_values: bool = False) -> PairedComparisons:
    """Each configuration against `baseline` (or every pair), on per-seed differences."""
    return comparisons(prepare(runs), baseline, all_pairs, alternative, alpha, q_values)


def comparisons(table: ScoreTable, baseline, all_pairs, alternative, alpha, q_values) -> PairedComparisons:
    check_options(alternative, alpha)
    if baseline not in table.configs:
        raise StatsError(f"baseline {baseline!r} is not in the runs; configurations: {', '.join(table.configs)}",
                         hint="pass one of those labels as the baseline")
    pairs = (list(combinations(table.configs, 2)) if all_pairs
             else [(c, baseline) for c in table.configs if c != baseline])
    rows, untestable = [], []
    for a, b in pairs:
        d = (table.scores[a] - table.scores[b]).dropna().to_numpy()
        rows.append({"a": a, "b": b, **paired_or_untestable(f"{a} vs {b}", d, table.pp, alternative,
                                                             alpha, untestable)})
    if pairs and len(untestable) == len(pairs):
        raise StatsError(untestable[0] + (f" (and {len(untestable) - 1} more comparisons alike)"
                                          if len(untestable) > 1 else ""),
                         hint="run more seeds (compare.seeds in the spec) or rerun the failed runs")
    out = stats_frame(rows, ["a", "b"])
    m = len(out)
    p = out["wilcoxon_p"].to_numpy(dtype=float)
    if q_values:
        out["q_bh"] = bh(p)
    order = np.argsort(p, kind="stable")
    holm_alpha, blocked = np.empty(m), np.empty(m, dtype=bool)
    holm_alpha[order] = alpha / (m - np.arange(m))  # the threshold at this comparison's place
    # Holm steps down and stops at the first comparison that fails: a floor above the threshold
    # there blocks every comparison after it as well.
    blocked[order] = np.logical_or.accumulate(out["p_floor"].to_numpy()[order] > holm_alpha[order])
    out["holm_alpha"], out["floor_warning"] = holm_alpha, blocked
    significant = out["p_holm"] <= alpha
    mean = out["mean_diff_pp"]
    better = significant & (mean < 0) & (alternative != "greater")
    worse = significant & (mean > 0) & (alternative != "less")
    out["verdict"] = np.where(better, "better", np.where(worse, "worse", "no evidence"))
    out.loc[out["wilcoxon_method"] == "not testable", "verdict"] = "not testable"
    return PairedComparisons(out, None if all_pairs else baseline, alternative, alpha, q_values, m,
                             len(table.status), table.counts, untestable=untestable)


# --- Friedman ---------------------------------------------------------------------------------

@dataclass
class FriedmanResult:
    statistic: float          # chi-square, tie-corrected
    p: float
    k: int                    # configurations
    n_blocks: int             # seeds ok in every configuration
    seeds: list[int]
    excluded: dict[int, str]  # seed -> why it is not a complete block
    f_statistic: float        # Iman-Davenport F
    f_df: tuple[int, int]
    f_p: float
    mean_ranks: pd.Series     # per config; rank 1 = lowest error, ties get mid-ranks


def friedman(runs: pd.DataFrame) -> FriedmanResult:
    """Friedman test over configurations with seeds as blocks, and Iman-Davenport's F."""
    return friedman_table(prepare(runs))


def friedman_table(table: ScoreTable) -> FriedmanResult:
    from scipy import stats

    complete = table.scores.notna().all(axis=1)
    excluded = {int(seed): ", ".join(f"{c} {s}" for c, s in row.items() if s != "ok")
                for seed, row in table.status[~complete].iterrows()}
    values = table.scores[complete].to_numpy()
    n, k = values.shape
    if k < 2 or n < 2:
        raise StatsError(f"the Friedman test needs 2 or more configurations and 2 or more seeds ok in "
                         f"all of them; got {k} configuration(s) and {n} complete seed(s)",
                         hint="run more seeds or rerun the failed runs")
    ranks = pd.DataFrame(values, columns=table.configs).rank(axis=1, method="average")
    rank_sums = ranks.sum().to_numpy()
    # Tie correction: each tie group of size t adds t^3 - t, i.e. t^2 - 1 for each of its members.
    tie_size = (values[:, :, None] == values[:, None, :]).sum(axis=2)
    correction = 1 - float((tie_size ** 2 - 1).sum()) / (n * k * (k * k - 1))
    if correction <= 0:  # every seed ties every configuration: no evidence of any difference
        chi2 = 0.0
    else:
        chi2 = (12 / (n * k * (k + 1)) * float((rank_sums ** 2).sum()) - 3 * n * (k + 1)) / correction
    denominator = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denominator if denominator > 0 else math.inf
    df = (k - 1, (k - 1) * (n - 1))
    return FriedmanResult(chi2, float(stats.chi2.sf(chi2, k - 1)), k, n,
                          [int(s) for s in table.status.index[complete]], excluded, f, df,
                          float(stats.f.sf(f, *df)), ranks.mean().rename("mean_rank"))


# --- batch norm x activation ------------------------------------------------------------------

@dataclass
class BNInteraction:
    effects: pd.DataFrame    # per init group and activation: d = err(with BN) - err(without)
    contrasts: pd.DataFrame  # per init group and pair: BN effect of a - BN effect of b
    untestable: list[str] = field(default_factory=list)


def bn_interaction(runs: pd.DataFrame, reference_activation: str | None = None, *,
                   all_pairs: bool = False, alpha: float = 0.05) -> BNInteraction:
    """Per-seed BN effect per activation (negative = BN helps), and the difference of BN effects
    between activations (each vs `reference_activation`, or every pair), within each init.
    Tests are two-sided; Holm is applied within each of the two tables."""
    return bn_effects(prepare(runs), reference_activation, all_pairs, alpha)


def bn_effects(table: ScoreTable, reference_activation, all_pairs, alpha) -> BNInteraction:
    effects, contrasts, untestable = [], [], []
    for group, info in table.info.groupby("group", sort=False):
        effect = {}
        for activation, rows in info.groupby("activation", sort=False):
            if rows["batchnorm"].nunique() == 2:
                bn = rows["batchnorm"].to_numpy()
                on, off = rows.index[bn][0], rows.index[~bn][0]
                effect[activation] = table.scores[on] - table.scores[off]
                d = effect[activation].dropna().to_numpy()
                effects.append({"init": group, "activation": activation, "a": on, "b": off,
                                **paired_or_untestable(f"BN effect on {on} vs {off}", d, table.pp,
                                                        "two-sided", alpha, untestable)})
        names = list(effect)
        pairs = ([(a, reference_activation) for a in names if a != reference_activation]
                 if reference_activation in effect and not all_pairs else list(combinations(names, 2)))
        for a, b in pairs:
            d = (effect[a] - effect[b]).dropna().to_numpy()
            contrasts.append({"init": group, "a": a, "b": b,
                              **paired_or_untestable(f"BN effect of {a} vs of {b}", d, table.pp,
                                                      "two-sided", alpha, untestable)})
    return BNInteraction(stats_frame(effects, ["init", "activation", "a", "b"]),
                         stats_frame(contrasts, ["init", "a", "b"]), untestable)
