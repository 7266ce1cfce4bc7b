"""elubench.stats against independent computations: scipy, brute force, hand-computed values."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pandas as pd
import pytest
from conftest import runs_from
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from elubench.core.errors import StatsError
from elubench.stats.bn_families import bn_interaction
from elubench.stats.families import friedman, paired_comparisons
from elubench.stats.methods import methods_text
from elubench.stats.paired import bh, holm, seeds_for_power, signed_rank
from elubench.stats.scores import descriptives
from elubench.stats.summary import compare, cost, learning_speed


def brute_force_p(d, alternative):
    """p of T+ over every sign assignment of the non-zero |d| (mid-ranks kept)."""
    d = np.asarray([x for x in d if x != 0], dtype=float)
    ranks = sps.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    null = np.array(
        [
            ranks[np.array(signs, dtype=bool)].sum()
            for signs in itertools.product([0, 1], repeat=d.size)
        ]
    )
    less, greater = (null <= observed + 1e-9).mean(), (null >= observed - 1e-9).mean()
    return {"less": less, "greater": greater, "two-sided": min(1.0, 2 * min(less, greater))}[
        alternative
    ]


# --- corrections ------------------------------------------------------------------------------


def test_holm_known_answer_in_input_order():
    assert holm([0.001, 0.02, 0.03, 0.2]) == pytest.approx([0.004, 0.06, 0.06, 0.2])
    assert holm([0.2, 0.03, 0.001, 0.02]) == pytest.approx([0.2, 0.06, 0.004, 0.06])
    out = holm([0.01, math.nan, 0.04])  # NaN is not counted in m
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)


def test_bh_known_answer():
    # sorted 0.01, 0.03, 0.04, 0.2 -> x4/1, x4/2, x4/3, x4/4 = .04, .06, .0533, .2 -> step-up minimum
    assert bh([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert bh([0.5, 0.9]) == pytest.approx([0.9, 0.9])


# --- Wilcoxon ---------------------------------------------------------------------------------


def test_ten_wins_of_ten_gives_the_papers_floor():
    d = -np.arange(1, 11)
    two, less, greater = (signed_rank(d, alt) for alt in ("two-sided", "less", "greater"))
    assert two.p == 2 / 1024 and less.p == 1 / 1024 and greater.p == 1.0
    assert two.p_floor == 2 / 1024 and less.p_floor == 1 / 1024 and greater.p_floor == 1 / 1024
    assert two.statistic == 0 and two.method == "exact" and two.rank_biserial == -1.0


def test_ten_wins_through_paired_comparisons():
    runs = runs_from({"relu": [500 + i for i in range(10)], "elu": [490 - i for i in range(10)]})
    for alternative, p in (("two-sided", 2 / 1024), ("less", 1 / 1024)):
        result = paired_comparisons(runs, "relu", alternative=alternative)
        row = result.table.iloc[0]
        assert (row["a"], row["b"], row["wins"], row["losses"]) == ("elu", "relu", 10, 0)
        assert row["wilcoxon_p"] == p and row["p_floor"] == p and row["verdict"] == "better"
        assert result.alternative == alternative and result.primary == "Wilcoxon signed-rank"


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_signed_rank_matches_scipy_exact_without_ties(alternative):
    d = np.random.default_rng(1).normal(-0.4, 1, 14)
    ours = signed_rank(d, alternative)
    theirs = sps.wilcoxon(d, alternative=alternative, method="exact", zero_method="wilcox")
    assert ours.method == "exact"
    assert ours.p == pytest.approx(theirs.pvalue, rel=1e-12)
    assert ours.statistic == pytest.approx(sps.rankdata(np.abs(d))[d > 0].sum())


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_signed_rank_with_ties_matches_permutation_test(alternative):
    d = np.array([-3, -3, -1, 2, -2, -5, -1, 0, -4, 3, 0, -2], dtype=float)
    ours = signed_rank(d, alternative)
    nonzero = d[d != 0]
    ranks = sps.rankdata(np.abs(nonzero))
    theirs = sps.permutation_test(
        (nonzero,),
        lambda x, axis: (ranks * (x > 0)).sum(axis=axis),
        permutation_type="samples",
        alternative=alternative,
        n_resamples=np.inf,
        vectorized=True,
    )
    assert ours.method == "exact (permutation, tied ranks)" and ours.zeros == 2 and ours.n == 10
    assert ours.p == pytest.approx(theirs.pvalue, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-4, 4), min_size=1, max_size=10),
    st.sampled_from(["two-sided", "less", "greater"]),
)
def test_signed_rank_equals_brute_force_enumeration(values, alternative):
    result = signed_rank(values, alternative)
    if all(v == 0 for v in values):
        assert result.p == 1.0 and "no non-zero" in result.method
    else:
        assert result.p == pytest.approx(brute_force_p(values, alternative), abs=1e-12)
        assert result.p >= result.p_floor - 1e-15


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_normal_approximation_above_50_matches_scipy(alternative):
    d = np.random.default_rng(2).integers(-6, 4, 80).astype(float)  # many ties and zeros
    ours = signed_rank(d, alternative)
    theirs = sps.wilcoxon(
        d, alternative=alternative, method="approx", correction=True, zero_method="wilcox"
    )
    assert ours.method == "normal approximation" and ours.n > 50
    assert ours.p == pytest.approx(theirs.pvalue, rel=1e-9)


def test_exact_at_50_nonzero_and_normal_at_51():
    assert signed_rank(np.r_[np.arange(1.0, 51), 0.0]).method == "exact"
    assert signed_rank(np.arange(1.0, 52)).method == "normal approximation"


def test_all_zero_differences_give_p_one():
    runs = runs_from({"relu": [5, 6, 7], "elu": [5, 6, 7]})
    row = paired_comparisons(runs, "relu").table.iloc[0]
    assert row["wilcoxon_p"] == 1.0 and row["zeros_dropped"] == 3
    assert (row["wins"], row["ties"], row["losses"]) == (0, 3, 0)
    assert "no non-zero differences" in row["wilcoxon_method"] and row["verdict"] == "no evidence"
    assert pd.isna(row["seeds_for_80_power"])


def test_differences_use_integer_counts_not_float_fractions():
    size = 10
    a, b = [3, 2, 7, 9, 1], [2, 1, 6, 7, 4]  # |d| = 1, 1, 1, 2, 3: three tied
    runs = runs_from({"relu": b, "elu": a}, size=size)
    # Fractions as a float pipeline might leave them: (0.3-0.2 != 0.2-0.1), here nudged so that
    # no two float differences are equal.
    runs["test_error"] = runs["test_errors"].astype(float) / size + np.arange(len(runs)) * 1e-12
    row = paired_comparisons(runs, "relu").table.iloc[0]
    d = np.subtract(a, b)
    assert row["wilcoxon_method"] == "exact (permutation, tied ranks)"
    assert (row["wins"], row["ties"], row["losses"]) == (1, 0, 4)
    assert row["wilcoxon_p"] == pytest.approx(brute_force_p(d, "two-sided"))
    assert row["mean_diff_pp"] == pytest.approx(d.mean() * 100 / size, abs=1e-12)


def test_autoencoder_falls_back_to_float_errors():
    runs = runs_from({"relu": [1, 2, 3, 4], "elu": [2, 2, 5, 9]}, task="autoencoder")
    # Reconstruction errors; dyadic values, so the float differences are exact.
    runs["test_error"] = [0.5, 0.25, 0.75, 1.0, 0.625, 0.375, 0.625, 1.5]
    runs["test_errors"] = pd.array([pd.NA] * 8, dtype="Int64")
    row = paired_comparisons(runs, "relu").table.iloc[0]
    d = np.array([0.125, 0.125, -0.125, 0.5])
    assert row["mean_diff_pp"] == pytest.approx(d.mean() * 100)
    assert row["wilcoxon_method"] == "exact (permutation, tied ranks)"  # |0.125| three times
    assert row["wilcoxon_p"] == pytest.approx(brute_force_p(d, "two-sided"))


# --- paired comparisons -----------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_t_test_matches_scipy(alternative):
    rng = np.random.default_rng(3)
    base = rng.integers(300, 400, 9)
    a, b = base - rng.integers(-5, 15, 9), base
    runs = runs_from({"relu": list(b), "elu": list(a)})
    row = paired_comparisons(runs, "relu", alternative=alternative).table.iloc[0]
    theirs = sps.ttest_rel(a, b, alternative=alternative)
    assert row["t_stat"] == pytest.approx(theirs.statistic) and row["t_p"] == pytest.approx(
        theirs.pvalue
    )


def test_confidence_interval_effect_sizes_by_hand():
    runs = runs_from({"relu": [10, 10, 10, 10], "elu": [9, 8, 7, 14]}, size=100)  # d = -1,-2,-3,+4
    row = paired_comparisons(runs, "relu").table.iloc[0]
    sd = math.sqrt(((0.5**2) + (1.5**2) + (2.5**2) + (4.5**2)) / 3)  # mean -0.5
    half = 3.182446305284263 * sd / 2  # t(0.975, 3), se = sd / sqrt(4)
    assert row["mean_diff_pp"] == pytest.approx(-0.5)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.5 - half, -0.5 + half))
    assert row["median_diff_pp"] == pytest.approx(-1.5)
    assert row["d_z"] == pytest.approx(-0.5 / sd)
    assert row["wilcoxon_stat"] == 4 and row["rank_biserial"] == pytest.approx((4 - 6) / 10)
    assert (row["wins"], row["ties"], row["losses"]) == (3, 0, 1)


def test_all_pairs_and_holm_family():
    runs = runs_from(
        {
            "relu": [50, 51, 52, 53, 54, 55],
            "elu": [40, 42, 41, 43, 47, 44],
            "lrelu": [49, 50, 53, 52, 52, 56],
        }
    )
    result = paired_comparisons(runs, "relu", all_pairs=True, q_values=True)
    t = result.table
    assert list(zip(t["a"], t["b"])) == [("relu", "elu"), ("relu", "lrelu"), ("elu", "lrelu")]
    assert result.family_size == 3 and result.baseline is None
    assert t["p_holm"].to_numpy() == pytest.approx(holm(t["wilcoxon_p"]))
    assert t["q_bh"].to_numpy() == pytest.approx(bh(t["wilcoxon_p"]))
    assert t.loc[0, "verdict"] == "no evidence"  # 6 seeds: floor 2/64 > 0.05/3
    assert "q_bh" not in paired_comparisons(runs, "relu").table


def test_verdict_follows_side_and_sign():
    runs = runs_from({"relu": [20 + i for i in range(8)], "elu": [10 + i for i in range(8)]})
    assert paired_comparisons(runs, "relu", alternative="less").table.loc[0, "verdict"] == "better"
    worse = paired_comparisons(runs, "elu", alternative="greater").table.loc[0]
    assert (worse["a"], worse["verdict"]) == ("relu", "worse")
    wrong_side = paired_comparisons(runs, "relu", alternative="greater").table.loc[0]
    assert wrong_side["wilcoxon_p"] == 1.0 and wrong_side["verdict"] == "no evidence"
    assert pd.isna(wrong_side["seeds_for_80_power"])
    # Ten small losses and one huge win: Wilcoxon ("greater") finds a worse, the mean says better.
    # The verdict follows the test it names, and the row says the mean points the other way.
    mixed = runs_from({"relu": [100] * 11, "elu": [101 + i for i in range(10)] + [0]})
    row = paired_comparisons(mixed, "relu", alternative="greater").table.loc[0]
    assert row["p_holm"] < 0.05 and row["mean_diff_pp"] < 0 and row["verdict"] == "worse"
    assert any("points the other way" in note for note in row["notes"])


def brute_force_seeds(dz, alpha, alternative):
    for n in range(2, 10_000):
        df, nc = n - 1, dz * math.sqrt(n)
        if alternative == "two-sided":
            crit = sps.t.ppf(1 - alpha / 2, df)
            power = sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc)
        else:
            power = sps.nct.cdf(sps.t.ppf(alpha, df), df, nc)  # "less"
        if power >= 0.8:
            return n
    return None


@pytest.mark.parametrize(
    "dz,alternative",
    [(-0.9, "two-sided"), (0.45, "two-sided"), (-0.6, "less"), (-3.0, "two-sided")],
)
def test_seeds_for_80_power_matches_brute_force_nct(dz, alternative):
    assert seeds_for_power(dz, 0.05, alternative) == brute_force_seeds(dz, 0.05, alternative)


def test_seeds_for_80_power_in_the_table_and_undefined_cases():
    runs = runs_from({"relu": [10, 10, 10, 10, 10], "elu": [9, 8, 11, 7, 9]})
    row = paired_comparisons(runs, "relu").table.iloc[0]
    # the primary test's need: the t-test's seeds over the efficiency bound 0.864, and at least
    # the 6 seeds whose floor reaches 0.05
    n_t = brute_force_seeds(row["d_z"], 0.05, "two-sided")
    assert row["seeds_for_80_power"] == max(math.ceil(n_t / 0.864), 6)
    assert seeds_for_power(0.0, 0.05) is None and seeds_for_power(math.nan, 0.05) is None
    assert seeds_for_power(0.5, 0.05, "less") is None


def test_cannot_reach_when_no_comparison_can_be_significant():
    runs = runs_from(
        {
            "relu": [30 + i for i in range(6)],
            "elu": [20 + i for i in range(6)],
            "lrelu": [25 + i for i in range(6)],
        }
    )
    result = compare(runs)
    assert result.paired.table["cannot_reach"].all()  # floor 2/64 = 0.031 > 0.05 / 2
    assert any(
        "activation comparisons: no comparison can reach significance: with 6 non-zero "
        "paired seeds the smallest p is 0.031, above the strictest Holm level 0.025" in w
        for w in result.warnings
    )
    ten = runs_from(
        {
            "relu": [30 + i for i in range(10)],
            "elu": [20 + i for i in range(10)],
            "lrelu": [25 + i for i in range(10)],
        }
    )
    assert not compare(ten).paired.table["cannot_reach"].any()
    assert not any("can reach" in w for w in compare(ten).warnings)


def test_cannot_reach_looks_at_every_holm_order():
    # lrelu vs relu: 6 seeds, 6 wins: floor = 2/64 = 0.031, between alpha/2 and alpha. It can be
    # significant only in second place, behind elu; elu's floor (10 seeds: 0.002) allows that.
    strong = runs_from({"relu": [30] * 10, "elu": [20] * 10, "lrelu": [20] * 6 + [None] * 4})
    t = compare(strong).paired.table.set_index("a")
    assert not t["cannot_reach"].any() and (t["verdict"] == "better").all()
    # With weak data for elu, lrelu still *could* be significant (if elu had been strong): the
    # flag is about what any outcome could give, and the verdict about what this one gave.
    weak = runs_from(
        {
            "relu": [30] * 10,
            "elu": [29, 31, 28, 32, 30, 27, 33, 31, 29, 30],
            "lrelu": [20] * 6 + [None] * 4,
        }
    )
    result = compare(weak)
    t = result.paired.table.set_index("a")
    assert not t["cannot_reach"].any()
    assert t.loc["lrelu", "best_holm_p"] == pytest.approx(0.0625 / 2)
    assert t.loc["lrelu", "verdict"] == "no evidence" and t.loc["lrelu", "p_holm"] == pytest.approx(
        0.0625
    )
    # lrelu alone: 6 seeds against a family of 3 where every other floor is as high: no order helps
    alone = runs_from({"relu": [30] * 6, "elu": [20] * 6, "lrelu": [20] * 6, "srelu": [20] * 6})
    t = compare(alone).paired.table
    assert t["cannot_reach"].all() and t["best_holm_p"].tolist() == pytest.approx([3 * 0.03125] * 3)


# --- Friedman ---------------------------------------------------------------------------------


def test_friedman_matches_scipy_with_ties():
    rng = np.random.default_rng(4)
    table = {
        c: list(rng.integers(10, 14, 9) + shift)
        for c, shift in (("relu", 1), ("elu", 0), ("lrelu", 1), ("srelu", 2))
    }
    result = friedman(runs_from(table))
    theirs = sps.friedmanchisquare(*table.values())
    assert result.statistic == pytest.approx(theirs.statistic)
    assert result.method.startswith("exact")  # 9 seeds x 4 configurations: exact is feasible
    n, k, chi2 = 9, 4, result.statistic
    f = (n - 1) * chi2 / (n * (k - 1) - chi2)
    assert result.f_statistic == pytest.approx(f)
    assert result.f_p == pytest.approx(sps.f.sf(f, 3, 24))
    ranks = pd.DataFrame(table).rank(axis=1).mean()
    assert result.mean_ranks.to_dict() == pytest.approx(ranks.to_dict())


def test_friedman_mid_ranks_and_incomplete_seeds():
    runs = runs_from({"relu": [5, 7, 9, 1], "elu": [5, 6, None, 2], "lrelu": [7, 8, 9, "diverged"]})
    result = friedman(runs)
    assert result.seeds == [0, 1] and result.n_blocks == 2
    assert result.excluded == {2: "elu failed", 3: "lrelu diverged"}
    assert result.mean_ranks.to_dict() == pytest.approx({"relu": 1.75, "elu": 1.25, "lrelu": 3.0})


# --- descriptives, failures, BN, speed, cost --------------------------------------------------


def test_descriptives_by_hand_and_reference():
    runs = runs_from({"lrelu": [300, 310, 290, None], "relu+bn": [280, 285, 290, "diverged"]})
    table = descriptives(runs, {"lrelu": (30.59, 0.29), "relu": (31.56, 0.37)}).set_index("config")
    row = table.loc["lrelu"]
    assert (row["n_ok"], row["n_failed"], row["n_diverged"]) == (3, 1, 0)
    assert row["mean"] == pytest.approx(30.0) and row["std"] == pytest.approx(1.0)
    half = 4.302652729749464 / math.sqrt(3)  # t(0.975, 2) * std / sqrt(n)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((30 - half, 30 + half))
    assert (row["median"], row["min"], row["max"]) == pytest.approx((30.0, 29.0, 31.0))
    assert (row["ref_mean"], row["ref_std"]) == (30.59, 0.29)
    assert table.loc["relu+bn", "n_diverged"] == 1 and math.isnan(table.loc["relu+bn", "ref_mean"])
    assert list(table.index) == ["lrelu", "relu+bn"]


def test_reference_matches_bare_activation_name_without_bn():
    runs = runs_from(
        {"lrelu(negative_slope=0.1)": [300, 310]}, activation="lrelu(negative_slope=0.1)"
    )
    assert descriptives(runs, {"lrelu": (30.59, 0.29)}).loc[0, "ref_mean"] == 30.59


def test_failed_runs_are_counted_but_left_out_of_the_tests():
    relu = [50 + i for i in range(10)]
    elu = [40 + i for i in range(8)] + [None, "diverged"]
    result = compare(runs_from({"relu": relu, "elu": elu}))
    row = result.paired.table.iloc[0]
    assert row["n_pairs"] == 8 and row["wilcoxon_p"] == 2 / 256
    d = result.descriptives.set_index("config").loc["elu"]
    assert (d["n_ok"], d["n_failed"], d["n_diverged"]) == (8, 1, 1)
    assert any("2 run(s) did not finish ok" in w and "elu 1 diverged" in w for w in result.warnings)
    assert any("8 (elu failed); 9 (elu diverged)" in w for w in result.warnings)
    assert "2 runs that failed or diverged were excluded" in result.methods


def test_bn_interaction_difference_of_differences():
    relu, relu_bn = [50, 52, 54, 56, 58], [45, 46, 50, 49, 55]  # BN effect -5,-6,-4,-7,-3
    elu, elu_bn = [40, 41, 42, 43, 44], [41, 40, 42, 44, 44]  # BN effect  1,-1, 0, 1, 0
    runs = runs_from({"relu": relu, "relu+bn": relu_bn, "elu": elu, "elu+bn": elu_bn}, size=100)
    result = bn_interaction(runs, "relu")
    effects = result.effects.set_index("activation")
    assert effects.loc["relu", "mean_diff_pp"] == pytest.approx(-5.0)
    assert effects.loc["elu", "mean_diff_pp"] == pytest.approx(0.2)
    dd = (np.subtract(elu_bn, elu) - np.subtract(relu_bn, relu)).astype(float)
    row = result.contrasts.iloc[0]
    assert (row["a"], row["b"]) == ("elu", "relu")
    assert row["mean_diff_pp"] == pytest.approx(dd.mean())
    assert row["t_p"] == pytest.approx(sps.ttest_1samp(dd, 0).pvalue)
    assert row["wilcoxon_p"] == pytest.approx(brute_force_p(dd, "two-sided"))


def test_bn_interaction_within_each_init():
    runs = runs_from(
        {
            "relu/he": [5, 6, 7],
            "relu+bn/he": [4, 4, 4],
            "relu/xavier": [9, 9, 9],
            "relu+bn/xavier": [9, 10, 11],
        }
    )
    effects = bn_interaction(runs).effects.set_index("init")
    assert effects.loc["he", "mean_diff_pp"] == pytest.approx(-0.2)
    assert effects.loc["xavier", "mean_diff_pp"] == pytest.approx(0.1)
    assert bn_interaction(runs).contrasts.empty


def test_learning_speed():
    runs = runs_from({"relu": [400, 300], "elu": [200, 250]}, size=1000)
    metrics = pd.DataFrame(
        [
            (run, it, err)
            for run, curve in {
                "relu-s0": [0.9, 0.5, 0.4],
                "relu-s1": [0.8, 0.32, 0.3],
                "elu-s0": [0.6, 0.3, 0.2],
                "elu-s1": [0.34, 0.3, 0.25],
            }.items()
            for it, err in zip((100, 200, 300), curve)
        ],
        columns=["run_id", "iteration", "test_error"],
    )
    result = learning_speed(runs, metrics)  # target: relu's mean final error, 0.35
    assert result.target == pytest.approx(0.35) and "relu" in result.target_source
    table = result.table.set_index("config")
    assert (table.loc["relu", "n"], table.loc["relu", "n_reached"]) == (2, 1)
    assert table.loc["relu", "mean_iterations"] == 200
    assert (
        table.loc["elu", "mean_iterations"] == 150 and table.loc["elu", "median_iterations"] == 150
    )
    given = learning_speed(runs, metrics, target=0.3)  # "at or below": 0.3 itself counts
    assert given.target_source == "given"
    assert given.per_run.set_index("run_id")["iterations"].to_dict() == pytest.approx(
        {"relu-s0": math.nan, "relu-s1": 300, "elu-s0": 200, "elu-s1": 200}, nan_ok=True
    )


def test_cost_relative_to_relu_at_the_same_bn():
    runs = runs_from({"relu": [1, 2], "elu": [1, 2], "elu+bn": [1, 2]})
    runs["images_per_second"] = [1000.0, 1000.0, 950.0, 850.0, 800.0, 800.0]
    table = cost(runs).set_index("config")
    assert table.loc["relu", "time_per_image_vs_relu"] == 1.0
    assert table.loc["elu", "time_per_image_vs_relu"] == pytest.approx(1000 / 900)
    assert math.isnan(table.loc["elu+bn", "time_per_image_vs_relu"])


# --- compare, methods text, errors ------------------------------------------------------------


def test_compare_default_baseline_and_methods_text():
    runs = runs_from(
        {"elu": [1, 2, 3], "relu": [2, 3, 4], "relu+bn": [3, 3, 3], "elu+bn": [4, 4, 4]}
    )
    result = compare(runs, alternative="less", q_values=True)
    assert result.baseline == "relu" and result.spec_name == "s"
    assert compare(runs_from({"elu": [1, 2], "lrelu": [2, 3]})).baseline == "elu"
    text = result.methods
    for phrase in (
        "3 ok runs (seeds) per configuration",
        "same initial weight draws, data order and augmentation",
        "Wilcoxon signed-rank",
        "one-sided",
        "Holm",
        "Benjamini-Hochberg",
        "alpha = 0.05",
        "zero differences were dropped",
        "at the same BN setting",
        "direction of the Wilcoxon statistic",
        "d_z",
        "rank-biserial",
        f"SciPy {__import__('scipy').__version__}",
        "pandas",
        "Friedman",
    ):
        assert phrase in text, phrase
    assert methods_text(result.paired, result.descriptives) != text  # without Friedman and BN
    assert result.bn is not None and result.friedman is not None and result.speed is None


def test_a_matrix_with_no_ok_run_yet_is_a_table_not_an_error():
    result = compare(runs_from({"relu": [None, "diverged"], "elu": [None, 3]}))
    assert result.descriptives.set_index("config").loc["relu", "n_ok"] == 0
    assert result.paired.table["verdict"].tolist() == ["not testable"]
    assert result.speed is None and "No comparison could be tested yet" in result.methods
    one = compare(runs_from({"relu": [1, 2, 3], "elu": [1, None, "diverged"]}))
    [row] = one.paired.table.to_dict("records")
    assert row["verdict"] == "not testable" and row["n_pairs"] == 1
    assert "a test needs 2 or more" in row["notes"][0]
    assert any("elu vs relu: 1 paired seed" in w for w in one.warnings)


def test_errors():
    with pytest.raises(
        StatsError, match="baseline 'gelu' is neither an activation nor a configuration"
    ):
        compare(runs_from({"relu": [1, 2], "elu": [1, 2]}), baseline="gelu")
    two_specs = pd.concat(
        [runs_from({"relu": [1, 2]}, spec="a"), runs_from({"relu": [1, 2]}, spec="b")]
    )
    with pytest.raises(StatsError, match="more than one spec"):
        compare(two_specs)
    with pytest.raises(StatsError, match="alternative"):
        compare(runs_from({"relu": [1, 2], "elu": [1, 2]}), alternative="smaller")


def test_compare_is_fast_on_2000_runs():
    rng = np.random.default_rng(5)
    base = rng.integers(2800, 3200, 250)
    configs = [f"{a}{bn}" for a in ("elu", "relu", "lrelu", "srelu") for bn in ("", "+bn")]
    runs = runs_from(
        {c: list(base + rng.integers(-40, 40, 250) + 10 * i) for i, c in enumerate(configs)},
        size=10000,
    )
    compare(runs_from({"relu": [1, 2], "elu": [2, 3]}))  # imports scipy.stats outside the clock
    start = time.perf_counter()
    result = compare(runs, all_pairs=True)
    assert time.perf_counter() - start < 30.0  # generous: a busy CI machine must not fail it
    assert len(result.paired.table) == 28 and set(result.paired.table["wilcoxon_method"]) == {
        "normal approximation"
    }


def test_a_configuration_without_ok_runs_does_not_hide_the_others():
    import pandas as pd

    rows = []
    for seed in range(6):
        for config, errors in (("relu", 50 + seed), ("elu", 40 + seed), ("srelu", None)):
            rows.append(
                {
                    "spec_name": "s",
                    "run_id": f"{config}-{seed}",
                    "config": config,
                    "activation": config,
                    "batchnorm": False,
                    "init": "he",
                    "seed": seed,
                    "status": "ok" if errors is not None else "diverged",
                    "task": "classification",
                    "test_errors": errors,
                    "test_size": 1000,
                    "test_error": None if errors is None else errors / 1000,
                    "train_loss": 0.1,
                    "iterations": 10,
                    "wall_seconds": 1.0,
                    "images_per_second": 100.0,
                }
            )
    runs = pd.DataFrame(rows)
    runs["test_errors"] = runs["test_errors"].astype("Int64")
    from elubench.stats.summary import compare

    result = compare(runs, baseline="relu")
    table = result.paired.table.set_index("a")
    assert table.loc["elu", "verdict"] == "better"
    assert table.loc["srelu", "verdict"] == "not testable"
    assert any("not tested: srelu vs relu" in w for w in result.warnings)
