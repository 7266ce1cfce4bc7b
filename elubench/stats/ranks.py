"""After a Friedman test over blocks (experiments): post-hoc tests on mean ranks, as Demšar
(2006, "Statistical comparisons of classifiers over multiple data sets", JMLR 7:1-30) sets out.

    rank_difference_test(values, a, b)   one pair: the rank-sum difference R_a - R_b, with
                                         Demšar's z and the exact permutation p
    nemenyi(mean_ranks, n, alpha)        Nemenyi's critical difference for all pairs, and the
                                         groups a critical-difference diagram joins (cliques)

`values` is an n x k array, rows = blocks, columns = treatments, lower = better (rank 1).

The z statistic is Demšar's, z = (R_a - R_b) / sqrt(k (k + 1) / (6 n)) on mean ranks, with a
normal p. With a handful of experiments as blocks that normal approximation is poor, so the p
elubench uses is exact where it can be: under the Friedman null every arrangement of a block's
(mid-)ranks over the treatments is equally likely, so in one block (r_a, r_b) is a uniformly
random ordered pair of distinct positions of that block's rank vector, blocks are independent,
and the distribution of the rank-sum difference is the convolution of the blocks' (on doubled
mid-ranks, integers: exact with ties). It is the same null and the same statistic as Demšar's
test; only the normal approximation is replaced by the exact distribution (up to
PERMUTATION_MAX_N blocks; above, z). The oracle in tests/stats/test_experiments.py enumerates every
arrangement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elubench.stats.omnibus import PERMUTATION_MAX_N
from elubench.stats.paired import sided


@dataclass(frozen=True)
class RankDifference:
    mean_rank_a: float
    mean_rank_b: float
    z: float  # Demšar's z on the mean-rank difference (a lower rank: z < 0)
    p_z: float  # its normal p, this side
    p_exact: float | None  # the permutation p, this side (None above PERMUTATION_MAX_N blocks)
    p: float  # the one a verdict uses: exact where computed, else p_z
    method: str


def doubled_ranks(values) -> np.ndarray:
    """Each block's mid-ranks doubled (integers), rank 1 = lowest value."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    return np.rint(2 * stats.rankdata(values, axis=1)).astype(np.int64)


def _difference_distribution(r2: np.ndarray, a: int, b: int) -> tuple[np.ndarray, int]:
    """P(sum over blocks of r_a - r_b = offset + i) for each i, on doubled ranks, under the
    Friedman null; returns (probabilities, offset)."""
    k = r2.shape[1]
    dist, offset = np.ones(1), 0
    for row in r2:
        diffs = (row[:, None] - row[None, :])[~np.eye(k, dtype=bool)]  # the k (k - 1) ordered pairs
        low = int(diffs.min())
        block = np.bincount(diffs - low) / diffs.size
        dist, offset = np.convolve(dist, block), offset + low
    return dist, offset


def rank_difference_test(values, a: int, b: int, alternative: str = "two-sided") -> RankDifference:
    """Test treatment a against b by their rank sums over the blocks of `values` (n x k, lower
    = better). "less": a ranks lower (better) than b."""
    from scipy import stats

    r2 = doubled_ranks(values)
    n, k = r2.shape
    mean_a, mean_b = r2[:, a].mean() / 2, r2[:, b].mean() / 2
    se = math.sqrt(k * (k + 1) / (6 * n))
    z = (mean_a - mean_b) / se
    p_z = sided(float(stats.norm.cdf(z)), float(stats.norm.sf(z)), alternative)
    if n > PERMUTATION_MAX_N:
        return RankDifference(
            mean_a,
            mean_b,
            z,
            p_z,
            None,
            p_z,
            f"normal approximation (Demšar's z): {n} blocks is above {PERMUTATION_MAX_N}",
        )
    dist, offset = _difference_distribution(r2, a, b)
    observed = int(r2[:, a].sum() - r2[:, b].sum()) - offset
    at_most, at_least = float(dist[: observed + 1].sum()), float(dist[observed:].sum())
    if alternative == "two-sided":
        # symmetric under H0 (a and b exchangeable), so the two-sided p is the mass at least as
        # far from 0 on either side
        centre = -offset
        distance = abs(observed - centre)
        values_at = np.abs(np.arange(dist.size) - centre)
        p_exact = min(1.0, float(dist[values_at >= distance].sum()))
    else:
        p_exact = sided(at_most, at_least, alternative)
    return RankDifference(
        mean_a,
        mean_b,
        z,
        p_z,
        p_exact,
        p_exact,
        "exact (permutation of each block's ranks, ties included)",
    )


# --- Nemenyi ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nemenyi:
    alpha: float
    q_alpha: float  # the studentized range quantile / sqrt(2) (Demšar's Table 5a)
    critical_difference: float
    cliques: list[list[str]]  # maximal groups whose mean ranks all lie within the CD, best first


def nemenyi(mean_ranks: dict[str, float], n: int, alpha: float = 0.05) -> Nemenyi:
    """Nemenyi's critical difference for k = len(mean_ranks) treatments over n blocks, and the
    cliques a critical-difference diagram draws: maximal runs of treatments, in mean-rank order,
    whose first and last differ by no more than the CD (not significantly different)."""
    from scipy import stats

    k = len(mean_ranks)
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    cd = q * math.sqrt(k * (k + 1) / (6 * n))
    order = sorted(mean_ranks, key=lambda name: (mean_ranks[name], name))
    runs: list[tuple[int, int]] = []
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and mean_ranks[order[j + 1]] - mean_ranks[order[i]] <= cd:
            j += 1
        if j > i and not any(s <= i and j <= e for s, e in runs):
            runs.append((i, j))
    return Nemenyi(alpha, q, cd, [order[s : e + 1] for s, e in runs])
