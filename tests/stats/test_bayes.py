"""elubench.stats.bayes against baycomp (Monte Carlo), an explicit double sum over the pairs
(exact, same weights), and the properties the posterior probabilities must have."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from elubench.stats.bayes import BayesSignedRank, _masses, bayes_signed_rank

N = 50_000  # posterior draws on each side of a comparison


def mc_tolerance(p: float, n: int = N) -> float:
    """4 standard errors of the difference of two independent Monte Carlo estimates of the
    proportion p from n draws each: 4 * sqrt(2 p (1 - p) / n), at most 0.0126 (p = 0.5, n =
    50,000), plus 2 / n for proportions near 0 or 1."""
    return 4 * math.sqrt(2 * p * (1 - p) / n) + 2 / n


# (d, rope): d = err(a) - err(b) in percentage points, negative = a better
CASES = {
    "sweep-5": ([-1.2, -0.8, -2.0, -1.5, -0.9], 0.5),
    "mixed-10": ([-0.62, 0.31, -1.05, 0.12, -0.44, 0.58, -0.23, -0.91, 0.07, -0.35], 0.5),
    "mixed-10-rope-0": ([-0.62, 0.31, -1.05, 0.12, -0.44, 0.58, -0.23, -0.91, 0.07, -0.35], 0.0),
    "outlier-20": (
        [
            -0.31,
            -0.42,
            -0.18,
            -0.55,
            -0.27,
            -0.36,
            -0.61,
            -0.12,
            -0.48,
            -0.33,
            -0.29,
            -0.44,
            -0.52,
            -0.21,
            -0.39,
            -0.47,
            -0.25,
            -0.58,
            -0.34,
            9.0,
        ],
        0.25,
    ),
    "inside-30": (
        [
            0.11,
            -0.24,
            0.05,
            -0.13,
            0.29,
            -0.02,
            0.17,
            -0.31,
            0.08,
            -0.19,
            0.22,
            -0.07,
            0.14,
            -0.26,
            0.01,
            0.19,
            -0.11,
            0.27,
            -0.16,
            0.03,
            -0.21,
            0.12,
            -0.04,
            0.25,
            -0.28,
            0.09,
            -0.14,
            0.18,
            -0.09,
            0.06,
        ],
        0.1,
    ),
    # pairs of 0.5s (-0.5s) sum to exactly +2 rope (-2 rope): baycomp counts them half inside;
    # counting them inside or outside the ROPE would give p_rope 0.86 or 0.11 instead of 0.45
    "at-edges": ([0.5, 0.5, 0.5, 0.5, -0.5, 0.9, 0.8, 0.5, 0.5], 0.5),
    "at-edges-mirrored": ([-0.5, -0.5, -0.5, -0.5, 0.5, -0.9, -0.8, -0.5, -0.5], 0.5),
    "zeros": ([0.0] * 8, 0.5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_baycomp(name):
    baycomp = pytest.importorskip("baycomp")
    d, rope = CASES[name]
    d = np.array(d)
    # baycomp takes the difference y - x and calls its first region "left": x = 0, y = d
    theirs = baycomp.SignedRankTest(
        np.zeros(d.size), d, rope, prior=0.5, nsamples=N, random_state=20240917
    ).probs()
    ours = bayes_signed_rank(d, rope, samples=N, prior=0.5, seed=7)
    for what, mine, other in zip(
        ("p_left", "p_rope", "p_right"), (ours.p_left, ours.p_rope, ours.p_right), theirs
    ):
        assert abs(mine - other) <= mc_tolerance((mine + other) / 2), (name, what, mine, other)


def brute_force_masses(points, rope, weights):
    """baycomp's formula: the (n+1) x (n+1) matrix of pair sums and a Heaviside step with
    H(0) = 1/2, one posterior draw (row of weights) at a time."""

    def heaviside(a, t):
        return (a > t).astype(float) + 0.5 * (a == t).astype(float)

    sums = points[:, None] + points[None, :]
    above, below = heaviside(sums, 2 * rope), heaviside(-sums, 2 * rope)
    out = []
    for w in weights:
        pairs = np.outer(w, w)
        left, right = (pairs * below).sum(), (pairs * above).sum()
        out.append((left, pairs.sum() - left - right if rope > 0 else 0.0, right))
    return np.array(out)


@pytest.mark.parametrize(
    "d, rope",
    [
        ([-1.2, -0.8, -2.0, -1.5, -0.9], 0.5),
        ([0.5, 0.5, -0.5, 0.5, 0.0, 0.25, 0.25, -0.25, 1.0, -0.5], 0.5),  # edges, ties, zeros
        ([0.5, 0.5, -0.5, 0.0, 0.0, 1.5, -1.5], 0.0),  # rope 0: sums of 0
        ([0.0] * 6, 0.0),
        ([0.0] * 6, 0.3),
        ([3.0], 1.0),
        ([-5.0, -3.0, 0.1, 2.0, 6.0, -0.4, 0.45], 0.5),  # rows paired with no j, and with every j
        ([0.1, -0.2, 0.3], 10.0),  # every pair inside the ROPE
        ([-4.0, -6.0, -5.5], 0.5),  # every pair but the pseudo-observation's below
    ],
)
def test_masses_equal_the_double_sum(d, rope):
    points = np.concatenate(([0.0], d))
    rng = np.random.default_rng(1)
    weights = rng.standard_exponential((200, points.size))
    weights[:, 0] = rng.standard_gamma(0.5, 200)
    np.testing.assert_allclose(
        _masses(points, rope, weights),
        brute_force_masses(points, rope, weights),
        rtol=1e-12,
        atol=1e-12,
    )


def test_probabilities_sum_to_one():
    for d, rope in CASES.values():
        r = bayes_signed_rank(d, rope, samples=5_000)
        assert r.p_left + r.p_rope + r.p_right == pytest.approx(1.0, abs=1e-12)
        assert all(0 <= p <= 1 for p in (r.p_left, r.p_rope, r.p_right))


@pytest.mark.parametrize("name", ["mixed-10", "mixed-10-rope-0", "outlier-20", "at-edges", "zeros"])
def test_mirrored_data_swaps_left_and_right(name):
    d, rope = CASES[name]
    r = bayes_signed_rank(d, rope, seed=3)
    m = bayes_signed_rank(-np.array(d), rope, seed=4)
    for mine, theirs in ((m.p_left, r.p_right), (m.p_rope, r.p_rope), (m.p_right, r.p_left)):
        assert abs(mine - theirs) <= mc_tolerance((mine + theirs) / 2), (name, m, r)


def test_the_order_of_the_differences_does_not_matter():
    d, rope = CASES["outlier-20"]
    shuffled = np.random.default_rng(9).permutation(d)
    assert bayes_signed_rank(shuffled, rope, samples=20_000, seed=5) == bayes_signed_rank(
        d, rope, samples=20_000, seed=5
    )


def test_huge_negative_shift_means_a_is_better():
    d = np.random.default_rng(5).normal(-50.0, 1.0, 10)
    r = bayes_signed_rank(d, 0.5)
    assert r.p_left > 0.999 and r.p_right < 0.001


def test_differences_inside_a_wide_rope_mean_equivalence():
    d = np.random.default_rng(6).uniform(-1.0, 1.0, 20)
    r = bayes_signed_rank(d, 10.0)
    assert r.p_rope > 0.999


def test_rope_zero_has_no_equivalence_region():
    r = bayes_signed_rank([-0.3, 0.1, -0.2, 0.0, -0.4], 0.0)
    assert r.p_rope == 0.0 and r.p_left + r.p_right == pytest.approx(1.0)
    # all zero, no rope: left = right = 1/2 in every draw, so 0.5 each (baycomp: rounding noise)
    z = bayes_signed_rank([0.0] * 5, 0.0)
    assert (z.p_left, z.p_rope, z.p_right) == (0.5, 0.0, 0.5)
    # all zero with a rope: every pair is inside it
    assert bayes_signed_rank([0.0] * 5, 0.5).p_rope == 1.0


def test_one_difference_is_enough():
    r = bayes_signed_rank([-2.0], 0.5)
    assert r.p_left > r.p_right and r.p_left + r.p_rope + r.p_right == pytest.approx(1.0)


def test_same_seed_same_result_and_other_seeds_within_mc_error():
    d, rope = CASES["mixed-10"]
    first = bayes_signed_rank(d, rope, seed=11)
    assert bayes_signed_rank(d, rope, seed=11) == first
    other = bayes_signed_rank(d, rope, seed=12)
    assert other != first
    for mine, theirs in zip(
        (first.p_left, first.p_rope, first.p_right), (other.p_left, other.p_rope, other.p_right)
    ):
        assert abs(mine - theirs) <= mc_tolerance((mine + theirs) / 2)


def test_result_fields_and_method_line():
    r = bayes_signed_rank([-1.0, -0.5, 0.2], 0.5)
    assert isinstance(r, BayesSignedRank)
    assert (r.rope, r.samples, r.prior) == (0.5, 50_000, 0.5)
    assert r.method == (
        "Bayesian signed-rank (Benavoli et al. 2017), Dirichlet process prior 0.5 at 0, "
        "50,000 posterior samples, ROPE ±0.5"
    )


def test_250_seeds_in_well_under_two_seconds():
    # measured on a 2-core CPU (AMD EPYC VM): 0.10-0.14 s for n = 250 and 50,000 draws, about
    # half of it drawing the 12.5 million exponential weights (baycomp itself: about 8 s)
    d = np.random.default_rng(8).normal(-0.2, 1.0, 250)
    bayes_signed_rank(d[:10], 0.5, samples=1_000)  # warm up imports and caches
    start = time.perf_counter()
    bayes_signed_rank(d, 0.5)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "d, rope, kwargs, message",
    [
        ([0.1, -0.2], -0.1, {}, "rope must be finite and >= 0"),
        ([0.1, -0.2], math.inf, {}, "rope must be finite and >= 0"),
        ([0.1, -0.2], math.nan, {}, "rope must be finite and >= 0"),
        ([], 0.5, {}, "d is empty"),
        ([0.1, math.nan, -0.2], 0.5, {}, "NaN"),
        ([0.1, math.inf], 0.5, {}, "infinite"),
        ([[0.1, 0.2]], 0.5, {}, "one-dimensional"),
        ([0.1, -0.2], 0.5, {"samples": 0}, "samples must be a positive integer"),
        ([0.1, -0.2], 0.5, {"prior": -1.0}, "prior must be finite and >= 0"),
    ],
)
def test_bad_input_is_a_value_error(d, rope, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bayes_signed_rank(d, rope, **kwargs)
