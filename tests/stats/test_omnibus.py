"""elubench.stats.omnibus.friedman_test against independent oracles: scipy's statistic, brute-force
enumeration of every within-seed rank arrangement, Friedman's (1937) exact tables, and the exact
sign test."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time

import numpy as np
import pytest
from scipy import stats as sps

from elubench.stats import omnibus
from elubench.stats.omnibus import Friedman, friedman_test


def textbook_chi2(rank_sums: np.ndarray, n: int, k: int, correction: float) -> np.ndarray:
    """12 / (n k (k+1)) sum R_j^2 - 3 n (k+1), divided by the tie correction."""
    return (12 / (n * k * (k + 1)) * (rank_sums**2).sum(axis=-1) - 3 * n * (k + 1)) / correction


def brute_force(values) -> tuple[float, float]:
    """The statistic and its exact p by listing all (k!)^n arrangements of each seed's mid-ranks
    (itertools.product over per-seed permutations), counting with a 1e-9 relative tolerance."""
    ranks = sps.rankdata(np.asarray(values, dtype=float), axis=1)
    n, k = ranks.shape
    tie = sum(t**3 - t for row in ranks for t in np.unique(row, return_counts=True)[1])
    correction = 1 - tie / (n * k * (k * k - 1))
    perms = np.array(list(itertools.permutations(range(k))))
    grid = np.array(list(itertools.product(range(len(perms)), repeat=n)))  # one arrangement a row
    sums = sum(ranks[i][perms[grid[:, i]]] for i in range(n))
    observed = float(textbook_chi2(ranks.sum(axis=0), n, k, correction))
    chi2 = textbook_chi2(sums, n, k, correction)
    return observed, float((chi2 >= observed - 1e-9 * abs(observed)).mean())


def from_ranks(rows) -> np.ndarray:
    """Error values whose within-seed ranks are `rows` (ranks may tie)."""
    return np.asarray(rows, dtype=float) * 10 + 3


def sign_test_values(wins: int, losses: int, ties: int) -> np.ndarray:
    """k = 2: configuration 0 beats 1 in `wins` seeds, loses `losses`, ties `ties`."""
    return np.array([[1, 2]] * wins + [[2, 1]] * losses + [[4, 4]] * ties, dtype=float)


def assert_finite(result: Friedman) -> None:
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        for x in value if isinstance(value, tuple) else [value]:
            if isinstance(x, float):
                assert math.isfinite(x), (field.name, value)


# --- the statistic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, k, ties",
    [(5, 3, False), (10, 4, True), (7, 6, True), (10, 8, False), (3, 5, True), (20, 8, True)],
)
def test_statistic_and_mean_ranks_match_scipy(n, k, ties):
    rng = np.random.default_rng(n * 100 + k)
    values = rng.integers(0, 4, (n, k)) if ties else rng.normal(size=(n, k))
    result = friedman_test(values)
    assert result.statistic == pytest.approx(sps.friedmanchisquare(*values.T).statistic, rel=1e-12)
    assert result.mean_ranks == pytest.approx(
        tuple(sps.rankdata(values, axis=1).mean(axis=0)), rel=1e-12
    )
    assert (result.n, result.k) == (n, k)
    chi2 = result.statistic
    if result.f_statistic is not None:
        f = (n - 1) * chi2 / (n * (k - 1) - chi2)
        assert result.f_statistic == pytest.approx(f, rel=1e-9)
        assert result.f_p == pytest.approx(sps.f.sf(f, k - 1, (k - 1) * (n - 1)), rel=1e-9)


# --- the exact p against brute force -------------------------------------------------------------

BRUTE_CASES = {
    "k3 n4": [[1, 2, 3], [1, 3, 2], [2, 1, 3], [1, 2, 3]],
    "k3 n4 ties": [[1, 1, 2], [3, 1, 2], [1, 2, 2], [1, 2, 3]],
    "k3 n4 tied seed": [[1, 2, 3], [2, 2, 2], [1, 3, 2], [2, 1, 3]],
    "k2 n6": [[1, 2], [1, 2], [2, 1], [1, 2], [1, 2], [1, 2]],
    "k2 n6 ties": [[1, 2], [1, 1], [2, 1], [1, 2], [3, 3], [1, 2]],
    "k4 n3 ties": [[1, 2, 3, 4], [2, 2, 1, 4], [1, 3, 3, 3]],
    "k3 n5 random": np.random.default_rng(1).normal(size=(5, 3)),
    "k5 n2": [[1, 2, 3, 4, 5], [2, 5, 1, 3, 4]],
    "k6 n2 ties": [[1, 2, 3, 4, 5, 6], [2, 2, 1, 5, 5, 3]],
}


@pytest.mark.parametrize("name", list(BRUTE_CASES))
def test_exact_p_equals_brute_force(name):
    values = from_ranks(BRUTE_CASES[name])
    statistic, p = brute_force(values)
    result = friedman_test(values)
    assert result.method.startswith("exact (") and result.p_se is None and result.degenerate is None
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.p == pytest.approx(p, abs=1e-12)


@pytest.mark.parametrize("case", range(24))
def test_exact_p_equals_brute_force_on_random_tables(case):
    rng = np.random.default_rng(100 + case)
    k = int(rng.integers(2, 5))
    n = int(rng.integers(2, {2: 12, 3: 6, 4: 4}[k]))
    values = rng.integers(0, 3 + case % 3, (n, k))  # ties, sometimes whole seeds
    if len(np.unique(values)) == 1:
        values[0, 0] += 1
    statistic, p = brute_force(values)
    result = friedman_test(values)
    assert result.statistic == pytest.approx(statistic, rel=1e-12, abs=1e-12)
    assert result.p == pytest.approx(p, abs=1e-12)


def test_both_state_aggregations_agree(monkeypatch):
    # past enumeration: the dense aggregation and the sort-based one give the same p
    values = np.random.default_rng(8).integers(0, 6, (10, 5))
    dense = friedman_test(values)
    monkeypatch.setattr(omnibus, "_DENSE_MAX", 0)
    assert friedman_test(values).p == pytest.approx(dense.p, abs=1e-12)
    assert dense.method.startswith("exact (all within-seed arrangements of the observed mid-ranks")
    mc = friedman_test(values, exact_limit=0, seed=9)
    assert abs(mc.p - dense.p) < 4 * mc.p_se


def test_published_exact_values():
    # Friedman (1937), reproduced in Siegel & Castellan (1988) Table M, k = 3:
    # n = 5: P(chi2_r >= 6.4) = .039; n = 6: P(chi2_r >= 7.0) = .029 (also the 5 % critical
    # values 6.4 and 7.0 of the usual critical-value tables). By brute force here:
    # 306 / 7776 = 0.039352 and 1350 / 46656 = 0.028935.
    five = from_ranks([[1, 2, 3]] * 3 + [[1, 3, 2], [2, 1, 3]])  # R = 6, 10, 14
    six = from_ranks([[1, 2, 3]] * 3 + [[1, 3, 2]] * 2 + [[2, 1, 3]])  # R = 7, 13, 16
    for values, chi2, count, total, published in (
        (five, 6.4, 306, 7776, 0.039),
        (six, 7.0, 1350, 46656, 0.029),
    ):
        result = friedman_test(values)
        assert result.statistic == pytest.approx(chi2, rel=1e-12)
        assert brute_force(values)[1] == pytest.approx(count / total, abs=1e-15)
        assert result.p == pytest.approx(count / total, abs=1e-12)
        assert round(result.p, 3) == published
        assert result.method.startswith("exact (all (3!)^")


@pytest.mark.parametrize(
    "wins, losses, ties", [(5, 0, 0), (7, 2, 0), (6, 1, 3), (9, 3, 0), (4, 4, 2), (20, 5, 5)]
)
def test_k2_exact_p_is_the_sign_test(wins, losses, ties):
    result = friedman_test(sign_test_values(wins, losses, ties))
    assert result.p == pytest.approx(sps.binomtest(wins, wins + losses).pvalue, abs=1e-12)
    assert result.k == 2 and result.method.startswith("exact")


def test_clean_sweep_of_five_seeds():
    result = friedman_test(sign_test_values(5, 0, 0))
    assert result.statistic == pytest.approx(5.0) and result.p == pytest.approx(0.0625, abs=1e-15)
    assert sps.chi2.sf(5.0, 1) == pytest.approx(0.025, abs=5e-4)  # what the approximation said
    assert result.f_statistic is None and result.f_p is None  # F = 4 * 5 / 0
    assert "same order" in result.degenerate


# --- degenerate data -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows, ways",
    [([[1, 2, 3]] * 4, 6), ([[3, 1, 2, 4]] * 3, 24), ([[1, 1, 2]] * 4, 3), ([[2, 1]] * 6, 2)],
)
def test_identical_rankings(rows, ways):
    values = from_ranks(rows)
    n, k = values.shape
    result = friedman_test(values)
    statistic, brute = brute_force(values)
    assert result.statistic == pytest.approx(n * (k - 1), rel=1e-12) == statistic
    assert result.p == pytest.approx((1 / ways) ** (n - 1), abs=1e-15) == brute
    assert result.f_statistic is None and result.f_p is None and result.p_se is None
    assert result.degenerate.startswith("every seed ranks the configurations in the same order")
    assert_finite(result)


def test_identical_rankings_beyond_enumeration():
    result = friedman_test(np.tile(np.arange(8.0), (10, 1)))
    assert result.p == pytest.approx(40320.0**-9, rel=1e-9) and result.f_statistic is None
    result = friedman_test(np.tile(np.arange(8.0), (250, 1)))  # 40320^-249 underflows
    assert result.p == 0.0 and "below the smallest float" in result.method
    assert_finite(result)


def test_every_seed_ties_everything():
    result = friedman_test(np.full((6, 4), 7.0))
    assert (result.statistic, result.p, result.f_statistic, result.f_p) == (0.0, 1.0, 0.0, 1.0)
    assert result.degenerate.startswith("every seed ties every configuration")
    assert result.mean_ranks == (2.5,) * 4
    assert_finite(result)


# --- Monte Carlo and chi-square paths --------------------------------------------------------------


def test_monte_carlo_agrees_with_exact():
    values = np.random.default_rng(7).normal(size=(6, 4)) + [0.0, 0.3, 0.6, 0.9]
    exact = friedman_test(values)
    assert exact.method.startswith("exact (")
    mc = friedman_test(values, exact_limit=0, monte_carlo=20_000, seed=3)
    assert mc.method.startswith("Monte Carlo (20,000 random within-seed permutations")
    assert mc.p_se == pytest.approx(math.sqrt(mc.p * (1 - mc.p) / 20_000))
    assert abs(mc.p - exact.p) < 4 * mc.p_se
    assert mc.statistic == exact.statistic and mc.f_p == exact.f_p
    again = friedman_test(values, exact_limit=0, monte_carlo=20_000, seed=3)
    assert again == mc
    assert_finite(mc)


def test_monte_carlo_with_ties_agrees_with_brute_force():
    values = from_ranks(BRUTE_CASES["k3 n4 ties"])
    mc = friedman_test(values, exact_limit=5, monte_carlo=50_000, seed=1)
    assert mc.method.startswith("Monte Carlo") and abs(mc.p - brute_force(values)[1]) < 4 * mc.p_se


def test_exact_where_feasible_then_monte_carlo_then_chi_square():
    rng = np.random.default_rng(11)
    assert friedman_test(rng.normal(size=(10, 4))).method.startswith("exact (all (4!)^10")
    assert friedman_test(rng.normal(size=(10, 8))).method.startswith("Monte Carlo (100,000")
    assert friedman_test(rng.normal(size=(250, 2))).method.startswith("exact (")  # k = 2: any n
    values = rng.normal(size=(60, 8))
    result = friedman_test(values)
    assert result.method.startswith("chi-square approximation (7 df): 60 seeds is above 50")
    assert result.p == pytest.approx(sps.friedmanchisquare(*values.T).pvalue, rel=1e-9)


def test_no_inf_or_nan_anywhere():
    rng = np.random.default_rng(5)
    cases = [
        rng.normal(size=(5, 3)),
        rng.integers(0, 2, (8, 5)),
        sign_test_values(5, 0, 0),
        np.full((3, 2), 1.0),
        np.tile([1.0, 1.0, 2.0], (4, 1)),
        rng.normal(size=(60, 6)),
        np.tile(np.arange(6.0), (60, 1)),
        from_ranks([[1, 2, 3], [2, 2, 2], [1, 2, 3]]),
    ]
    for values in cases:
        assert_finite(friedman_test(values))
    assert_finite(friedman_test(rng.normal(size=(7, 6)), exact_limit=0, monte_carlo=1_000))


# --- input and speed -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, match",
    [
        (np.ones((1, 4)), "1 seed"),
        (np.ones((6, 1)), "1 configuration"),
        (np.ones(5), "shape"),
        ([[1, 2], [3, np.nan]], "NaN"),
    ],
)
def test_bad_input(values, match):
    with pytest.raises(ValueError, match=match):
        friedman_test(values)


@pytest.mark.parametrize(
    "n, k, method", [(250, 8, "chi-square approximation"), (10, 8, "Monte Carlo"), (10, 5, "exact")]
)
def test_speed(n, k, method):
    # Measured on the 2-core CI-class CPU (median of 7): (250, 8), a compare over 2,000 runs,
    # 5 ms (the exact attempt gives up at once); (10, 8), the quick start, 40 ms (100,000 Monte
    # Carlo draws); (10, 5) 150 ms (exact); (20, 8) 65 ms; (5, 2) 1 ms. The bound is generous.
    values = np.random.default_rng(2).normal(size=(n, k))
    start = time.perf_counter()
    result = friedman_test(values)
    assert time.perf_counter() - start < 2.0
    assert result.method.startswith(method)
