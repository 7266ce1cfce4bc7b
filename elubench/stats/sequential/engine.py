"""The exact computation behind the sequential design, vectorized over many families at once
(one for `decide`, thousands for `simulate_design`).

The statistic. At look k, each new difference d_i gets the score q_i = round(grid * r_i /
(n + 1)), r_i the mid-rank of |d_i| among the n non-zero differences seen so far (0 for a zero
difference), and keeps it: S_k = sum of sign(d_i) q_i. At the first look this is the Wilcoxon
signed-rank statistic on a 0..grid scale; later differences are ranked when they arrive
("batch-sequential ranks", after Reynolds 1975, "A sequential signed-rank test for symmetry",
Ann. Statist. 3:382-400), because a score that never changes is what makes the joint law of
S_1, S_2, ... computable exactly.

The null law. Under symmetry each non-zero difference's sign is a fair coin given every
magnitude, so given the scores, S_1, S_2, ... is a random walk with steps +-q_i. Its law is
computed by dynamic programming over the integer sums, exactly (the probabilities are dyadic:
float64 holds them without error up to 52 seeds), and the boundary at each look is the
loosest whose crossing probability, with every path that crossed at an earlier look removed,
keeps the total at most alpha * spent(k) (an exact permutational group-sequential test:
Mehta, Patel, Senchaudhuri & Tsiatis 1994, Biometrics 50:1042-1053). The boundary at look k
depends on magnitudes up to look k only, so the error rate holds conditionally on the
magnitudes, hence for every symmetric null, and whenever one stops.

The family. A comparison's boundaries are computed at every level alpha / s, s = 1..m (m the
family's size). The family is tested by closed testing (Marcus, Peritz & Gabriel 1976) with
Bonferroni intersection tests: an intersection of s hypotheses is rejected when one of them
has crossed its alpha / s boundary at some look, so H_j is rejected when, for every s, j has
crossed at alpha / s or at least m - s + 1 comparisons have. Where boundaries grow with the
level this is Holm's procedure with alpha recycled across the looks (Maurer & Bretz 2013,
Statistics in Biopharmaceutical Research 5:311-320); the closure keeps it valid where the
discrete boundaries do not. Crossings only accumulate, so a rejection, once made, stays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elubench.stats.sequential.design import SequentialDesign

OPEN, REJECTED, FUTILE, EXHAUSTED = 0, 1, 2, 3  # a comparison's state codes
_NONE = np.iinfo(np.int64).max  # the boundary of a look that can reject nothing


@dataclass
class Paths:
    """What the design did to each comparison of each family: arrays over (family, comparison),
    and over (family, comparison, s) for the level alpha / s (s = 1..m at index s - 1)."""

    state: np.ndarray  # OPEN | REJECTED | FUTILE | EXHAUSTED
    look: np.ndarray  # the 0-based look it stopped at, or the last it reached (-1: none yet)
    decided_at: np.ndarray  # the look whose closed test rejected it (-1: not rejected)
    statistic: np.ndarray  # S at `look`, in score units
    z: np.ndarray  # S over its null standard deviation, at `look`
    p: np.ndarray  # the exact sign-flip p of S at `look` alone (nominal)
    futility: np.ndarray  # the futility bound on z at `look`
    holm: np.ndarray  # s of its Holm level alpha / s at `look` (m less the family's rejections)
    threshold: np.ndarray  # (.., s) the nominal p of the boundary at `look` (0: none)
    spent: np.ndarray  # (.., s) the null probability of crossing by `look`, exactly
    crossed_at: np.ndarray  # (.., s) the first look that crossed the alpha / s boundary (-1)
    crossed_sign: np.ndarray  # (.., s) the sign of S there
    crossed_p: np.ndarray  # (.., s) p there
    crossed_threshold: np.ndarray  # (.., s) the boundary's nominal p there
    crossed_statistic: np.ndarray  # (.., s) S there
    crossed_z: np.ndarray  # (.., s) z there


def batch_scores(d: np.ndarray, start: int, grid: int) -> np.ndarray:
    """The scores of columns start.. of `d` (rows: comparisons; columns: differences in seed
    order, all finite): round(grid * r / (n + 1)) with r the mid-rank of |d| among a row's
    non-zero differences and n their count, at least 1; 0 for a zero difference."""
    from scipy.stats import rankdata

    zeros = (d == 0).sum(axis=1, keepdims=True)
    # zeros tie at the bottom, so the others' ranks among the non-zero are theirs minus that
    ranks = rankdata(np.abs(d), axis=1) - zeros
    nonzero = d.shape[1] - zeros
    q = np.maximum(np.rint(grid * ranks / (nonzero + 1)), 1).astype(np.int64)
    return np.where(d != 0, q, 0)[:, start:]


def flip(dist: np.ndarray, q: np.ndarray, low: int, high: int) -> None:
    """Add a fair +-q (one per row) to the sums whose law `dist` holds (rows, levels, sums);
    every sum with mass lies in [low + G, high - G) before, in [low, high) after."""
    for step in np.unique(q):
        if step == 0:
            continue
        rows = np.flatnonzero(q == step)
        window = dist[rows, :, low:high]
        out = np.zeros_like(window)
        out[..., step:] += 0.5 * window[..., :-step]
        out[..., :-step] += 0.5 * window[..., step:]
        dist[rows, :, low:high] = out


def _tails(dist: np.ndarray, centre: int, reach: int, alternative: str) -> np.ndarray:
    """P(S in the rejection region of c) for c = 0..reach (rows, levels, reach + 1): the region
    is |S| >= c two-sided, S >= c for "greater", S <= -c for "less"."""
    upper = np.cumsum(dist[..., centre : centre + reach + 1][..., ::-1], axis=-1)[..., ::-1]
    lower = np.cumsum(dist[..., centre - reach : centre + 1], axis=-1)[..., ::-1]
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    both: np.ndarray = upper + lower
    both[..., 0] -= dist[..., centre]  # S = 0 was counted on both sides
    return both


def run(differences: np.ndarray, design: SequentialDesign) -> Paths:
    """Replay `design` from the first look on `differences` (families, comparisons, seeds in
    seed order; NaN after a comparison's last difference), every family of the same size m.
    Differences beyond the last look, or beyond the look a comparison stopped at, are unused."""
    families, m, _ = differences.shape
    n_max, grid, side = design.max_seeds, design.grid, design.alternative
    d = np.full((families * m, n_max), np.nan)
    width = min(differences.shape[2], n_max)
    d[:, :width] = differences.reshape(families * m, -1)[:, :width]
    available = np.where(np.isnan(d), 0, 1).cumprod(axis=1).sum(axis=1)
    levels = design.alpha / np.arange(1, m + 1)

    centre = grid * n_max
    shape, shape_s = (families * m,), (families * m, m)
    state = np.full(shape, OPEN)
    look, decided_at = np.full(shape, -1), np.full(shape, -1)
    statistic, z, p = np.zeros(shape), np.zeros(shape), np.ones(shape)
    futility, holm_at = np.zeros(shape), np.full(shape, m)
    threshold, spent_at = np.zeros(shape_s), np.zeros(shape_s)
    crossed_at, crossed_sign = np.full(shape_s, -1), np.zeros(shape_s, dtype=np.int64)
    crossed_p, crossed_threshold = np.ones(shape_s), np.zeros(shape_s)
    crossed_statistic, crossed_z = np.zeros(shape_s), np.zeros(shape_s)

    alive = np.arange(families * m)  # rows still being tested
    # the null law of S per row: levels alpha / s with their boundaries' paths removed, and a
    # last one with nothing removed (the look's own, nominal p-values)
    dist = np.zeros((alive.size, m + 1, 2 * centre + 1))
    dist[:, :, centre] = 1.0
    total, squares = np.zeros(alive.size, dtype=np.int64), np.zeros(alive.size)
    spent = np.zeros((alive.size, m))
    seen = 0
    for k, n in enumerate(design.looks):
        ready = available[alive] >= n  # the others wait, open, for differences to come
        if not ready.all():
            alive, dist, total = alive[ready], dist[ready], total[ready]
            squares, spent = squares[ready], spent[ready]
        if alive.size == 0:
            break
        scores = batch_scores(d[alive, :n], seen, grid)
        for column in range(scores.shape[1]):
            reach = grid * (seen + column + 1)
            flip(dist, scores[:, column], centre - reach, centre + reach + 1)
            total += np.sign(d[alive, seen + column]).astype(np.int64) * scores[:, column]
        squares += (scores.astype(float) ** 2).sum(axis=1)
        seen, reach = n, grid * n

        tails = _tails(dist, centre, reach, side)  # (rows, m + 1, reach + 1)
        budget = levels * design.spent(k) - spent
        fits = tails[:, :m, 1:] <= budget[:, :, None]  # c = 1..reach: never reject S = 0
        bound = np.where(fits.any(axis=2), fits.argmax(axis=2) + 1, _NONE)
        rows = np.arange(alive.size)[:, None]
        reached = np.minimum(bound, reach)
        spent += np.where(bound <= reach, tails[rows, np.arange(m), reached], 0.0)
        sums = np.abs(np.arange(-reach, reach + 1))
        if side == "greater":
            sums = np.arange(-reach, reach + 1)
        elif side == "less":
            sums = -np.arange(-reach, reach + 1)
        window = dist[:, :m, centre - reach : centre + reach + 1]  # a view: removes in place
        window *= sums[None, None, :] < bound[:, :, None]

        favour = {"two-sided": np.abs(total), "greater": total, "less": -total}[side]
        nominal = tails[:, m, :]  # the unremoved law: P(region of c) for c = 0..reach
        row_p = np.where(
            favour >= 1,
            nominal[rows[:, 0], np.clip(favour, 0, reach)],
            _at_most_favour(dist[:, m], centre, favour, side),
        )
        row_threshold = np.where(bound <= reach, nominal[rows, reached], 0.0)
        row_z = np.where(squares > 0, total / np.sqrt(np.maximum(squares, 1e-300)), 0.0)
        crossing = favour[:, None] >= bound

        look[alive], statistic[alive], z[alive], p[alive] = k, total, row_z, row_p
        threshold[alive], spent_at[alive] = row_threshold, spent
        first = crossing & (crossed_at[alive] < 0)
        for target, value in (
            (crossed_at, np.full(first.shape, k)),
            (crossed_sign, np.sign(total)[:, None] + 0 * first),
            (crossed_p, row_p[:, None] + 0 * first),
            (crossed_threshold, row_threshold),
            (crossed_statistic, total[:, None] + 0.0 * first),
            (crossed_z, row_z[:, None] + 0.0 * first),
        ):
            target[alive] = np.where(first, value, target[alive])

        rejected = closed_test(crossed_at.reshape(families, m, m) >= 0).reshape(-1)
        newly = rejected & (state != REJECTED)
        decided_at[newly] = k
        state[newly] = REJECTED
        live = state[alive] == OPEN
        z_favour = {"two-sided": np.abs(row_z), "greater": row_z, "less": -row_z}[side]
        last = k == len(design.looks) - 1
        holm = m - (state == REJECTED).reshape(families, m).sum(axis=1)  # alpha / holm now
        bound_z = design.futility_bound(k, holm[alive // m])
        futility[alive], holm_at[alive] = (0.0 if last else bound_z), holm[alive // m]
        stop = live & (z_favour < bound_z) if not last else live
        state[alive[stop]] = EXHAUSTED if last else FUTILE
        keep = state[alive] == OPEN
        if not keep.all():
            alive, dist, total = alive[keep], dist[keep], total[keep]
            squares, spent = squares[keep], spent[keep]

    return Paths(
        state.reshape(families, m),
        look.reshape(families, m),
        decided_at.reshape(families, m),
        statistic.reshape(families, m),
        z.reshape(families, m),
        p.reshape(families, m),
        futility.reshape(families, m),
        holm_at.reshape(families, m),
        threshold.reshape(families, m, m),
        spent_at.reshape(families, m, m),
        crossed_at.reshape(families, m, m),
        crossed_sign.reshape(families, m, m),
        crossed_p.reshape(families, m, m),
        crossed_threshold.reshape(families, m, m),
        crossed_statistic.reshape(families, m, m),
        crossed_z.reshape(families, m, m),
    )


def _at_most_favour(law: np.ndarray, centre: int, favour: np.ndarray, side: str) -> np.ndarray:
    """One-sided p where S points away from the alternative (favour <= 0): P(S' >= S) for
    "greater", P(S' <= S) for "less"; 1 two-sided (S = 0)."""
    if side == "two-sided":
        return np.ones(favour.shape)
    from_top = np.cumsum(law[:, ::-1], axis=1)[:, ::-1]  # P(S' >= x) at index centre + x
    from_bottom = np.cumsum(law, axis=1)  # P(S' <= x) at index centre + x
    rows = np.arange(law.shape[0])
    s = favour if side == "greater" else -favour  # back to S
    index = np.clip(centre + s, 0, law.shape[1] - 1)
    chosen: np.ndarray = (from_top if side == "greater" else from_bottom)[rows, index]
    return chosen


def closed_test(crossed: np.ndarray) -> np.ndarray:
    """Closed testing with Bonferroni intersection tests, from crossed (families, m, s): has
    comparison j crossed its alpha / s boundary (s = 1..m at index s - 1) at some look? H_j is
    rejected when every intersection containing it is: for each s, j crossed at alpha / s or
    at least m - s + 1 comparisons did (then every s-subset holding j holds one of them)."""
    m = crossed.shape[1]
    count = crossed.sum(axis=1, keepdims=True)  # (families, 1, m)
    enough = count >= (m - np.arange(m))  # m - s + 1 for s = 1..m
    rejected: np.ndarray = (crossed | enough).all(axis=2)
    return rejected
