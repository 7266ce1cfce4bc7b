"""Statistics over one spec's runs: descriptives, Friedman, paired tests, BN x activation,
learning speed and cost.

Runs are paired by seed: seed i gives every configuration the same initial weights, data order
and augmentation, so comparisons work on per-seed differences. Only status "ok" runs enter a
test; failed and diverged runs are counted in the tables and the warnings, never dropped
silently. Differences are taken on the integer error counts where a run has them, so float
round-off cannot break a tie. Pure functions on DataFrames; scipy.stats is imported inside the
functions that need it, to keep `import elubench.stats` fast.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from elubench.errors import StatsError

ALTERNATIVES = ("two-sided", "less", "greater")
PRIMARY = "Wilcoxon signed-rank"
EXACT_MAX_N = 50  # exact null distribution up to here: its 2**n sign assignments fit in int64
STATUSES = ("ok", "diverged", "failed")
PAIRED_COLUMNS = ["n_pairs", "mean_diff_pp", "ci_low", "ci_high", "median_diff_pp", "wins", "ties",
                  "losses", "t_stat", "t_p", "wilcoxon_stat", "wilcoxon_p", "wilcoxon_method",
                  "zeros_dropped", "p_floor", "d_z", "rank_biserial", "seeds_for_80_power"]


# --- the runs as a seed x configuration table -------------------------------------------------

@dataclass
class _Table:
    configs: list[str]      # in the order they first appear
    info: pd.DataFrame      # per config: activation, batchnorm, group (init suffix or "")
    scores: pd.DataFrame    # seed x config: error counts (exact in float64) or fractions; NaN unless ok
    status: pd.DataFrame    # seed x config: ok | diverged | failed | missing
    pp: float               # percentage points per unit of `scores`
    counts: bool            # `scores` are integer error counts


def _prepare(runs: pd.DataFrame) -> _Table:
    if "spec_name" in runs and runs["spec_name"].nunique() > 1:
        names = ", ".join(map(str, pd.unique(runs["spec_name"])))
        raise StatsError(f"runs of more than one spec were passed together ({names})",
                         hint="compare one spec at a time: group the runs by spec_name")
    twice = runs.duplicated(["config", "seed"], keep=False)
    if twice.any():
        row = runs[twice].iloc[0]
        raise StatsError(f"more than one run of {row['config']} with seed {row['seed']}",
                         hint="each configuration and seed must appear once; check the run ids")
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        counts = ", ".join(f"{n} {s}" for s, n in runs["status"].value_counts().items())
        raise StatsError(f"no ok runs to compare ({counts or 'no runs at all'})",
                         hint="look at the failed runs' errors, fix the cause and run them again")
    configs = list(pd.unique(runs["config"]))
    # Integer counts when every ok run has them on one test set (classification); else fractions.
    counts_ok = "test_errors" in ok and ok["test_errors"].notna().all() and ok["test_size"].nunique() == 1
    if counts_ok:
        values, pp = ok["test_errors"].astype("int64").astype("float64"), 100.0 / float(ok["test_size"].iloc[0])
    else:
        values, pp = ok["test_error"].astype("float64"), 100.0
    status = (runs.pivot(index="seed", columns="config", values="status")
              .reindex(columns=configs).sort_index().astype(object).fillna("missing")
              .rename_axis(index="seed", columns="config"))
    scores = (pd.DataFrame({"seed": ok["seed"].to_numpy(), "config": ok["config"].to_numpy(),
                            "v": values.to_numpy()})
              .pivot(index="seed", columns="config", values="v")
              .reindex(index=status.index, columns=status.columns))
    info = runs.drop_duplicates("config").set_index("config").loc[configs, ["activation", "batchnorm", "init"]]
    info["batchnorm"] = info["batchnorm"].astype(bool)
    base = info["activation"].astype(str) + np.where(info["batchnorm"], "+bn", "")
    info["group"] = [label[len(b):].lstrip("/") if label.startswith(b) else str(init)
                     for label, b, init in zip(configs, base, info["init"])]
    return _Table(configs, info, scores, status, pp, bool(counts_ok))


def _check_options(alternative: str, alpha: float = 0.05) -> None:
    if alternative not in ALTERNATIVES:
        raise StatsError(f"unknown alternative {alternative!r}", hint=f"use one of {', '.join(ALTERNATIVES)}")
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must be between 0 and 1, got {alpha}", hint="the usual choice is 0.05")


# --- descriptives -----------------------------------------------------------------------------

def descriptives(runs: pd.DataFrame, reference: dict[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """Per configuration: run counts by status and test error (%) of the ok runs, with the
    reference's published mean and std where it names the configuration."""
    return _descriptives(_prepare(runs), runs, reference)


def _descriptives(table: _Table, runs: pd.DataFrame, reference) -> pd.DataFrame:
    from scipy import stats

    ok = runs[runs["status"] == "ok"]
    counts = (runs.groupby("config")["status"].value_counts().unstack(fill_value=0)
              .reindex(index=table.configs, columns=list(STATUSES), fill_value=0).add_prefix("n_"))
    agg = (ok["test_error"].astype(float) * 100).groupby(ok["config"]).agg(
        ["count", "mean", "std", "median", "min", "max"]).reindex(table.configs)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.975, agg["count"] - 1) * agg["std"] / np.sqrt(agg["count"])
    refs = pd.DataFrame([_reference_for(c, table.info.loc[c], reference or {}) for c in table.configs],
                        index=table.configs, columns=["ref_mean", "ref_std"])
    out = pd.concat([counts, agg[["mean", "std"]], (agg["mean"] - half).rename("ci_low"),
                     (agg["mean"] + half).rename("ci_high"), agg[["median", "min", "max"]], refs], axis=1)
    return out.rename_axis("config").reset_index()


def _reference_for(config: str, info, reference: dict) -> tuple[float, float]:
    keys = [config]
    if not info["batchnorm"] and not info["group"]:  # the paper's names: "lrelu" for lrelu(...)
        keys += [str(info["activation"]), str(info["activation"]).split("(")[0]]
    for key in keys:
        if key in reference:
            mean, std = reference[key]
            return float(mean), float(std)
    return math.nan, math.nan


# --- the Wilcoxon signed-rank test, chosen explicitly -----------------------------------------

@dataclass(frozen=True)
class SignedRank:
    statistic: float      # T+: the sum of the (mid-)ranks of |d| over the positive d
    p: float
    method: str
    n: int                # non-zero differences: the ones ranked
    zeros: int            # zero differences dropped (Wilcoxon's original method)
    p_floor: float        # the smallest p reachable with this n and these ties, this side
    rank_biserial: float  # (T+ - T-) / (T+ + T-): negative when d tends negative


def signed_rank(d, alternative: str = "two-sided") -> SignedRank:
    """Wilcoxon signed-rank test of the differences `d` (alternative on d: "less" = d < 0).

    Zeros are dropped. Up to 50 non-zero differences the p-value is exact: the permutation
    distribution of T+ over all 2**n sign assignments, by dynamic programming over doubled
    mid-ranks (integers), which is exact with ties too. Above 50: normal approximation with
    tie and continuity correction."""
    from scipy import stats

    _check_options(alternative)
    d = np.asarray(d, dtype=float)
    nonzero = d[d != 0]
    n, zeros = nonzero.size, d.size - nonzero.size
    if n == 0:
        return SignedRank(0.0, 1.0, "no non-zero differences (p = 1)", 0, zeros, 1.0, math.nan)
    magnitude = np.abs(nonzero)
    r2 = np.rint(2 * stats.rankdata(magnitude)).astype(np.int64)  # doubled mid-ranks: integers
    t2, total = int(r2[nonzero > 0].sum()), int(r2.sum())
    tied = np.unique(magnitude, return_counts=True)[1]
    if n <= EXACT_MAX_N:
        counts = np.zeros(total + 1, dtype=np.int64)  # ways to reach each doubled T+
        counts[0] = 1
        top = 0
        for r in r2:
            counts[r:top + r + 1] += counts[:top + 1].copy()
            top += r
        at_most, at_least = np.cumsum(counts), np.cumsum(counts[::-1])[::-1]

        def p_of(t: int) -> float:
            return _sided(at_most[t] / 2.0 ** n, at_least[t] / 2.0 ** n, alternative)

        method = "exact" if (tied == 1).all() else "exact (permutation, tied ranks)"
    else:
        mean = total / 4  # in rank units: E[T+] = S / 2 with S = total / 2
        sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - float((tied ** 3 - tied).sum()) / 48)

        def p_of(t: int) -> float:
            shift = t / 2 - mean
            if alternative == "two-sided":
                return min(1.0, 2 * stats.norm.sf(max(abs(shift) - 0.5, 0.0) / sd))
            return _sided(stats.norm.cdf((shift + 0.5) / sd), stats.norm.sf((shift - 0.5) / sd), alternative)

        method = "normal approximation"
    floor = p_of(total if alternative == "greater" else 0)
    return SignedRank(t2 / 2, float(p_of(t2)), method, n, zeros, float(floor), (2 * t2 - total) / total)


def _sided(p_less: float, p_greater: float, alternative: str) -> float:
    if alternative == "less":
        return float(p_less)
    if alternative == "greater":
        return float(p_greater)
    return float(min(1.0, 2 * min(p_less, p_greater)))


# --- one paired comparison --------------------------------------------------------------------

def _t_power(n: int, dz: float, alpha: float, alternative: str) -> float:
    from scipy import stats

    df, nc = n - 1, dz * math.sqrt(n)
    if alternative == "less":
        return float(stats.nct.cdf(stats.t.ppf(alpha, df), df, nc))
    if alternative == "greater":
        return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, nc))
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(dz: float, alpha: float, alternative: str = "two-sided", power: float = 0.8) -> int | None:
    """The fewest seeds (pairs) for which a paired t-test reaches `power` at `alpha` when the
    true standardized mean difference is `dz`; None when dz is 0, undefined, or on the wrong side."""
    if not math.isfinite(dz) or dz == 0 or (alternative == "less" and dz > 0) \
            or (alternative == "greater" and dz < 0):
        return None
    high = 2  # power rises with n: double, then bisect
    while _t_power(high, dz, alpha, alternative) < power:
        high *= 2
        if high > 2 ** 40:
            return None
    low = high // 2
    if high == 2:
        return 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if _t_power(mid, dz, alpha, alternative) >= power else (mid, high)
    return high


def _paired(what: str, d: np.ndarray, pp: float, alternative: str, alpha: float) -> dict:
    """Every statistic of one set of per-seed differences (in score units; reported in pp)."""
    from scipy import stats

    n = d.size
    if n < 2:
        raise StatsError(f"{what}: only {n} seed(s) with ok runs on both sides, a test needs 2 or more",
                         hint="run more seeds (compare.seeds in the spec) or rerun the failed runs")
    mean, sd = np.float64(d.mean()), np.float64(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = stats.t.ppf(0.975, n - 1) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / se  # +-inf when every difference is the same non-zero value
    t_p = math.nan if np.isnan(t) else _sided(stats.t.cdf(t, n - 1), stats.t.sf(t, n - 1), alternative)
    w = signed_rank(d, alternative)
    dz = float(mean / sd) if sd > 0 else math.nan
    return {"n_pairs": n, "mean_diff_pp": mean * pp, "ci_low": (mean - half) * pp,
            "ci_high": (mean + half) * pp, "median_diff_pp": float(np.median(d)) * pp,
            "wins": int((d < 0).sum()), "ties": int((d == 0).sum()), "losses": int((d > 0).sum()),
            "t_stat": float(t), "t_p": t_p, "wilcoxon_stat": w.statistic, "wilcoxon_p": w.p,
            "wilcoxon_method": w.method, "zeros_dropped": w.zeros, "p_floor": w.p_floor,
            "d_z": dz, "rank_biserial": w.rank_biserial,
            "seeds_for_80_power": seeds_for_power(dz, alpha, alternative)}


def _paired_or_untestable(what: str, d: np.ndarray, pp: float, alternative: str, alpha: float,
                          untestable: list[str]) -> dict:
    """`_paired`, or a row of NaN statistics when too few seeds pair up (noted in `untestable`):
    one configuration that always diverged must not hide every other comparison."""
    try:
        return _paired(what, d, pp, alternative, alpha)
    except StatsError as exc:
        untestable.append(exc.message)
        return {"n_pairs": int(d.size), "wilcoxon_method": "not testable"}


def _frame(rows: list[dict], leading: list[str]) -> pd.DataFrame:
    """A table of paired statistics, with Holm over its rows' Wilcoxon p-values."""
    out = pd.DataFrame(rows, columns=[*leading, *PAIRED_COLUMNS])
    out["seeds_for_80_power"] = out["seeds_for_80_power"].astype("Int64")  # <NA>: undefined
    out["p_holm"] = holm(out["wilcoxon_p"].to_numpy(dtype=float))
    return out


# --- corrections ------------------------------------------------------------------------------

def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted)."""
    return _adjust(pvalues, lambda p, m: np.maximum.accumulate((m - np.arange(m)) * p))


def bh(pvalues) -> np.ndarray:
    """Benjamini-Hochberg q-values (NaN stays NaN and is not counted)."""
    return _adjust(pvalues, lambda p, m: np.minimum.accumulate((p * m / np.arange(1, m + 1))[::-1])[::-1])


def _adjust(pvalues, step) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    order = np.argsort(p[present], kind="stable")
    adjusted = np.empty(order.size)
    adjusted[order] = np.minimum(1.0, step(p[present][order], order.size))
    out[present] = adjusted
    return out


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
    return _comparisons(_prepare(runs), baseline, all_pairs, alternative, alpha, q_values)


def _comparisons(table: _Table, baseline, all_pairs, alternative, alpha, q_values) -> PairedComparisons:
    _check_options(alternative, alpha)
    if baseline not in table.configs:
        raise StatsError(f"baseline {baseline!r} is not in the runs; configurations: {', '.join(table.configs)}",
                         hint="pass one of those labels as the baseline")
    pairs = (list(combinations(table.configs, 2)) if all_pairs
             else [(c, baseline) for c in table.configs if c != baseline])
    rows, untestable = [], []
    for a, b in pairs:
        d = (table.scores[a] - table.scores[b]).dropna().to_numpy()
        rows.append({"a": a, "b": b, **_paired_or_untestable(f"{a} vs {b}", d, table.pp, alternative,
                                                             alpha, untestable)})
    if pairs and len(untestable) == len(pairs):
        raise StatsError(untestable[0] + (f" (and {len(untestable) - 1} more comparisons alike)"
                                          if len(untestable) > 1 else ""),
                         hint="run more seeds (compare.seeds in the spec) or rerun the failed runs")
    out = _frame(rows, ["a", "b"])
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
    return _friedman(_prepare(runs))


def _friedman(table: _Table) -> FriedmanResult:
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
    return _bn(_prepare(runs), reference_activation, all_pairs, alpha)


def _bn(table: _Table, reference_activation, all_pairs, alpha) -> BNInteraction:
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
                                **_paired_or_untestable(f"BN effect on {on} vs {off}", d, table.pp,
                                                        "two-sided", alpha, untestable)})
        names = list(effect)
        pairs = ([(a, reference_activation) for a in names if a != reference_activation]
                 if reference_activation in effect and not all_pairs else list(combinations(names, 2)))
        for a, b in pairs:
            d = (effect[a] - effect[b]).dropna().to_numpy()
            contrasts.append({"init": group, "a": a, "b": b,
                              **_paired_or_untestable(f"BN effect of {a} vs of {b}", d, table.pp,
                                                      "two-sided", alpha, untestable)})
    return BNInteraction(_frame(effects, ["init", "activation", "a", "b"]),
                         _frame(contrasts, ["init", "a", "b"]), untestable)


# --- learning speed and cost ------------------------------------------------------------------

@dataclass
class LearningSpeed:
    target: float         # test error fraction to reach
    target_source: str
    per_run: pd.DataFrame  # run_id, config, seed, iterations (NaN: never reached)
    table: pd.DataFrame    # config, n, n_reached, mean_iterations, median_iterations


def learning_speed(runs: pd.DataFrame, metrics: pd.DataFrame, target: float | None = None) -> LearningSpeed:
    """Iterations each ok run needed to reach `target` test error (the first evaluation at or
    below it). Default target: the worst configuration's mean final test error."""
    return _speed(_prepare(runs), runs, metrics, target)


def _speed(table: _Table, runs: pd.DataFrame, metrics: pd.DataFrame, target: float | None) -> LearningSpeed:
    ok = runs[runs["status"] == "ok"]
    source = "given"
    if target is None:
        means = ok.groupby("config")["test_error"].mean()
        target, source = float(means.max()), f"mean final test error of the worst configuration ({means.idxmax()})"
    hits = metrics[metrics["run_id"].isin(ok["run_id"]) & (metrics["test_error"] <= target)]
    first = hits.groupby("run_id")["iteration"].min()
    per_run = ok[["run_id", "config", "seed"]].reset_index(drop=True)
    per_run["iterations"] = per_run["run_id"].map(first).astype(float)
    grouped = per_run.groupby("config", sort=False)["iterations"]
    out = pd.DataFrame({"n": grouped.size(), "n_reached": grouped.count(), "mean_iterations": grouped.mean(),
                        "median_iterations": grouped.median()})
    out = out.reindex([c for c in table.configs if c in out.index]).rename_axis("config").reset_index()
    return LearningSpeed(float(target), source, per_run, out)


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Images/s per configuration (ok runs) and time per image relative to relu with the same
    BN and init (relu's images/s over the configuration's); NaN without such a relu."""
    return _cost(_prepare(runs), runs)


def _cost(table: _Table, runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"] == "ok"]
    speed = ok.groupby("config")["images_per_second"].mean().reindex(table.configs)
    info = table.info
    relu = {(bn, g): c for c, bn, g in zip(info.index, info["batchnorm"], info["group"])
            if info.loc[c, "activation"] == "relu"}
    relu_speed = [speed.get(relu.get((bn, g)), math.nan) for bn, g in zip(info["batchnorm"], info["group"])]
    return pd.DataFrame({"config": table.configs, "activation": info["activation"].to_numpy(),
                         "batchnorm": info["batchnorm"].to_numpy(),
                         "n": ok.groupby("config").size().reindex(table.configs, fill_value=0).to_numpy(),
                         "images_per_second": speed.to_numpy(),
                         "time_per_image_vs_relu": np.asarray(relu_speed) / speed.to_numpy()})


# --- methods text and compare -----------------------------------------------------------------

def methods_text(paired: PairedComparisons, descriptives: pd.DataFrame,
                 friedman: FriedmanResult | None = None, bn: BNInteraction | None = None) -> str:
    """A paragraph describing the statistics, to paste into a paper's methods section."""
    import scipy

    t = paired.table
    k = len(descriptives)
    left_out = int(descriptives["n_diverged"].sum() + descriptives["n_failed"].sum())
    parts = [f"Each configuration ({k} in all) was trained with {paired.n_seeds} seeds; a given seed gave "
             "every configuration the same initial weights, data order and augmentation, so runs were "
             "compared in pairs by seed."]
    parts.append(f"{left_out} runs that failed or diverged were excluded from the tests and are reported "
                 "separately." if left_out else "No run failed or diverged.")
    if friedman is not None:
        parts.append(f"An omnibus Friedman test (tie-corrected, with the Iman-Davenport F) compared the "
                     f"{friedman.k} configurations over the {friedman.n_blocks} seeds complete in all of them.")
    if len(t):
        who = ("every pair of configurations" if paired.baseline is None
               else f"each configuration with the baseline {paired.baseline}")
        side = {"two-sided": "two-sided", "less": "one-sided (alternative: a has lower error than b)",
                "greater": "one-sided (alternative: a has higher error than b)"}[paired.alternative]
        n_lo, n_hi = int(t["n_pairs"].min()), int(t["n_pairs"].max())
        pairs = f"{n_lo}" if n_lo == n_hi else f"{n_lo} to {n_hi}"
        units = "the number of misclassified test images" if paired.counts else "test error"
        parts.append(
            f"We compared {who} on the per-seed differences in {units} ({pairs} pairs per comparison) "
            f"with the {PRIMARY} test (primary; {side}) and the "
            f"paired t-test. Zero differences were dropped (Wilcoxon's method; {int(t['zeros_dropped'].sum())} "
            f"dropped in all). The Wilcoxon p-value was exact, from the permutation distribution over all "
            f"2^n sign assignments with mid-ranks for tied differences, for up to {EXACT_MAX_N} non-zero "
            f"pairs, and from the normal approximation with tie and continuity correction above that "
            f"(used here: {', '.join(sorted(set(t['wilcoxon_method'])))}). Wilcoxon p-values of the "
            f"{paired.family_size} comparisons were adjusted with Holm's method"
            + (" and reported as Benjamini-Hochberg q-values" if paired.q_values else "")
            + f"; significance at alpha = {paired.alpha:g}. The smallest attainable Wilcoxon p-value was "
            f"{t['p_floor'].min():.3g}. Effect sizes: the mean difference in percentage points with its 95 % "
            f"paired t-interval, d_z (mean over the standard deviation of the differences), and the "
            f"matched-pairs rank-biserial correlation; we also report the seeds a paired t-test would need "
            f"for 80 % power at alpha = {paired.alpha:g} for the observed d_z.")
    if bn is not None and len(bn.effects):
        parts.append("The effect of batch normalization was the per-seed difference with minus without it, "
                     "per activation; activations were compared by the per-seed difference of these "
                     "effects (two-sided Wilcoxon and paired t-tests, Holm-adjusted within each family).")
    parts.append(f"Software: Python {platform.python_version()}, NumPy {np.__version__}, "
                 f"SciPy {scipy.__version__}, pandas {pd.__version__}.")
    return " ".join(parts)


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


def compare(runs: pd.DataFrame, metrics: pd.DataFrame | None = None, *, baseline: str | None = None,
            all_pairs: bool = False, alternative: str = "two-sided", alpha: float = 0.05,
            q_values: bool = False, target: float | None = None,
            reference: dict[str, tuple[float, float]] | None = None) -> Comparison:
    """Every statistic of one spec's runs, with warnings a reader must see."""
    _check_options(alternative, alpha)
    table = _prepare(runs)
    if baseline is None:
        baseline = "relu" if "relu" in table.configs else table.configs[0]
    paired = _comparisons(table, baseline, all_pairs, alternative, alpha, q_values)
    warnings = _run_warnings(table)
    try:
        omnibus = _friedman(table) if len(table.configs) > 1 else None
    except StatsError as exc:
        omnibus = None
        warnings.append(f"Friedman test skipped: {exc.message}")
    warnings += [f"not tested: {message}" for message in paired.untestable]
    warnings += _floor_warnings(paired.table[paired.table["verdict"] != "not testable"], paired)
    bn = _bn(table, table.info.loc[baseline, "activation"], all_pairs, alpha)
    bn = bn if len(bn.effects) else None
    if bn is not None:
        warnings += [f"not tested: {message}" for message in bn.untestable]
    desc = _descriptives(table, runs, reference)
    speed = _speed(table, runs, metrics, target) if metrics is not None else None
    names = pd.unique(runs["spec_name"]) if "spec_name" in runs else []
    return Comparison(str(names[0]) if len(names) else None, baseline, table.configs, desc, omnibus, paired,
                      bn, speed, _cost(table, runs), methods_text(paired, desc, omnibus, bn), warnings)


def _run_warnings(table: _Table) -> list[str]:
    out = []
    bad = table.status.stack()
    bad = bad[bad.isin(["diverged", "failed"])]
    if len(bad):
        by = bad.groupby([bad.index.get_level_values("config"), bad]).size()
        out.append(f"{len(bad)} run(s) did not finish ok and are left out of the tests: "
                   + ", ".join(f"{c} {n} {s}" for (c, s), n in by.items()))
    if len(table.configs) < 2:
        out.append("only one configuration: nothing to compare")
    incomplete = table.status[~table.status.eq("ok").all(axis=1)]
    if len(incomplete):
        shown = [f"{seed} ({', '.join(f'{c} {s}' for c, s in row.items() if s != 'ok')})"
                 for seed, row in incomplete.head(10).iterrows()]
        more = f" and {len(incomplete) - 10} more" if len(incomplete) > 10 else ""
        out.append(f"{len(incomplete)} seed(s) lack an ok run in some configuration; comparisons use the "
                   f"seeds both sides have: " + "; ".join(shown) + more)
    return out


def _floor_warnings(t: pd.DataFrame, paired: PairedComparisons) -> list[str]:
    if not len(t):
        return []

    def seeds(row) -> str:
        n = row["n_pairs"] - row["zeros_dropped"]
        return f"{n} seeds" + (f" ({row['zeros_dropped']} zero differences dropped)" if row["zeros_dropped"] else "")

    strictest = paired.alpha / paired.family_size
    if (t["p_floor"] > strictest).all():
        row = t.loc[t["p_floor"].idxmin()]
        return [f"p-value floor {row['p_floor']:.2g} with {seeds(row)} is above the adjusted alpha "
                f"{strictest:.3g}: no comparison can reach significance"]
    own = t["p_floor"] > t["holm_alpha"]
    out = [f"{r['a']} vs {r['b']}: p-value floor {r['p_floor']:.2g} with {seeds(r)} is above its Holm "
           f"alpha {r['holm_alpha']:.3g}: it cannot reach significance" for _, r in t[own].iterrows()]
    after = t[t["floor_warning"] & ~own]
    if len(after):
        out.append(", ".join(f"{a} vs {b}" for a, b in zip(after["a"], after["b"]))
                   + ": cannot reach significance either, as Holm's procedure stops before them")
    return out
