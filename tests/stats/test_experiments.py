"""Statistics across experiments (issue 11) against Demšar (2006)'s worked example, scipy,
statsmodels and brute-force enumeration; and the summary's rules on hand-written runs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import runs_from
from scipy import stats as sps

from elubench.core.errors import StatsError
from elubench.stats.experiments import ExperimentResult, across_experiments
from elubench.stats.meta import random_effects
from elubench.stats.omnibus import friedman_test
from elubench.stats.ranks import nemenyi, rank_difference_test
from elubench.stats.summary import compare

# Demšar 2006, Table 6: AUC of C4.5 with four settings on 14 UCI data sets (higher = better).
DEMSAR_NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DEMSAR_AUC = np.array(
    [
        [0.763, 0.768, 0.771, 0.798],
        [0.599, 0.591, 0.590, 0.569],
        [0.954, 0.971, 0.968, 0.967],
        [0.628, 0.661, 0.654, 0.657],
        [0.882, 0.888, 0.886, 0.898],
        [0.936, 0.931, 0.916, 0.931],
        [0.661, 0.668, 0.609, 0.685],
        [0.583, 0.583, 0.563, 0.625],
        [0.775, 0.838, 0.866, 0.875],
        [1.000, 1.000, 1.000, 1.000],
        [0.940, 0.962, 0.965, 0.962],
        [0.619, 0.666, 0.614, 0.669],
        [0.972, 0.981, 0.975, 0.975],
        [0.957, 0.978, 0.946, 0.970],
    ]
)
LOWER_IS_BETTER = -DEMSAR_AUC  # elubench ranks errors: rank 1 = lowest


# --- Demšar's worked example ------------------------------------------------------------------


def test_mean_ranks_and_friedman_of_the_worked_example():
    test = friedman_test(LOWER_IS_BETTER)
    # The table's own ranks. The paper prints 2.893 and 1.964 for the last two: one data set's
    # tie is ranked differently there (its chi-square, 9.28, follows from those rounded ranks).
    assert test.mean_ranks == pytest.approx((3.143, 2.000, 2.929, 1.929), abs=5e-4)
    assert test.statistic == pytest.approx(sps.friedmanchisquare(*LOWER_IS_BETTER.T).statistic)
    assert test.p < 0.05  # the paper: the null hypothesis is rejected


@pytest.mark.parametrize(
    "k, alpha, published",
    [
        (2, 0.05, 1.960),
        (3, 0.05, 2.343),
        (4, 0.05, 2.569),
        (5, 0.05, 2.728),
        (6, 0.05, 2.850),
        (7, 0.05, 2.949),
        (8, 0.05, 3.031),
        (9, 0.05, 3.102),
        (10, 0.05, 3.164),
        (2, 0.10, 1.645),
        (4, 0.10, 2.291),
        (10, 0.10, 2.920),
    ],
)
def test_nemenyi_critical_values_match_demsars_table_5a(k, alpha, published):
    result = nemenyi({str(i): float(i) for i in range(k)}, 10, alpha)
    assert result.q_alpha == pytest.approx(published, abs=1.5e-3)  # the table rounds to 3 places


def test_nemenyi_on_the_worked_example():
    ranks = dict(zip(DEMSAR_NAMES, friedman_test(LOWER_IS_BETTER).mean_ranks))
    at_05 = nemenyi(ranks, 14, 0.05)
    assert at_05.critical_difference == pytest.approx(1.25, abs=5e-3)  # the paper's CD
    assert at_05.cliques == [["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]  # no pair differs
    at_10 = nemenyi(ranks, 14, 0.10)
    assert at_10.critical_difference == pytest.approx(1.12, abs=5e-3)
    # the paper's Figure 1: C4.5 is worse than C4.5+m and C4.5+m+cf; C4.5+cf joins either group
    assert at_10.cliques == [["C4.5+m+cf", "C4.5+m", "C4.5+cf"], ["C4.5+cf", "C4.5"]]


def test_holm_against_the_control_reaches_the_papers_decisions():
    """Demšar: with C4.5 as the control, Holm's procedure finds C4.5+m and C4.5+m+cf better and
    C4.5+cf not, with z = (R_i - R_j) / sqrt(k (k + 1) / (6 N))."""
    from elubench.stats.paired import holm

    se = math.sqrt(4 * 5 / (6 * 14))
    ranks = friedman_test(LOWER_IS_BETTER).mean_ranks
    tests = [rank_difference_test(LOWER_IS_BETTER, j, 0) for j in (1, 2, 3)]
    for j, test in zip((1, 2, 3), tests):
        assert test.z == pytest.approx((ranks[j] - ranks[0]) / se)
        assert test.p_z == pytest.approx(2 * sps.norm.sf(abs(test.z)))
    assert [t.p_z < 0.05 for t in tests] == [True, False, True]
    assert list(holm([t.p_z for t in tests]) <= 0.05) == [True, False, True]
    assert list(holm([t.p for t in tests]) <= 0.05) == [
        True,
        False,
        True,
    ]  # exact: the same decisions


# --- the exact rank-sum difference against enumeration ----------------------------------------


def _brute_rank_difference(values, a, b, alternative):
    r = sps.rankdata(values, axis=1)
    observed = r[:, a].sum() - r[:, b].sum()
    per_block = [
        [(row[list(p)][a] - row[list(p)][b]) for p in itertools.permutations(range(len(row)))]
        for row in r
    ]
    totals = np.array([sum(c) for c in itertools.product(*per_block)])
    if alternative == "less":
        return np.mean(totals <= observed + 1e-9)
    if alternative == "greater":
        return np.mean(totals >= observed - 1e-9)
    return np.mean(np.abs(totals) >= abs(observed) - 1e-9)


@pytest.mark.parametrize(
    "values",
    [
        [[1, 2, 3], [2, 1, 3], [1, 3, 2]],
        [[1, 1, 3], [2, 1, 2], [5, 4, 3], [0, 0, 0]],  # ties, and a block of all ties
        [[3, 1, 2, 4], [1, 2, 4, 3], [2, 2, 1, 5]],
    ],
)
@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_exact_rank_difference_equals_enumeration(values, alternative):
    values = np.asarray(values, dtype=float)
    for a, b in itertools.permutations(range(values.shape[1]), 2):
        got = rank_difference_test(values, a, b, alternative)
        assert got.p_exact == pytest.approx(
            _brute_rank_difference(values, a, b, alternative), abs=1e-12
        )


def test_rank_difference_uses_z_above_fifty_blocks():
    values = np.random.default_rng(1).normal(size=(60, 3))
    test = rank_difference_test(values, 0, 1)
    assert test.p_exact is None and test.p == test.p_z and "normal" in test.method


# --- the random-effects meta-analysis against statsmodels --------------------------------------


@pytest.mark.parametrize(
    "effects, variances",
    [
        ([-0.5, -1.2, 0.3], [0.04, 0.3, 0.1]),  # heterogeneous: HKSJ scale > 1
        ([-0.5, -0.45, -0.55, -0.5], [0.2, 0.3, 0.25, 0.1]),  # homogeneous: tau^2 = 0, scale < 1
        ([-0.2, -0.9, -0.4, -0.6, -1.4], [0.05, 0.08, 0.02, 0.1, 0.06]),
        ([1.0, 3.0], [0.5, 0.5]),
    ],
)
def test_random_effects_matches_statsmodels(effects, variances):
    from statsmodels.stats.meta_analysis import combine_effects

    ours = random_effects(effects, variances)
    ref = combine_effects(np.array(effects), np.array(variances), method_re="dl")
    # statsmodels leaves DerSimonian-Laird's tau^2 negative when Q < k - 1; the estimator
    # truncates it at 0, where the random-effects model is the fixed-effect one
    truncated = ref.tau2 <= 0
    assert ours.tau2 == pytest.approx(max(0.0, ref.tau2))
    estimate, plain, hksj = (
        (ref.mean_effect_fe, ref.sd_eff_w_fe, ref.sd_eff_w_fe_hksj)
        if truncated
        else (ref.mean_effect_re, ref.sd_eff_w_re, ref.sd_eff_w_re_hksj)
    )
    assert ours.estimate == pytest.approx(estimate)
    assert ours.q == pytest.approx(ref.q)
    assert ours.i2 == pytest.approx(max(0.0, ref.i2))
    assert ours.q_p == pytest.approx(ref.test_homogeneity().pvalue)
    assert ours.se_plain == pytest.approx(plain)
    # modified HKSJ: statsmodels' HKSJ standard error, never below the plain one
    assert ours.se == pytest.approx(max(hksj, plain))
    k = len(effects)
    half = sps.t.ppf(0.975, k - 1) * ours.se
    assert (ours.ci_low, ours.ci_high) == pytest.approx(
        (ours.estimate - half, ours.estimate + half)
    )
    assert ours.p == pytest.approx(2 * sps.t.sf(abs(ours.estimate / ours.se), k - 1))
    assert sum(ours.weights) == pytest.approx(1.0)


def test_random_effects_refuses_what_it_cannot_weigh():
    for effects, variances in (
        ([1.0], [0.1]),
        ([1.0, 2.0], [0.1, 0.0]),
        ([1.0, math.nan], [0.1, 0.1]),
    ):
        with pytest.raises(ValueError):
            random_effects(effects, variances)


def test_one_sided_meta_p():
    less = random_effects([-1.0, -0.8, -1.2], [0.1, 0.1, 0.1], "less")
    greater = random_effects([-1.0, -0.8, -1.2], [0.1, 0.1, 0.1], "greater")
    assert less.p < 0.05 < greater.p and less.p + greater.p == pytest.approx(1.0)


# --- the summary on hand-written experiments ---------------------------------------------------


def _experiment(name, errors, size=1000, baseline="relu", task="classification"):
    runs = runs_from(errors, size=size, spec=name, task=task)
    return ExperimentResult(name, runs, compare(runs, baseline=baseline))


def _three(**extra):
    """elu better than relu in every experiment (a clean sweep at n = 5), lrelu in between."""
    a = _experiment(
        "a",
        {
            "elu": [50, 52, 49, 51, 50],
            "relu": [60, 61, 59, 62, 60],
            "lrelu(0.1)": [55, 57, 56, 58, 54],
            **extra,
        },
    )
    b = _experiment(
        "b",
        {
            "elu": [20, 21, 22, 19, 20],
            "relu": [25, 27, 26, 24, 28],
            "lrelu(0.1)": [24, 23, 25, 26, 22],
        },
    )
    c = _experiment(
        "c",
        {
            "elu": [300, 310, 305, 298, 302],
            "relu": [320, 330, 325, 315, 322],
            "lrelu(0.1)": [310, 312, 318, 309, 311],
        },
        size=5000,
    )
    return [a, b, c]


def test_a_clean_sweep_over_three_experiments():
    result = across_experiments(_three(), "relu")
    assert result.configs == ["elu", "relu", "lrelu(0.1)"]
    assert result.ranks.loc[:, "elu"].tolist() == [1.0, 1.0, 1.0]
    assert result.friedman.k == 3 and result.friedman.n == 3
    row = result.posthoc.set_index("a").loc["elu"]
    # at 5 seeds and 2 comparisons no experiment alone can reach Holm's alpha (the exact
    # Wilcoxon floor is 2/32 = 0.0625): each says "no evidence", and the summaries still see it
    assert (row["wins"], row["ties"], row["losses"], row["untestable"]) == (0, 3, 0, 0)
    assert row["verdict"] == "better"
    assert row["mean_rank_a"] == 1.0 and row["mean_rank_b"] == 3.0
    # the exact p of ranks 1 vs 3 in all 3 experiments: 2 x (1/6)^3
    assert row["p_exact"] == pytest.approx(2 / 6**3)
    assert "all 3 experiments give the same ranks" in result.friedman.method
    # the effects differ threefold (I^2 0.99): with 3 experiments, t on 2 df, the pooled mean
    # difference is too uncertain for a verdict although every experiment points the same way
    meta = result.meta.set_index("a").loc["elu"]
    assert meta["estimate"] < 0 and meta["k"] == 3 and meta["i2"] > 0.9
    assert meta["verdict"] == "no evidence" and meta["ci_high"] > 0
    per = result.per_experiment[(result.per_experiment["a"] == "elu")].set_index("experiment")
    assert per.loc["a", "mean_diff"] == pytest.approx(
        -1.0
    )  # (-10 - 9 - 10 - 11 - 10) / 5 errors of 1,000
    assert per.loc["c", "mean_diff"] == pytest.approx(np.mean([-20, -20, -20, -17, -20]) / 50)
    assert per["weight"].sum() == pytest.approx(1.0)
    assert "Demšar" in result.methods and "Hartung-Knapp" in result.methods


def test_a_consistent_effect_is_found_by_the_pool():
    rng = np.random.default_rng(5)
    experiments = []
    for name in "pqrs":
        base = rng.integers(40, 80, 8)
        experiments.append(
            _experiment(name, {"relu": list(base), "elu": list(base - 3 + rng.integers(-2, 3, 8))})
        )
    meta = across_experiments(experiments, "relu").meta.iloc[0]
    assert meta["estimate"] == pytest.approx(-0.3, abs=0.08) and meta["verdict"] == "better"
    assert meta["i2"] < 0.5


def test_verdicts_never_contradict_their_tests():
    """Across random experiments each verdict follows its own test: better or worse exactly
    where the Holm p is at most alpha, by the sign of the test's direction. The draws reach
    every branch (checked), so the test cannot pass by never meeting a significant row."""
    rng = np.random.default_rng(3)
    seen = {"posthoc": set(), "meta": set()}
    for shift in (0, 0, 1, 2, 4, 8, 0, 3, 6, 12):  # from no effect to a clean sweep
        experiments = []
        for name in "pqrstuvwxyzo":  # 12: enough blocks for the rank test to reach alpha
            base = rng.integers(40, 80, 6)
            experiments.append(
                _experiment(
                    name,
                    {
                        "relu": list(base),
                        "elu": list(base - shift + rng.integers(-4, 5, 6)),
                        "selu": list(base + shift + rng.integers(-4, 5, 6)),
                    },
                )
            )
        result = across_experiments(experiments, "relu", alpha=0.1)
        for kind, frame, direction in (
            (
                "posthoc",
                result.posthoc,
                result.posthoc["mean_rank_a"] - result.posthoc["mean_rank_b"],
            ),
            ("meta", result.meta, result.meta["estimate"]),
        ):
            for (_, row), d in zip(frame.iterrows(), direction):
                if row["p_holm"] <= 0.1:
                    expected = "better" if d < 0 else "worse" if d > 0 else "no evidence"
                else:
                    expected = "no evidence"
                assert row["verdict"] == expected, (kind, row.to_dict())
                seen[kind].add(expected)
    assert seen == {
        "posthoc": {"better", "worse", "no evidence"},
        "meta": {"better", "worse", "no evidence"},
    }


def test_configurations_not_in_every_experiment_are_named():
    experiments = _three(srelu=[51, 50, 53, 52, 49])
    result = across_experiments(experiments, "relu")
    assert "srelu" not in result.configs and result.left_out == {"srelu": ["a"]}
    assert any("srelu (only in a)" in w for w in result.warnings)


def test_no_shared_configuration_is_one_message():
    a = _experiment("a", {"elu": [1, 2, 3], "relu": [2, 3, 4]})
    b = _experiment("b", {"selu": [1, 2, 3], "tanh": [2, 3, 4]}, baseline="tanh")
    with pytest.raises(StatsError, match="share no configuration") as info:
        across_experiments([a, b], None)
    assert "a: elu, relu" in info.value.hint and "b: selu, tanh" in info.value.hint


def test_one_experiment_is_refused_saying_what_is_missing():
    with pytest.raises(StatsError, match="needs two or more; there is one here") as info:
        across_experiments(_three()[:1], "relu")
    assert "elubench run" in info.value.hint


def test_a_baseline_absent_from_one_experiment_is_named():
    a = _experiment("a", {"elu": [1, 2, 3], "relu": [2, 3, 4]})
    b = _experiment("b", {"elu": [1, 2, 3], "selu": [2, 3, 4]}, baseline="selu")
    with pytest.raises(StatsError, match=r"baseline 'relu' is not in experiment\(s\) b"):
        across_experiments([a, b], "relu")


def test_zero_variance_and_missing_seeds_are_left_out_of_the_pool_by_name():
    a = _experiment(
        "a", {"elu": [50, 51, 52], "relu": [52, 53, 54], "selu": [1, 2, 3]}
    )  # always -2: variance 0
    b = _experiment(
        "b", {"elu": [20, 21, None], "relu": [25, None, 24], "selu": [1, 2, 3]}
    )  # one pair
    c = _experiment("c", {"elu": [30, 31, 33], "relu": [33, 35, 34], "selu": [1, 2, 3]})
    d = _experiment("d", {"elu": [40, 44, 41], "relu": [43, 45, 46], "selu": [1, 2, 3]})
    result = across_experiments([a, b, c, d], "relu")
    meta = result.meta.iloc[0]
    assert meta["k"] == 2 and "a (every seed gives the same difference" in meta["left_out"]
    assert "b (1 paired seed)" in meta["left_out"]
    assert any("meta-analysis of elu vs relu: left out" in w for w in result.warnings)
    per = result.per_experiment
    weights = per[per["a"] == "elu"].set_index("experiment")["weight"]
    assert math.isnan(weights["a"]) and math.isnan(weights["b"])
    assert weights[["c", "d"]].sum() == pytest.approx(1.0)


def test_untestable_experiments_and_ties_in_the_tally():
    a = _experiment(
        "a", {"elu": [50, 60, 55], "relu": [50, 60, 55], "selu": [1, 2, 3]}
    )  # identical
    b = _experiment(
        "b", {"elu": [20, None, None], "relu": [25, 24, 26], "selu": [1, 2, 3]}
    )  # one pair
    c = _experiment("c", {"elu": [1, 2, 3], "relu": [5, 6, 8], "selu": [1, 2, 3]})
    result = across_experiments([a, b, c], "relu")
    row = result.posthoc.iloc[0]
    assert (row["wins"], row["ties"], row["losses"], row["untestable"]) == (
        0,
        2,
        0,
        1,
    )  # 3 seeds: no evidence in c
    elu = result.verdicts[result.verdicts["a"] == "elu"]
    assert elu["experiment"].tolist() == ["a", "b", "c"]
    assert elu["verdict"].tolist() == ["no evidence", "not testable", "no evidence"]


def test_mixed_tasks_skip_the_pool_and_keep_the_ranks():
    a = _experiment("a", {"elu": [50, 51, 53], "relu": [60, 61, 62]})
    b = _experiment("b", {"elu": [20, 21, 23], "relu": [25, 27, 26]}, task="autoencoder")
    result = across_experiments([a, b], "relu")
    assert result.friedman is not None and result.meta.empty and result.per_experiment.empty
    assert "Seed level" not in result.methods
    assert any("mix tasks" in w for w in result.warnings)


def test_all_pairs_reads_each_experiments_verdict_in_either_order():
    a = ExperimentResult(
        "a",
        runs_from(
            {"elu": [1, 2, 3, 4, 5, 6, 7, 8], "relu": [9, 10, 11, 12, 13, 14, 15, 16]}, spec="a"
        ),
        None,
    )
    b = ExperimentResult(
        "b",
        runs_from(
            {"relu": [9, 10, 11, 12, 13, 14, 15, 16], "elu": [1, 2, 3, 4, 5, 6, 7, 8]}, spec="b"
        ),
        None,
    )
    for e in (a, b):
        e.comparison = compare(e.runs, all_pairs=True)
    assert b.comparison.paired.table.iloc[0][["a", "b", "verdict"]].tolist() == [
        "relu",
        "elu",
        "worse",
    ]
    result = across_experiments([a, b], None, all_pairs=True)
    row = result.posthoc.iloc[0]
    assert (row["a"], row["b"], row["wins"], row["losses"]) == ("elu", "relu", 2, 0)


def test_scores_over_fewer_ok_runs_are_named():
    a = _experiment("a", {"elu": [50, 51, 52, 50], "relu": [60, "diverged", None, 61]})
    b = _experiment("b", {"elu": [20, 21, 22, 20], "relu": [25, 27, 26, 24]})
    result = across_experiments([a, b], "relu")
    assert result.scores.loc["a", "relu"] == pytest.approx(6.05)  # (60 + 61) / 2 of 1,000, in %
    assert any(
        "means over the ok runs only" in w and "a: relu (2 of 4 ok)" in w for w in result.warnings
    )
    clean = across_experiments(_three(), "relu")
    assert not any("ok runs only" in w for w in clean.warnings)
