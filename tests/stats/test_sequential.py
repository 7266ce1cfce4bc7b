"""The sequential design (run --until-decided) against enumeration, brute force and scipy: its
error rate by enumerating every sign pattern, its p-values against the exact Wilcoxon test, its
decisions replayed, Holm's recycling, futility, and a short simulation of the family-wise error.
Nothing here trains."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from scipy import stats as sps

from elubench.core.errors import StatsError
from elubench.stats.paired import holm, signed_rank
from elubench.stats.sequential import engine
from elubench.stats.sequential.decisions import (
    EFFICACY,
    FUTILITY,
    MAX_SEEDS,
    OPEN,
    decide,
    next_round,
)
from elubench.stats.sequential.design import SequentialDesign, futility_bounds
from elubench.stats.sequential.simulation import fixed_design, simulate_design, wilson
from elubench.stats.verdicts import BETTER, NO_EVIDENCE, WORSE


def design(looks, alpha=0.05, alternative="two-sided", futility=True, **changes):
    """A design on these looks; without futility, boundaries alone (what the error rate is
    computed for: futility is non-binding)."""
    base = SequentialDesign.default(alpha, looks[-1], alternative, tuple(looks))
    if not futility:
        base = dataclasses.replace(base, futility=(0.0,) * len(looks), futility_shift=0.0)
    return dataclasses.replace(base, **changes)


def every_sign(magnitudes):
    """Every sign pattern of the magnitudes, one row each (zeros keep their 0)."""
    m = np.asarray(magnitudes, dtype=float)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=m.size)))
    return signs * m


def crossing_by_look(rows, des):
    """Fraction of the rows (equally likely sign patterns) whose path has crossed the alpha
    boundary by each look, ignoring futility (the rows run with a futility-free design)."""
    paths = engine.run(rows[:, None, :], des)
    first = paths.crossed_at[:, 0, 0]
    return np.array([((first >= 0) & (first <= k)).mean() for k in range(len(des.looks))])


# --- the error rate, exactly, by enumerating every sign pattern -------------------------------

MAGNITUDES = {
    "distinct, random order": np.random.default_rng(3).permutation(np.arange(1.0, 11.0)),
    "increasing": np.arange(1.0, 11.0),
    "decreasing": np.arange(10.0, 0.0, -1.0),
    "ties (integer errors)": np.array([2, 1, 2, 3, 1, 1, 2, 5, 2, 1], dtype=float),
    "zeros and ties": np.array([0, 1, 2, 0, 1, 1, 0, 3, 2, 1], dtype=float),
    "heavy tail": np.array([0.1, 30, 0.2, 0.3, 500, 0.1, 2, 0.4, 0.5, 9]),
}
DESIGNS = {
    "a look per seed": (4, 5, 6, 7, 8, 9, 10),
    "three looks": (5, 8, 10),
    "one look": (10,),
}


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
@pytest.mark.parametrize("looks", DESIGNS.values(), ids=DESIGNS.keys())
@pytest.mark.parametrize("magnitudes", MAGNITUDES.values(), ids=MAGNITUDES.keys())
def test_every_sign_pattern_crosses_with_probability_at_most_alpha(magnitudes, looks, alternative):
    """Under symmetry every sign pattern of given magnitudes is equally likely; whatever the
    magnitudes (ties, zeros, an order chosen to hurt), the share of the 2**10 patterns that
    ever cross is at most alpha, and by look k at most alpha * spent(k)."""
    for alpha in (0.05, 0.2):
        des = design(looks, alpha, alternative, futility=False)
        crossed = crossing_by_look(every_sign(magnitudes), des)
        allowed = np.array([alpha * des.spent(k) for k in range(len(looks))])
        assert (crossed <= allowed + 1e-15).all(), (crossed, allowed)
    if magnitudes.min() > 0 and alternative == "two-sided":
        assert crossed[-1] > alpha / 2  # distinct non-zero magnitudes: most of alpha is used


def test_the_engine_spends_exactly_what_enumeration_counts():
    """The dynamic program's law is the enumeration's: with paths that crossed removed, the
    probability it spends by each look is the share of sign patterns that crossed by then (a
    program that forgot to remove them would still be valid, by Bonferroni over the looks, but
    spend less than it counts); at one look, the boundary's nominal p is that share."""
    for magnitudes in MAGNITUDES.values():
        rows = every_sign(magnitudes)
        des = design(DESIGNS["a look per seed"], 0.05, futility=False)
        paths = engine.run(rows[:, None, :], des)
        first, stopped = paths.crossed_at[:, 0, 0], paths.look[:, 0]
        checked = 0
        for k in np.unique(stopped):  # a row's `spent` is kept at the look it stopped at
            spent = np.unique(paths.spent[stopped == k, 0, 0])  # same magnitudes: same law
            assert spent.size == 1 and ((first >= 0) & (first <= k)).mean() == spent[0]
            checked += 1
        assert checked >= 2  # a look that crossed, and the last
        single = engine.run(rows[:, None, :], design((10,), 0.05, futility=False))
        share = (single.crossed_at[:, 0, 0] >= 0).mean()
        assert share == single.threshold[0, 0, 0] == single.spent[0, 0, 0] <= 0.05


def test_futility_can_only_remove_rejections():
    """Futility is non-binding: the design with it rejects a subset of what the boundaries
    alone reject, so its error rate is no higher."""
    rows = every_sign(np.arange(1.0, 13.0))
    looks = tuple(range(4, 13))
    with_futility = engine.run(rows[:, None, :], design(looks, 0.2)).state == engine.REJECTED
    without = (
        engine.run(rows[:, None, :], design(looks, 0.2, futility=False)).state == engine.REJECTED
    )
    assert (with_futility <= without).all() and with_futility.sum() < without.sum()


def test_a_family_by_enumeration_keeps_the_family_wise_error():
    """Two comparisons under the null, every joint sign pattern (2**12): the closed procedure
    rejects either at most alpha of the time (alpha 0.25 so that 6 seeds can reject at alpha/2)."""
    a, b = np.array([3.0, 1, 4, 1, 5, 9]), np.array([2.0, 7, 1, 8, 2, 8])
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=12)))
    rows = np.stack([signs[:, :6] * a, signs[:, 6:] * b], axis=1)
    for looks in ((4, 5, 6), (6,)):
        paths = engine.run(rows, design(looks, 0.25, futility=False))
        fwer = (paths.state == engine.REJECTED).any(axis=1).mean()
        assert 0 < fwer <= 0.25


# --- p-values against the exact Wilcoxon test --------------------------------------------------


def test_one_look_is_the_exact_wilcoxon_test():
    """With one look and a grid of 2(n + 1) the scores are the doubled mid-ranks: the look's p is
    elubench's exact signed-rank p (ties included) and scipy's exact p where there are none."""
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(5, 15))
        d = rng.integers(-4, 5, n).astype(float) if trial % 2 else rng.standard_normal(n)
        d[d == 0] = 1.0  # zeros change the rank count n; they have their own test below
        for alternative in ("two-sided", "less", "greater"):
            des = design((n,), alternative=alternative, grid=2 * (n + 1))
            p = decide({"a vs b": d}, des)["a vs b"].p
            assert p == pytest.approx(signed_rank(d, alternative).p, abs=1e-12)
            if np.unique(np.abs(d)).size == n:
                scipy_p = sps.wilcoxon(d, alternative=alternative, method="exact").pvalue
                assert p == pytest.approx(scipy_p, abs=1e-12)


def test_zero_differences_are_dropped_as_in_the_fixed_test():
    d = np.array([0.0, -3, 0, -1, -4, 2, -5, 0, -6])
    des = design((9,), grid=2 * (6 + 1))  # six non-zero differences
    assert decide({"a vs b": d}, des)["a vs b"].p == pytest.approx(signed_rank(d).p, abs=1e-12)


def test_the_fixed_design_is_signed_rank_and_holm():
    """simulate_design's vectorized fixed design against signed_rank and holm, row by row."""
    rng = np.random.default_rng(1)
    d = np.rint(rng.normal(-0.5, 1.5, (60, 3, 10)))  # integer: ties and zeros
    for alternative in ("two-sided", "less"):
        rejected, sign = fixed_design(d, 0.05, alternative)
        for f in range(d.shape[0]):
            tests = [signed_rank(row, alternative) for row in d[f]]
            expected = holm([t.p for t in tests]) <= 0.05
            assert (rejected[f] == expected).all()
            biserial = np.nan_to_num([t.rank_biserial for t in tests])
            assert (sign[f] == np.sign(biserial)).all()


def test_wilson_interval_known_value():
    rate = wilson(50, 1000)  # Wilson (1927): 0.0381 to 0.0653
    assert (round(rate.low, 4), round(rate.high, 4)) == (0.0381, 0.0653)


# --- decisions ----------------------------------------------------------------------------------


def test_decisions_are_a_pure_function_of_the_differences_in_seed_order():
    """Replaying every prefix: an open comparison may change; one that stopped never does, and
    what arrives after its stop is ignored."""
    rng = np.random.default_rng(7)
    des = SequentialDesign.default()
    family = {f"c{j} vs base": rng.normal(-0.8 * j, 1, 20) for j in range(3)}
    final = decide(family, des)
    assert decide(family, des) == final
    stopped: dict[str, object] = {}
    for n in range(1, 21):
        now = decide({k: v[:n] for k, v in family.items()}, des)
        for name, decision in now.items():
            if name in stopped:
                assert decision == stopped[name]
            elif decision.state != OPEN:
                stopped[name] = decision
    assert stopped == final and all(d.state != OPEN for d in final.values())
    for name, decision in final.items():  # what comes after the stop is ignored
        noisy = dict(family)
        noisy[name] = np.concatenate([family[name][: decision.seeds_used], 100 + rng.random(20)])
        assert decide(noisy, des)[name] == decision


def test_a_clean_sweep_is_decided_at_the_first_look_that_can():
    """Every seed 1 error better: two-sided, 6 seeds give p = 1/32 within alpha * (6/20)**0.2."""
    decision = decide({"elu vs relu": -np.ones(20)}, SequentialDesign.default())["elu vs relu"]
    assert (decision.state, decision.stop, decision.seeds_used) == (BETTER, EFFICACY, 6)
    assert decision.p == 2 / 64 <= decision.threshold and decision.look == 3
    worse = decide({"a vs b": np.ones(20)}, SequentialDesign.default(), ("BN helps", "BN hurts"))
    assert worse["a vs b"].state == "BN hurts"


def test_a_one_sided_design_rejects_one_way_only():
    des = SequentialDesign.default(alternative="less")
    assert decide({"a": -np.ones(20)}, des)["a"].state == BETTER
    assert decide({"a": np.ones(20)}, des)["a"].state == NO_EVIDENCE
    higher = SequentialDesign.default(alternative="greater")
    assert decide({"a": np.ones(20)}, higher)["a"].state == WORSE
    assert decide({"a": -np.ones(20)}, higher)["a"].state == NO_EVIDENCE


def test_holm_recycles_alpha_across_a_family():
    """One look, one-sided, 6 seeds: a sweep has p = 1/64 <= alpha / 2; one seed against has
    p = 2/64, above alpha / 2, below alpha: rejected once the sweep's alpha passes to it."""
    des = design((6,), alternative="less")
    sweep, nearly = -np.arange(1.0, 7.0), np.array([1.0, -2, -3, -4, -5, -6])
    out = decide({"sweep": sweep, "nearly": nearly}, des)
    assert [out[k].state for k in ("sweep", "nearly")] == [BETTER, BETTER]
    assert out["sweep"].level == 0.025 and out["nearly"].level == 0.05
    alone = decide({"nearly": nearly, "null": np.array([1.0, -2, 3, -4, 5, -6])}, des)
    assert alone["nearly"].state == NO_EVIDENCE  # no rejection to recycle: alpha / 2 stays


def test_holm_recycling_across_looks_keeps_what_was_decided():
    """A clean sweep of three strong comparisons in one family, all decided; the family sizes
    the level: the first rejection needs alpha / 3."""
    out = decide({f"c{j}": -np.arange(1.0, 21.0) for j in range(3)}, SequentialDesign.default())
    assert {d.state for d in out.values()} == {BETTER}
    assert min(d.level for d in out.values()) == pytest.approx(0.05 / 3)


def test_futility_and_max_seeds():
    des = SequentialDesign.default()
    futile = decide({"a": np.zeros(20)}, des)["a"]
    assert (futile.state, futile.stop, futile.seeds_used) == (NO_EVIDENCE, FUTILITY, 4)
    assert "futile at look 1" in futile.reason
    # alternating signs, growing: never far from 0, never crossing; no futility: runs out
    steady = decide(
        {"a": np.array([(-1) ** i * (i + 1) for i in range(20)])},
        dataclasses.replace(des, futility=(0.0,) * 17),
    )
    assert (steady["a"].stop, steady["a"].seeds_used) == (MAX_SEEDS, 20)


def test_an_open_comparison_says_what_it_needs():
    des = SequentialDesign.default()
    out = decide(
        {"a vs r": [-1.0, 2.0], "b vs r": [-1.0, -2.0, 0.5, -1.5, -1.0], "c vs r": -np.ones(8)}, des
    )
    assert out["a vs r"].state == OPEN and out["a vs r"].next_look == 4
    assert out["b vs r"].state == OPEN and out["b vs r"].next_look == 6
    plan = next_round(out, {"a vs r": ("a", "r"), "b vs r": ("b", "r"), "c vs r": ("c", "r")})
    assert plan.seeds == 4 and plan.open == ("a vs r", "b vs r")
    assert plan.configurations == ("a", "b", "r")  # c is decided: it trains no more
    assert next_round({"c vs r": out["c vs r"]}).seeds is None


def test_closed_test_shortcut_is_the_closure():
    """The shortcut against the closure over every intersection (Bonferroni within each)."""
    rng = np.random.default_rng(5)
    for m in (1, 2, 3, 4):
        crossed = rng.random((300, m, m)) < 0.4
        fast = engine.closed_test(crossed)
        for f in range(crossed.shape[0]):
            for j in range(m):
                subsets = [
                    s
                    for r in range(1, m + 1)
                    for s in itertools.combinations(range(m), r)
                    if j in s
                ]
                brute = all(any(crossed[f, i, len(s) - 1] for i in s) for s in subsets)
                assert fast[f, j] == brute


def test_bad_designs_and_differences_are_refused():
    with pytest.raises(StatsError):
        SequentialDesign.default(max_seeds=60)
    with pytest.raises(StatsError):
        design((5, 5, 6))
    with pytest.raises(StatsError):
        decide({"a": [1.0, np.nan]}, SequentialDesign.default())
    assert futility_bounds((4, 5, 6, 20))[0] == 0.4 and futility_bounds((4, 5, 6, 20))[-1] == 0


# --- simulation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", ["integer-coarse", "t2"])
def test_simulated_family_wise_error_is_within_alpha(noise):
    """A short version of benchmarks/sequential_simulation.py: three comparisons sharing a
    baseline under the null; the family-wise error is not above alpha beyond Monte Carlo error."""
    result = simulate_design(
        SequentialDesign.default(), 3, 0.0, noise=noise, simulations=3000, seed=11
    )
    assert result.fwer.low <= 0.05 and result.fwer.value <= 0.05 + 0.01
    assert result.runs < result.fixed_runs  # futility ends most null comparisons early


def test_simulation_sees_power_and_counts_runs():
    result = simulate_design(SequentialDesign.default(), 1, 2.0, simulations=400, seed=2)
    assert result.power.value > 0.95 and np.isnan(result.fwer.value)
    assert 2 * 6 <= result.runs < 2 * 8 and result.fixed_runs == 20
