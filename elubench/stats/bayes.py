"""The Bayesian signed-rank test: how probable is a practically relevant difference?

`bayes_signed_rank(d, rope)` takes the per-seed paired differences d = err(a) - err(b)
(negative: a made fewer errors) and a region of practical equivalence (ROPE) [-rope, rope] in
the same units (elubench passes percentage points), and returns three posterior probabilities:

    p_left   a is practically better: the difference lies below -rope (a has LOWER error)
    p_rope   the two are practically equivalent: the difference lies inside [-rope, rope]
    p_right  b is practically better: the difference lies above +rope

The model (Benavoli, Mangili, Corani, Zaffalon, Ruggeri 2014, "A Bayesian Wilcoxon signed-rank
test based on the Dirichlet process", ICML; the tutorial: Benavoli, Corani, Demsar, Zaffalon
2017, "Time for a change: a tutorial for comparing multiple classifiers through Bayesian
analysis", JMLR 18(77)) puts a Dirichlet-process prior on the distribution of the differences,
with its base measure a single pseudo-observation at 0 of strength `prior` (0.5 by default: a
weak prior that leans neither way). Its posterior is again a Dirichlet process; a draw from it
weights the n observed differences and the pseudo-observation with Dirichlet(prior, 1, ..., 1)
weights w. As in the signed-rank statistic, the test looks at the pairs (i, j), i and j over
the n + 1 points, i = j and both orders included: the mass of a region is the total weight
w_i * w_j of the pairs whose mean (d_i + d_j) / 2 falls in it, so

    left  = sum of w_i w_j over the pairs with d_i + d_j < -2 rope
    right = sum of w_i w_j over the pairs with d_i + d_j > +2 rope
    rope  = 1 - left - right

and a pair whose sum lies exactly on an edge (d_i + d_j = +-2 rope) counts half to each side,
as the Heaviside step H(0) = 1/2 of the paper. p_left, p_rope and p_right are the fractions of
the posterior draws in which left, rope or right is the largest of the three: "in what share
of the plausible worlds is a practically better". Read them together: p_left = 0.97 says a is
practically better with probability 0.97; p_rope = 0.9 says the difference is, with
probability 0.9, too small to matter, which no p-value can say; and when none of the three is
large the seeds are too few to decide.

Why beside the Wilcoxon test: a p-value is the probability of data at least this extreme if
there were no difference at all. It says nothing about how large or how probable a difference
is, and with enough seeds any tiny, irrelevant difference becomes "significant". The Bayesian
test answers the question a reader asks ("how probable is it that a is better by more than
rope?"), and it can also say "equivalent", which the frequentist test never can.

It follows `baycomp` (Corani, Benavoli, Demsar; `baycomp.SignedRankTest`, also behind
`baycomp.two_on_multiple` for one-dimensional scores) and agrees with it within Monte Carlo
error (tests/stats/test_bayes.py); call baycomp with x = zeros and y = d, since it takes the
difference y - x. The differences:

- Speed: baycomp forms the (n + 1) x (n + 1) matrix of pair weights for every posterior draw,
  O(n^2 * samples). Here the points are sorted once; then for a fixed i the j with
  d_i + d_j > 2 rope form a suffix, so a region's mass is sum_i w_i * suffix_sum(w)[first such
  j]: O(n * samples), in numpy over a chunk of draws at a time (points x draws, the suffix sums
  built row by row). The suffix starts come from the same floating-point sums d_i + d_j that
  baycomp compares with 2 rope, so edge cases are decided the same way.
- Draws: the Dirichlet weights as Gamma draws (exponential for the observations, whose weight
  is 1; Gamma(prior) for the pseudo-observation), left unnormalized, since which mass is the
  largest does not depend on the scale; from numpy.random.default_rng(seed), one weight per
  point in sorted order. So a seed gives the same result every time and for any order of d,
  but not baycomp's numbers for the same seed (baycomp uses RandomState, one draw at a time),
  and -d gives p_left and p_right swapped within Monte Carlo error, not exactly.
- Ties between regions: as baycomp (numpy.argmax), a draw in which two regions have the same
  largest mass counts for the first of left, rope, right. With continuous weights an exact tie
  needs degenerate data, and the one case where it happens is handled apart: d all zero with
  rope = 0, where left = right = 1/2 in every draw. This returns p_left = p_right = 0.5;
  baycomp there returns whatever the rounding of 1 - right against right gives (about
  0.71 / 0 / 0.29 with baycomp 1.0.3).
- rope = 0, as in baycomp: there is no equivalence region, p_rope is 0 whatever the data, and
  a pair with d_i + d_j = 0 (zero differences included) counts half left and half right.
  (baycomp's SignedRankTest.probs then returns only (p_left, p_right); here p_rope = 0.)
- Input: d must be finite (NaN or inf is a ValueError: drop missing pairs first) and so must
  rope; baycomp accepts NaN and counts every pair that involves it as equivalent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CHUNK_ELEMENTS = 1 << 20  # points x posterior draws per chunk: a few 8 MB float64 arrays


@dataclass(frozen=True)
class BayesSignedRank:
    p_left: (
        float  # posterior probability that a is practically better (d < -rope: a has LOWER error)
    )
    p_rope: float  # ... that the two are practically equivalent (|d| <= rope)
    p_right: float  # ... that b is practically better (d > rope)
    rope: float
    samples: int
    prior: float  # strength of the Dirichlet-process prior (pseudo-observation at 0)
    method: str  # one line naming the method


def bayes_signed_rank(
    d, rope: float, *, samples: int = 50_000, prior: float = 0.5, seed: int = 0
) -> BayesSignedRank:
    """Bayesian signed-rank test of the paired differences `d` = err(a) - err(b) with the
    region of practical equivalence [-rope, rope] (same units as d): the posterior
    probabilities that a is practically better (p_left), that the two are equivalent (p_rope),
    and that b is practically better (p_right), from `samples` posterior draws under a
    Dirichlet-process prior of strength `prior` at 0. Deterministic for a given `seed`, and
    independent of the order of d. See the module docstring for the model and for how it
    relates to baycomp."""
    d, rope, samples, prior = _checked(d, rope, samples, prior)
    method = (
        f"Bayesian signed-rank (Benavoli et al. 2017), Dirichlet process prior {prior:g} at 0, "
        f"{samples:,} posterior samples, ROPE ±{rope:g}"
    )
    if rope == 0 and not d.any():  # every pair sum is 0: left = right = 1/2 in every draw
        return BayesSignedRank(0.5, 0.0, 0.5, rope, samples, prior, method)
    x = np.sort(np.concatenate(([0.0], d)), kind="stable")
    split = _split(x, rope)
    pseudo = int(np.searchsorted(x, 0.0, side="left"))  # the pseudo-observation: first of the 0s
    rng = np.random.default_rng(seed)
    wins = np.zeros(3, dtype=np.int64)
    chunk = min(samples, max(1, CHUNK_ELEMENTS // x.size))
    work = _Workspace(x.size, chunk)
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        weights = work.weights(size)
        rng.standard_exponential(out=weights)  # Gamma(1): the observations' weight 1
        weights[pseudo] = rng.standard_gamma(prior, size) if prior > 0 else 0.0
        wins += np.bincount(_masses_sorted(split, weights, work).argmax(axis=0), minlength=3)
    p_left, p_rope, p_right = (wins / samples).tolist()
    return BayesSignedRank(p_left, p_rope, p_right, rope, samples, prior, method)


def _checked(d, rope, samples, prior) -> tuple[np.ndarray, float, int, float]:
    try:
        d = np.asarray(d, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"d must be a sequence of numbers (per-seed differences): {exc}") from None
    if d.ndim != 1:
        raise ValueError(
            f"d must be one-dimensional (one difference per seed), got shape {d.shape}"
        )
    if d.size == 0:
        raise ValueError(
            "d is empty: the Bayesian signed-rank test needs at least 1 paired difference"
        )
    if np.isnan(d).any():
        raise ValueError(
            f"d has {int(np.isnan(d).sum())} NaN value(s): drop the seeds without a pair "
            "before the test"
        )
    if np.isinf(d).any():
        raise ValueError("d has infinite value(s): the differences must be finite")
    rope = _non_negative("rope", rope, "the half-width of [-rope, rope]")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    prior = _non_negative("prior", prior, "the pseudo-observation's weight")
    return d, rope, int(samples), prior


def _non_negative(name: str, value, meaning: str) -> float:
    """`value` as a finite float >= 0, or a ValueError naming `name`."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0 ({meaning}), got {value}")
    return value


def _split(x: np.ndarray, rope: float) -> tuple:
    """What the masses need from the sorted points `x` alone, computed once. For the region
    above the ROPE and for "not below" it, the start of a suffix per row i: {j : x_i + x_j >
    2 rope} and {j : x_i + x_j >= -2 rope}; and for the rows where some pairs lie exactly on
    the edge (x_i + x_j = +-2 rope), the start of the other suffix, so that those pairs can be
    counted half. The sums are the floating-point sums baycomp compares; they do not decrease
    along a row, since x is sorted, so each set is a suffix."""
    pair = x[:, None] + x[None, :]
    t = 2 * rope
    above = (pair <= t).sum(axis=1), (pair < t).sum(axis=1)
    not_below = (pair < -t).sum(axis=1), (pair <= -t).sum(axis=1)
    sides = []
    for first, other in (above, not_below):
        # first does not increase with i: rows whose suffix is empty (they add nothing) come
        # first, rows whose suffix is everything (they add w_i * total) last
        lo, hi = int((first == x.size).sum()), x.size - int((first == 0).sum())
        edge = np.flatnonzero(first != other)
        sides.append((first, lo, hi, edge, first[edge], other[edge]))
    return rope, sides


class _Workspace:
    """Buffers for one call, reused for every chunk of draws (no fresh 8 MB arrays per chunk)."""

    def __init__(self, points: int, chunk: int):
        self.points = points
        self.flat = np.empty((4, (points + 1) * chunk))

    def weights(self, size: int) -> np.ndarray:
        return self.flat[0, : self.points * size].reshape(self.points, size)

    def buffer(self, which: int, rows: int, size: int) -> np.ndarray:
        return self.flat[which, : rows * size].reshape(rows, size)


def _masses_sorted(split: tuple, weights: np.ndarray, work: _Workspace | None = None) -> np.ndarray:
    """The (left, rope, right) masses, unnormalized, 3 x draws, for `weights` (points x draws,
    the points in sorted order): the total w_i w_j over the pairs (i, j) whose sum is below
    -2 rope, within [-2 rope, 2 rope], above 2 rope (a pair on an edge counting half each
    side). With sorted points, the sum of w_j over a suffix is a suffix sum of w, so a mass is
    sum_i w_i * suffix_sum(w)[start_i]: O(points x draws)."""
    rope, (above, not_below) = split
    m, size = weights.shape
    work = work or _Workspace(m, size)
    suffix = work.buffer(1, m + 1, size)  # suffix[k] = sum of weights[k:]
    suffix[m] = 0.0
    for k in range(m - 1, -1, -1):  # row by row: vectorized over the draws, unlike np.cumsum
        np.add(suffix[k + 1], weights[k], out=suffix[k])
    total = suffix[0]
    inner = work.buffer(2, m, size)

    def mass(starts: tuple) -> np.ndarray:
        first, lo, hi, edge_rows, edge_first, edge_other = starts
        active = inner[: hi - lo]
        np.take(
            suffix, first[lo:hi], axis=0, out=active, mode="clip"
        )  # row i: the w_j paired with i
        out = np.einsum("ij,ij->j", weights[lo:hi], active)
        if hi < m:  # the rows paired with every j: w_i * total
            out += total * suffix[hi]
        if edge_rows.size:  # rows with pairs exactly on the edge: move half of those across
            on_edge = work.buffer(2, edge_rows.size, size)  # inner is free again
            w_rows = work.buffer(3, edge_rows.size, size)
            np.take(suffix, edge_other, axis=0, out=on_edge, mode="clip")
            np.take(suffix, edge_first, axis=0, out=w_rows, mode="clip")
            np.subtract(on_edge, w_rows, out=on_edge)  # the weight of the j on the edge
            np.take(weights, edge_rows, axis=0, out=w_rows, mode="clip")
            out += 0.5 * np.einsum("ij,ij->j", w_rows, on_edge)
        return out

    out = np.empty((3, size))
    right = mass(above)
    if rope > 0:
        not_below_mass = mass(not_below)
        out[0] = total * total - not_below_mass
        out[1] = not_below_mass - right
    else:  # as baycomp: no equivalence region; a pair summing to 0 is half left, half right
        out[0] = total * total - right
        out[1] = 0.0
    out[2] = right
    return out


def _masses(points: np.ndarray, rope: float, weights: np.ndarray) -> np.ndarray:
    """The (left, rope, right) masses, draws x 3, for `weights` (draws x points) over the
    points in any order: the sorted-suffix computation above, for tests against the double
    sum over all pairs."""
    order = np.argsort(points, kind="stable")
    return _masses_sorted(_split(points[order], rope), weights[:, order].T.copy()).T
