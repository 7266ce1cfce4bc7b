"""One set of per-seed differences: the Wilcoxon signed-rank test (exact, chosen explicitly),
the paired t-test, effect sizes, power, and the Holm and Benjamini-Hochberg corrections."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elubench.core.errors import StatsError
from elubench.core.limits import MAX_EXACT_PAIRS
from elubench.stats.verdicts import check_options

PRIMARY = "Wilcoxon signed-rank"
EXACT_MAX_N = MAX_EXACT_PAIRS  # exact null distribution up to here (2**n sign assignments)
PAIRED_COLUMNS = [
    "n_pairs",
    "mean_diff_pp",
    "ci_low",
    "ci_high",
    "median_diff_pp",
    "wins",
    "ties",
    "losses",
    "t_stat",
    "t_p",
    "wilcoxon_stat",
    "wilcoxon_p",
    "wilcoxon_method",
    "zeros_dropped",
    "p_floor",
    "d_z",
    "rank_biserial",
    "notes",
]


# --- the Wilcoxon signed-rank test, chosen explicitly -----------------------------------------


@dataclass(frozen=True)
class SignedRank:
    statistic: float  # T+: the sum of the (mid-)ranks of |d| over the positive d
    p: float
    method: str
    n: int  # non-zero differences: the ones ranked
    zeros: int  # zero differences dropped (Wilcoxon's original method)
    p_floor: float  # the smallest p reachable with this n and these ties, this side
    rank_biserial: float  # (T+ - T-) / (T+ + T-): negative when d tends negative


def signed_rank(d, alternative: str = "two-sided") -> SignedRank:
    """Wilcoxon signed-rank test of the differences `d` (alternative on d: "less" = d < 0).

    Zeros are dropped. Up to 50 non-zero differences the p-value is exact: the permutation
    distribution of T+ over all 2**n sign assignments, by dynamic programming over doubled
    mid-ranks (integers), which is exact with ties too. Above 50: normal approximation with
    tie and continuity correction."""
    from scipy import stats

    check_options(alternative)
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
            counts[r : top + r + 1] += counts[: top + 1].copy()
            top += r
        at_most, at_least = np.cumsum(counts), np.cumsum(counts[::-1])[::-1]

        def p_of(t: int) -> float:
            return sided(at_most[t] / 2.0**n, at_least[t] / 2.0**n, alternative)

        method = "exact" if (tied == 1).all() else "exact (permutation, tied ranks)"
    else:
        mean = total / 4  # in rank units: E[T+] = S / 2 with S = total / 2
        sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - float((tied**3 - tied).sum()) / 48)

        def p_of(t: int) -> float:
            shift = t / 2 - mean
            if alternative == "two-sided":
                return min(1.0, 2 * stats.norm.sf(max(abs(shift) - 0.5, 0.0) / sd))
            return sided(
                stats.norm.cdf((shift + 0.5) / sd), stats.norm.sf((shift - 0.5) / sd), alternative
            )

        method = "normal approximation"
    floor = p_of(total if alternative == "greater" else 0)
    return SignedRank(
        t2 / 2, float(p_of(t2)), method, n, zeros, float(floor), (2 * t2 - total) / total
    )


def sided(p_less: float, p_greater: float, alternative: str) -> float:
    if alternative == "less":
        return float(p_less)
    if alternative == "greater":
        return float(p_greater)
    return float(min(1.0, 2 * min(p_less, p_greater)))


# --- power and the seeds the primary test needs ------------------------------------------------

# The Wilcoxon test's asymptotic relative efficiency against the t-test is at least 0.864 for
# every continuous distribution of the differences (Hodges & Lehmann 1956; 3/pi = 0.955 for
# normal ones, above 1 for heavy tails). Dividing the t-test's sample size by the lower bound
# gives enough seeds for the Wilcoxon test whatever the shape, asymptotically.
WILCOXON_ARE_BOUND = 0.864


def _t_power(n: int, dz: float, alpha: float, alternative: str) -> float:
    from scipy import stats

    df, nc = n - 1, dz * math.sqrt(n)
    if alternative == "less":
        return float(stats.nct.cdf(stats.t.ppf(alpha, df), df, nc))
    if alternative == "greater":
        return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, nc))
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(
    dz: float, alpha: float, alternative: str = "two-sided", power: float = 0.8
) -> int | None:
    """The fewest seeds (pairs) for which a paired t-test reaches `power` at `alpha` when the
    true standardized mean difference is `dz`; None when dz is 0, undefined, or on the wrong side."""
    if (
        not math.isfinite(dz)
        or dz == 0
        or (alternative == "less" and dz > 0)
        or (alternative == "greater" and dz < 0)
    ):
        return None
    high = 2  # power rises with n: double, then bisect
    while _t_power(high, dz, alpha, alternative) < power:
        high *= 2
        if high > 2**40:
            return None
    low = high // 2
    if high == 2:
        return 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if _t_power(mid, dz, alpha, alternative) >= power else (mid, high)
    return high


def floor_p(n: int, alternative: str = "two-sided") -> float:
    """The smallest exact Wilcoxon p with n non-zero, untied differences: every sign alike."""
    return min(1.0, (1.0 if alternative != "two-sided" else 2.0) / 2.0**n)


def seeds_to_reach(alpha: float, alternative: str = "two-sided") -> int:
    """The fewest seeds whose Wilcoxon floor is at or below `alpha` (no ties, no zeros)."""
    n = 1
    while floor_p(n, alternative) > alpha:
        n += 1
    return n


def wilcoxon_seeds(
    dz: float, alpha: float, alternative: str = "two-sided", power: float = 0.8
) -> int | None:
    """Seeds for the primary (Wilcoxon) test to reach `power` at `alpha` for a true d_z: the
    paired t-test's number over the efficiency bound, and never fewer than the smallest n whose
    floor reaches `alpha`. None where the t-test's number is undefined (see seeds_for_power)."""
    n_t = seeds_for_power(dz, alpha, alternative, power)
    if n_t is None:
        return None
    return max(math.ceil(n_t / WILCOXON_ARE_BOUND), seeds_to_reach(alpha, alternative))


# --- one paired comparison --------------------------------------------------------------------


def paired_stats(what: str, d: np.ndarray, pp: float, alternative: str) -> dict:
    """Every statistic of one set of per-seed differences (in score units; reported in pp).
    `notes` says in words why a number is missing (null in JSON)."""
    from scipy import stats

    n = d.size
    if n < 2:
        raise StatsError(
            f"{what}: {n} paired seed{'s' * (n != 1)} (an ok run on both sides), a test needs 2 "
            "or more",
            hint="run more seeds (compare.seeds in the spec) or rerun the failed runs",
        )
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    notes = []
    if sd > 0:
        two_sided = stats.ttest_1samp(d, 0.0)
        interval = two_sided.confidence_interval(0.95)
        low, high = float(interval.low), float(interval.high)
        t = float(two_sided.statistic)
        t_p = float(stats.ttest_1samp(d, 0.0, alternative=alternative).pvalue)
        dz = mean / sd
    else:  # every difference the same: no spread, so no t statistic, t p-value or d_z
        low = high = mean
        t = t_p = dz = math.nan
        notes.append(
            f"every seed's difference is {mean * pp:+.4g} pp: t, its p-value and d_z "
            "are undefined (no spread)"
        )
    w = signed_rank(d, alternative)
    return {
        "n_pairs": n,
        "mean_diff_pp": mean * pp,
        "ci_low": low * pp,
        "ci_high": high * pp,
        "median_diff_pp": float(np.median(d)) * pp,
        "wins": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
        "losses": int((d > 0).sum()),
        "t_stat": t,
        "t_p": t_p,
        "wilcoxon_stat": w.statistic,
        "wilcoxon_p": w.p,
        "wilcoxon_method": w.method,
        "zeros_dropped": w.zeros,
        "p_floor": w.p_floor,
        "d_z": dz,
        "rank_biserial": w.rank_biserial,
        "notes": notes,
    }


def paired_or_untestable(
    what: str, d: np.ndarray, pp: float, alternative: str, untestable: list[str]
) -> dict:
    """`paired_stats`, or a row of missing statistics when too few seeds pair up (noted in
    `untestable`): one configuration that always diverged must not hide every other comparison."""
    try:
        return paired_stats(what, d, pp, alternative)
    except StatsError as exc:
        untestable.append(exc.message)
        return {
            "n_pairs": int(d.size),
            "wilcoxon_method": "not testable",
            "notes": [f"not tested: {exc.message.removeprefix(what + ': ')}"],
        }


# --- corrections ------------------------------------------------------------------------------


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted). scipy has no
    Holm; tests/stats/test_stats.py checks this against statsmodels."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    m = int(present.sum())
    order = np.argsort(p[present], kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[present][order]))
    out[present] = adjusted
    return out


def bh(pvalues) -> np.ndarray:
    """Benjamini-Hochberg q-values (scipy's false_discovery_control; NaN stays NaN and is not
    counted)."""
    from scipy import stats

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    if present.any():
        out[present] = stats.false_discovery_control(p[present], method="bh")
    return out


def best_holm(floors) -> np.ndarray:
    """For each comparison of a Holm family, the smallest Holm-adjusted p it could reach by any
    outcome of the data, given every comparison's p-value floor (the smallest p its test can
    give). Above alpha, no data could make it significant.

    A comparison's adjusted p at sorted place j is max over i <= j of (m - i) p_(i). Placing k
    others before it (best: those with the k smallest floors, each at its floor) lowers its own
    multiplier to m - k but adds their terms, and its p can be no smaller than theirs."""
    floors = np.asarray(floors, dtype=float)
    m = floors.size
    best = np.empty(m)
    for c in range(m):
        others = np.sort(np.delete(floors, c))
        value = m * floors[c]
        ahead = 0.0  # the largest (m - i) * floor among those placed ahead
        for k, g in enumerate(others, start=1):
            ahead = max(ahead, (m - (k - 1)) * g)
            value = min(value, max(ahead, (m - k) * max(floors[c], g)))
        best[c] = min(1.0, value)
    return best
