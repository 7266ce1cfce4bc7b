"""The Friedman omnibus test with a p-value that is valid at elubench's sizes (5-10 seeds, 2-8
configurations), where the chi-square and Iman-Davenport approximations are not.

    friedman_test(values)   values: n seeds (blocks) x k configurations (treatments), lower = better

The statistic is the usual tie-corrected Friedman chi-square (scipy.stats.friedmanchisquare's,
which also works here for k = 2). The p-value is, in this order of preference:

1. exact: the conditional permutation distribution under H0, in which every arrangement of each
   seed's observed (mid-)ranks over the configurations is equally likely, so ties are handled
   exactly. It is summed by dynamic programming over the vector of rank sums, one seed at a
   time, on doubled mid-ranks (integers), never by listing the (k!)^n arrangements. The
   statistic is a function of the rank-sum multiset, so states are kept sorted (up to k! fewer).
   Feasible when the programme forms at most `exact_limit` rank-sum vectors in all (states x
   arrangements of the next seed, summed over seeds): that count, not the number of states,
   sets time and memory, because a state set of a few thousand already costs k! = 40,320
   vectors per state at k = 8. The default, 4 million, is about 0.2 s on one CPU core and
   covers, without ties, n up to ~2,700 for k = 2, ~150 for k = 3, 31 for k = 4, 10 for k = 5,
   5 for k = 6 and 2 for k = 7..8. The programme gives up early, as soon as the work done plus
   the current states times the arrangements still to add exceeds the limit (a lower bound:
   the state set never shrinks), so an infeasible case costs little.
2. Monte Carlo, up to PERMUTATION_MAX_N seeds: `monte_carlo` draws of independent random
   arrangements within every seed, p = (1 + #{statistic >= observed}) / (B + 1), with its
   standard error sqrt(p (1 - p) / B); deterministic for `seed`. 100,000 draws take about
   20 ms at n = 10, k = 8.
3. the chi-square approximation with k - 1 df, above PERMUTATION_MAX_N seeds (50, as for the
   exact Wilcoxon test in elubench.stats.paired): there it is accurate at conventional levels,
   and unlike Monte Carlo, whose p cannot go below 1 / (B + 1), it resolves the very small p
   that many seeds give. The Iman-Davenport F is reported beside it (and beside every p, when
   defined), but p is the chi-square one: the two differ little at n > 50, and chi-square is
   defined for every outcome, F not.

Two degenerate outcomes get closed forms: every seed ties every configuration (chi-square 0,
p = 1), and every seed gives the configurations the same ranks (chi-square at its maximum
n (k - 1), where F is undefined; the exact p is the chance of that, (1/a)^(n-1) with a the
number of distinct arrangements of one seed's ranks). No field of the result is ever inf or NaN.

"At least as extreme" is decided on the integer sum of squared doubled rank sums, which orders
the permutation distribution exactly as the statistic does (the tie correction is the same in
every arrangement), so float round-off cannot flip a count: stricter than a relative tolerance.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cache
from itertools import permutations

import numpy as np

PERMUTATION_MAX_N = 50  # up to here a permutation p-value (exact or Monte Carlo); above, chi-square
EXACT_LIMIT = 4_000_000  # rank-sum vectors the exact programme may form, in all (about 0.2 s)
MONTE_CARLO = 100_000  # Monte Carlo draws: SE <= 0.0016, 0.0007 at p = 0.05
_CHUNK = 1 << 18  # rank-sum vectors formed at once (memory: a few MB)
_MC_TABLE_MAX = 40_320  # Monte Carlo draws rows of a seed's arrangement table up to 8! rows
_DENSE_MAX = 1 << 22  # states aggregated in a dense array up to here (32 MB), else by sorting


@dataclass(frozen=True)
class Friedman:
    statistic: float  # Friedman chi-square, tie-corrected
    p: float
    method: str  # how p was computed, and why that way, in words
    p_se: float | None  # Monte Carlo standard error of p, else None
    n: int  # blocks (seeds)
    k: int  # treatments (configurations)
    f_statistic: float | None  # Iman-Davenport F, None when undefined
    f_p: float | None
    degenerate: str | None  # in words, when the data are a degenerate case
    mean_ranks: tuple[float, ...]  # per configuration; rank 1 = lowest value (lowest error)


def friedman_test(
    values,
    *,
    exact_limit: int = EXACT_LIMIT,
    monte_carlo: int = MONTE_CARLO,
    seed: int = 0,
    block: str = "seed",
) -> Friedman:
    """Friedman test of `values`: an n x k array, rows = blocks (seeds), columns = treatments
    (configurations), lower = better, no NaN. See the module docstring for how p is computed.
    `block` names a block in the texts of the result (a seed; an experiment across experiments).
    Raises ValueError for fewer than 2 blocks or treatments, NaN, or bad options."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(
            f"the Friedman test needs a seeds x configurations table; got an array "
            f"of shape {values.shape}"
        )
    n, k = values.shape
    if n < 2 or k < 2:
        raise ValueError(
            f"the Friedman test needs 2 or more configurations and 2 or more seeds "
            f"complete in all of them; got {k} configuration(s) and {n} seed(s)"
        )
    if np.isnan(values).any():
        raise ValueError(
            "the Friedman test needs a complete table; it has NaN values "
            "(leave out the seeds with missing runs)"
        )
    if exact_limit < 0 or monte_carlo < 1:
        raise ValueError(
            f"exact_limit must be >= 0 and monte_carlo >= 1; got {exact_limit}, {monte_carlo}"
        )

    r2 = np.rint(2 * stats.rankdata(values, axis=1)).astype(np.int64)  # doubled mid-ranks: integers
    mean_ranks = tuple(float(x) for x in r2.mean(axis=0) / 2)
    # Centred doubled ranks: chi2 = (k-1) sum_j C_j^2 / sum_ij c_ij^2 (the tie-corrected form).
    centred = r2 - (k + 1)
    between = int((centred.sum(axis=0) ** 2).sum())  # sum_j C_j^2
    total = int((centred**2).sum())  # 0 only when every seed ties everything
    observed = int((r2.sum(axis=0) ** 2).sum())  # orders arrangements as chi2 does

    if total == 0:
        return Friedman(
            0.0,
            1.0,
            f"none needed: with every configuration tied in every {block}, "
            "nothing can be more extreme (p = 1)",
            None,
            n,
            k,
            0.0,
            1.0,
            f"every {block} ties every configuration (chi-square = 0)",
            mean_ranks,
        )
    chi2 = (k - 1) * between / total
    df = (k - 1, (k - 1) * (n - 1))
    gap = n * total - between  # >= 0 (Cauchy-Schwarz); 0 iff every seed has the same ranks
    if gap == 0:
        ways = _arrangement_count(r2[0])
        log10_p = -(n - 1) * math.log10(ways)
        p = 10.0**log10_p
        shown = f"{p:.3g}" if p > 0 else f"10^{log10_p:.1f}, below the smallest float"
        ties = "" if ways == math.factorial(k) else ", ties included"
        return Friedman(
            chi2,
            p,
            f"exact: the chance under H0 that all {n} {block}s give the same "
            f"ranks{ties}, (1/{ways})^{n - 1} = {shown}",
            None,
            n,
            k,
            None,
            None,
            f"every {block} ranks the configurations in the same order{ties} (chi-square "
            f"at its maximum n(k-1) = {n * (k - 1)}: Iman-Davenport F undefined)",
            mean_ranks,
        )
    f = (n - 1) * between / gap
    f_p = float(stats.f.sf(f, *df))

    tail = _exact_tail(r2, observed, exact_limit)
    if tail is not None:
        tied = any(len(set(row)) < k for row in r2.tolist())
        what = (
            f"all within-{block} arrangements of the observed mid-ranks, ties included"
            if tied
            else f"all ({k}!)^{n} within-{block} rank arrangements"
        )
        return Friedman(
            chi2,
            tail,
            f"exact ({what}, by dynamic programming over rank sums)",
            None,
            n,
            k,
            f,
            f_p,
            None,
            mean_ranks,
        )
    too_big = f"the exact distribution needs more than {exact_limit:,} rank-sum vectors"
    if n <= PERMUTATION_MAX_N:
        hits = _monte_carlo_hits(r2, observed, monte_carlo, seed)
        p = (1 + hits) / (monte_carlo + 1)
        se = math.sqrt(p * (1 - p) / monte_carlo)
        return Friedman(
            chi2,
            p,
            f"Monte Carlo ({monte_carlo:,} random within-{block} permutations, "
            f"seed {seed}, SE {se:.2g}): {too_big}",
            se,
            n,
            k,
            f,
            f_p,
            None,
            mean_ranks,
        )
    p = float(stats.chi2.sf(chi2, k - 1))
    return Friedman(
        chi2,
        p,
        f"chi-square approximation ({k - 1} df): {n} {block}s is above "
        f"{PERMUTATION_MAX_N}, where it is accurate, and {too_big}",
        None,
        n,
        k,
        f,
        f_p,
        None,
        mean_ranks,
    )


def _arrangement_count(row) -> int:
    """Distinct arrangements of one seed's ranks over the k configurations: k! / prod(t!)."""
    count = math.factorial(len(row))
    for t in Counter(np.asarray(row).tolist()).values():
        count //= math.factorial(t)
    return count


def _arrangements(row: tuple[int, ...]) -> np.ndarray:
    """The distinct arrangements of one seed's (doubled) ranks, one per row."""
    table = np.asarray(row, dtype=np.int64)[_permutations(len(row))]
    return table if len(set(row)) == len(row) else np.unique(table, axis=0)


@cache
def _permutations(k: int) -> np.ndarray:
    return np.array(list(permutations(range(k))), dtype=np.intp)


def _exact_tail(r2: np.ndarray, observed: int, limit: int) -> float | None:
    """P(sum_j S_j^2 >= observed) under H0, exactly; None when the programme would form more
    than `limit` rank-sum vectors: it stops as soon as the vectors formed so far, plus the
    current states times the arrangements of every seed still to add, exceed `limit`. That is
    a lower bound of the work, as the state set never shrinks: adding a seed's ranks in
    ascending order to each sorted state already gives distinct sorted states.

    S is the vector of doubled rank sums. Its null distribution is exchangeable over the
    configurations, so states are kept sorted: if X is exchangeable and Y independent and
    exchangeable, sort(X + Y) depends on X only through sort(X). A sorted state is stored as the
    rank of its first k - 1 entries (a multiset) in the combinatorial number system; the last
    entry is fixed by the others, as every state has the same total."""
    n, k = r2.shape
    rows = sorted((tuple(sorted(row)) for row in r2.tolist()), key=_arrangement_count, reverse=True)
    ways = [_arrangement_count(row) for row in rows]
    # From the most arrangements down: the first seed is one sorted state, at no cost, and the
    # seeds with many arrangements meet few states (2-3 times less work than the other way
    # round when seeds have ties).
    order = range(1, n)
    to_come = sum(ways[i] for i in order if ways[i] > 1)  # arrangements of the seeds still to add
    total = sum(rows[0])
    states = np.array(rows[0], dtype=np.int32)[:, None]  # k x states, each column sorted
    probs: np.ndarray = np.ones(1)  # float64 throughout (bincount with weights gives floats)
    low, high = min(rows[0]), max(rows[0])  # bounds of every state entry
    formed, tables, code = 0, {}, _MultisetCode(k - 1)
    for i in order:
        row, a = rows[i], ways[i]
        total += sum(row)
        if a == 1:  # every configuration tied: adds the same to every rank sum
            states, low, high = states + row[0], low + row[0], high + row[0]
            continue
        if formed + states.shape[1] * to_come > limit:
            return None
        formed, to_come = formed + states.shape[1] * a, to_come - a
        low, high = low + min(row), high + max(row)
        size = code.fit(high - low + 1)
        if size >= 2**62:
            return None
        if row not in tables:
            tables[row] = _arrangements(row).T.astype(np.int32)  # k x arrangements
        table = tables[row]
        dense = size <= min(_DENSE_MAX, max(1 << 16, 4 * states.shape[1] * a))
        keys: list[np.ndarray] = []
        masses: list[np.ndarray] = []  # sparse: each chunk's mass at its keys
        mass = np.zeros(size if dense else 0)  # dense: the mass at every key
        step = max(1, _CHUNK // a)
        for start in range(0, states.shape[1], step):
            part = states[:, start : start + step]
            columns = [(part[j][:, None] + table[j][None, :]).ravel() for j in range(k)]
            _sort_network(columns)
            key = code.rank([c - (low - j) for j, c in enumerate(columns[: k - 1])])
            weight = np.repeat(probs[start : start + step] / a, a)
            if dense:
                mass += np.bincount(key, weights=weight, minlength=size)
                continue
            uniq, inverse = np.unique(key, return_inverse=True)
            keys.append(uniq)
            masses.append(np.bincount(inverse, weights=weight, minlength=len(uniq)))
        if dense:
            key = np.flatnonzero(mass)
            probs = mass[key]
        else:
            key, inverse = np.unique(np.concatenate(keys), return_inverse=True)
            probs = np.bincount(inverse, weights=np.concatenate(masses), minlength=len(key))
        first = code.unrank(key) + low
        states = np.vstack([first, total - first.sum(axis=0)]).astype(np.int32)
    sums = states.astype(np.int64)
    tail = probs[(sums * sums).sum(axis=0) >= observed].sum()
    return float(min(1.0, tail))


class _MultisetCode:
    """Sorted vectors of m digits in [0, base) <-> 0 .. C(base + m - 1, m) - 1, the combinatorial
    number system: with b_j = d_j + j strictly increasing, rank = sum_j C(b_j, j + 1)."""

    def __init__(self, m: int):
        self.m, self.top = m, 0
        self.table: list[np.ndarray] = []

    def fit(self, base: int) -> int:
        """Make room for digits in [0, base); the number of codes."""
        if base + self.m - 1 > self.top:
            self.top = max(base + self.m - 1, 2 * self.top)
            # clipped at 2^62: entries above every rank in use only have to stay above it
            self.table = [
                np.array([min(math.comb(b, j + 1), 2**62) for b in range(self.top)], dtype=np.int64)
                for j in range(self.m)
            ]
        return math.comb(base + self.m - 1, self.m)

    def rank(self, shifted: list[np.ndarray]) -> np.ndarray:
        """`shifted`: b_j = d_j + j, the j-th digit plus j."""
        return sum(self.table[j][b] for j, b in enumerate(shifted))

    def unrank(self, key: np.ndarray) -> np.ndarray:
        digits = np.empty((self.m, key.size), dtype=np.int64)
        rest = key.copy()
        for j in range(self.m - 1, -1, -1):
            b = (
                np.searchsorted(self.table[j], rest, side="right") - 1
            )  # largest b: C(b, j+1) <= rest
            rest -= self.table[j][b]
            digits[j] = b - j
        return digits


def _sort_network(columns: list[np.ndarray]) -> None:
    """Sort element-wise across the arrays, in place (odd-even transposition: k rounds)."""
    k = len(columns)
    for r in range(k):
        for i in range(r % 2, k - 1, 2):
            a, b = columns[i], columns[i + 1]
            columns[i], columns[i + 1] = np.minimum(a, b), np.maximum(a, b)


def _monte_carlo_hits(r2: np.ndarray, observed: int, draws: int, seed: int) -> int:
    """How many of `draws` random arrangements (independent within every seed) have
    sum_j S_j^2 >= observed. The first varying seed stays fixed: relabelling the configurations
    leaves the statistic unchanged, so that conditions on nothing. A seed's arrangement is a
    random row of its table of distinct arrangements (all equally likely, as are its k!
    permutations), or a random permutation where the table would be large (k > 8)."""
    n, k = r2.shape
    rng = np.random.default_rng(seed)
    varying = [i for i, row in enumerate(r2.tolist()) if len(set(row)) > 1]
    fixed = np.delete(r2, varying[1:], axis=0).sum(axis=0)  # tied seeds and the first varying one
    shuffled = [tuple(sorted(row)) for row in r2[varying[1:]].tolist()]
    tables = {
        row: _arrangements(row) for row in set(shuffled) if _arrangement_count(row) <= _MC_TABLE_MAX
    }
    hits = 0
    step = max(1, _CHUNK // k)
    for begin in range(0, draws, step):
        size = min(step, draws - begin)
        sums = np.tile(fixed, (size, 1))
        for row in shuffled:
            if row in tables:
                sums += tables[row].take(rng.integers(0, len(tables[row]), size), axis=0)
            else:
                sums += rng.permuted(np.tile(np.array(row, dtype=np.int64), (size, 1)), axis=1)
        hits += int(((sums * sums).sum(axis=1) >= observed).sum())
    return hits
