"""Verdicts a reviewer can trust (issue 9): each finding of the independent check, with its data,
plus the rules that make the tables agree with themselves. Nothing here trains."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import make_results, runs_from
from scipy import stats as sps

from elubench.stats.paired import (
    best_holm,
    floor_p,
    holm,
    seeds_to_reach,
    signed_rank,
    wilcoxon_seeds,
)
from elubench.stats.summary import compare

OUTLIER = {"relu": [60] * 20, "elu": [59] * 19 + [260]}  # elu wins 19 of 20 seeds, loses one by 200


def _strict(text: str):
    """Parse JSON as JavaScript's JSON.parse does: no NaN or Infinity tokens."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _row(result, a, b="relu"):
    table = result.paired.table
    return table[(table["a"] == a) & (table["b"] == b)].iloc[0]


# --- 1. the verdict follows the primary test, not the mean --------------------------------------


def test_an_outlier_seed_cannot_turn_19_wins_into_worse():
    result = compare(runs_from(OUTLIER), baseline="relu")
    row = _row(result, "elu")
    assert row["wilcoxon_p"] == pytest.approx(3.7e-4, rel=0.05)  # the figure
    assert row["rank_biserial"] == pytest.approx(-0.81, abs=0.005)
    assert row["mean_diff_pp"] > 0  # the outlier wins the mean
    assert row["verdict"] == "better"  # the Wilcoxon test decides
    assert any("points the other way" in note for note in row["notes"])


def test_one_sided_less_says_better_at_its_own_p():
    result = compare(runs_from(OUTLIER), baseline="relu", alternative="less")
    row = _row(result, "elu")
    assert row["wilcoxon_p"] == pytest.approx(1.8e-4, rel=0.05) and row["verdict"] == "better"
    greater = _row(compare(runs_from(OUTLIER), baseline="relu", alternative="greater"), "elu")
    assert greater["verdict"] == "no evidence"  # the data say less, not greater


def test_the_verdict_never_contradicts_the_test_it_names():
    rng = np.random.default_rng(9)
    for trial in range(40):
        n = int(rng.integers(3, 16))
        base = rng.integers(50, 70, n)
        errors = {
            "relu": list(base),
            "elu": list(base + rng.integers(-6, 4, n)),
            "selu": list(base + rng.integers(-3, 6, n)),
        }
        if trial % 5 == 0:
            errors["elu"][0] += 300  # an outlier seed
        for alternative in ("two-sided", "less", "greater"):
            table = compare(
                runs_from(errors), baseline="relu", alternative=alternative
            ).paired.table
            for _, row in table.iterrows():
                significant = row["p_holm"] <= 0.05
                assert (row["verdict"] in ("better", "worse")) == significant
                if row["verdict"] == "better":
                    assert row["rank_biserial"] < 0 and alternative != "greater"
                if row["verdict"] == "worse":
                    assert row["rank_biserial"] > 0 and alternative != "less"
                assert not (significant and row["cannot_reach"])


# --- 2. comparisons stay within one BN setting ---------------------------------------------------

FOUR = {
    "relu": [60, 62, 58, 61, 65, 59, 63, 60, 64, 62],
    "elu": [50, 51, 49, 52, 55, 48, 50, 51, 53, 50],
    "relu+bn": [55, 57, 52, 56, 60, 54, 58, 55, 59, 57],
    "elu+bn": [51, 50, 50, 52, 54, 49, 51, 50, 52, 51],
}


def test_each_activation_meets_the_baseline_at_its_own_bn_setting():
    result = compare(runs_from(FOUR), baseline="relu")
    pairs = list(zip(result.paired.table["a"], result.paired.table["b"]))
    assert pairs == [("elu", "relu"), ("elu+bn", "relu+bn")]
    assert result.paired.family_size == 2 and result.paired.mode == "activation"
    assert "same BN setting" in result.paired.family and "same BN setting" in result.methods
    # Holm over exactly these two
    p = result.paired.table["wilcoxon_p"].to_numpy()
    np.testing.assert_allclose(result.paired.table["p_holm"], holm(p))


def test_a_configuration_baseline_and_all_pairs_keep_working():
    against = compare(runs_from(FOUR), baseline="relu+bn")
    assert against.paired.mode == "configuration"
    assert sorted(against.paired.table["a"]) == ["elu", "elu+bn", "relu"]
    every = compare(runs_from(FOUR), all_pairs=True)
    assert len(every.paired.table) == 6 and every.paired.mode == "all-pairs"


def test_bn_families_have_their_own_holm_floor_and_words():
    bn = compare(runs_from(FOUR), baseline="relu").bn
    effects = bn.effects.set_index("activation")
    assert effects.loc["relu", "verdict"] == "BN helps"  # relu+bn lower on every seed
    assert {"p_floor", "cannot_reach", "p_holm"} <= set(bn.effects.columns)
    assert list(bn.contrasts["a"]) == ["elu"] and list(bn.contrasts["b"]) == ["relu"]


# --- 3. the omnibus test at small n ---------------------------------------------------------------


def test_friedman_clean_sweep_at_five_seeds_is_exact_and_finite(cli, tmp_path):
    root = make_results(tmp_path, {"relu": [60, 61, 62, 63, 64], "elu": [50, 51, 52, 53, 54]})
    result = compare(runs_from({"relu": [60, 61, 62, 63, 64], "elu": [50, 51, 52, 53, 54]}))
    f = result.friedman
    assert f.statistic == pytest.approx(5.0)
    assert f.p == pytest.approx(0.0625)  # exact; the chi-square approximation says 0.025
    assert f.f_statistic is None and f.degenerate  # never F = inf
    code, out, err = cli("compare", root, "--format", "json")
    assert code == 0, err
    payload = _strict(out)
    assert payload["friedman"]["f_statistic"] is None and payload["friedman"]["p"] == pytest.approx(
        0.0625
    )
    for fmt in ("rich", "markdown", "csv", "latex"):
        code, text, _ = cli("compare", root, "--format", fmt)
        assert code == 0 and "inf" not in text.lower().replace("info", ""), fmt


# --- 4. strict JSON ------------------------------------------------------------------------------


def test_json_has_no_nan_or_infinity_and_says_why_a_number_is_missing(cli, tmp_path):
    same = {"relu": [60, 61, 62, 63, 64, 65], "elu": [58, 59, 60, 61, 62, 63]}  # d = -2 every seed
    root = make_results(tmp_path, same)
    code, out, err = cli("compare", root, "--format", "json")
    assert code == 0, err
    row = _strict(out)["tables"]["paired"][0]
    assert row["t_stat"] is None and row["d_z"] is None
    assert any("undefined" in note for note in row["notes"])


# --- 5. an ok record without a result ------------------------------------------------------------


def test_an_ok_record_without_a_result_is_corrupt_named_and_counted(cli, tmp_path):
    root = make_results(tmp_path, FOUR)
    path = root / "demo" / "runs" / "elu-nobn-he-s003" / "run.json"
    record = json.loads(path.read_text())
    record.update(test_errors=None, test_error=None)  # says ok, holds nothing
    path.write_text(json.dumps(record))
    code, _, err = cli("compare", root)
    assert code == 2 and "holds no result" in err and "elu-nobn-he-s003" in err
    code, out, err = cli("compare", root, "--skip-bad", "--format", "json")
    assert code == 0, err
    payload = _strict(out)
    assert any("1 corrupt record" in w and "elu-nobn-he-s003" in w for w in payload["warnings"])
    assert "except elu (9)" in payload["methods"] and "corrupt" in payload["methods"]
    elu = next(r for r in payload["tables"]["descriptives"] if r["config"] == "elu")
    assert elu["n_ok"] == 9


def test_methods_state_n_per_configuration_exactly():
    errors = dict(FOUR, elu=[None] + FOUR["elu"][1:])
    methods = compare(runs_from(errors)).methods
    assert "10 ok runs (seeds) per configuration, except elu (9)" in methods


# --- 6. one family count everywhere --------------------------------------------------------------


def test_an_untestable_comparison_is_outside_the_family():
    errors = {"relu": [60] * 6, "elu": [50, 51, 52, 53, 54, 55], "srelu": [40] + [None] * 5}
    result = compare(runs_from(errors), baseline="relu")
    assert result.paired.family_size == 1
    elu = _row(result, "elu")
    assert elu["verdict"] == "better" and not elu["cannot_reach"]
    assert _row(result, "srelu")["verdict"] == "not testable"
    assert not any("can reach significance" in w for w in result.warnings)


def test_the_cannot_reach_flag_and_the_warning_agree():
    five = {"relu": [60, 61, 62, 63, 64], "elu": [50, 51, 52, 53, 54], "selu": [55, 56, 57, 58, 59]}
    result = compare(runs_from(five), baseline="relu")
    table = result.paired.table
    assert table["cannot_reach"].all() and (table["verdict"] == "no evidence").all()
    assert any(
        "no comparison can reach significance" in w and "7 or more seeds" in w
        for w in result.warnings
    )


def test_best_holm_against_brute_force():
    """The smallest Holm-adjusted p each comparison can reach, over every assignment of p-values
    from a grid (each at or above its floor)."""
    floors = np.array([0.004, 0.02, 0.0625])
    grid = sorted({*floors, 0.01, 0.03, 0.05, 0.1, 0.5, 1.0})
    best = np.full(3, np.inf)
    for values in np.array(np.meshgrid(grid, grid, grid)).T.reshape(-1, 3):
        if (values >= floors).all():
            best = np.minimum(best, holm(values))
    np.testing.assert_allclose(best_holm(floors), best)


# --- 7. power for the primary test -----------------------------------------------------------------


def test_seeds_for_power_are_for_the_wilcoxon_test_at_the_holm_level():
    five = {"relu": [60, 61, 62, 63, 64], "elu": [40, 42, 41, 45, 43]}
    for extra in ("selu", "srelu", "tanh", "gelu", "celu", "silu"):
        five[extra] = [61, 60, 64, 62, 63]
    table = compare(runs_from(five), baseline="relu").paired.table
    m = len(table)
    elu = table[table["a"] == "elu"].iloc[0]
    assert elu["cannot_reach"]
    assert elu["seeds_for_80_power"] >= seeds_to_reach(0.05 / m) >= 6  # never 2
    assert wilcoxon_seeds(3.0, 0.05 / 7) == seeds_to_reach(0.05 / 7)


def test_floor_and_seeds_to_reach():
    assert floor_p(5) == 0.0625 and floor_p(10, "less") == pytest.approx(1 / 1024)
    assert seeds_to_reach(0.05) == 6 and seeds_to_reach(0.05 / 6) == 8
    # the floor is what the exact test gives when every difference has the same sign
    assert signed_rank(np.arange(1, 9) * -1.0).p == pytest.approx(floor_p(8))


def test_wilcoxon_seeds_respect_the_efficiency_bound():
    from elubench.stats.paired import seeds_for_power

    n_t = seeds_for_power(0.5, 0.01)
    assert wilcoxon_seeds(0.5, 0.01) == max(math.ceil(n_t / 0.864), seeds_to_reach(0.01))


# --- 8. the quick start can conclude ------------------------------------------------------------


def test_the_quick_start_dry_run_says_significance_is_reachable(cli, tmp_path):
    code, out, err = cli(
        "run", "specs/quickstart.yaml", "--dry-run", "--results", tmp_path, "--device", "cpu"
    )
    assert code == 0, err
    assert "can reach significance" in out
    lines = [
        line for line in out.splitlines() if line.strip(" │|").startswith("activation comparisons")
    ]
    assert lines and " yes " in lines[0], out


def test_a_dry_run_says_when_no_comparison_can_reach(cli, tmp_path):
    code, out, err = cli(
        "run",
        "specs/quickstart.yaml",
        "--dry-run",
        "--results",
        tmp_path,
        "--device",
        "cpu",
        "--seeds",
        "5",
    )
    assert code == 0, err
    lines = [
        line for line in out.splitlines() if line.strip(" │|").startswith("activation comparisons")
    ]
    assert " no " in lines[0] and line_ends_with(lines[0], "8")


def line_ends_with(line: str, value: str) -> bool:
    return line.rstrip(" │|").split()[-1] == value


# --- smaller findings ------------------------------------------------------------------------------


def test_a_p_of_exactly_zero_is_not_printed_as_zero():
    from elubench.reporting.cells import p_value

    assert p_value(0.0) == "<1e-300" and p_value(3e-4) == "3.0e-04" and p_value(0.04) == "0.04"


def test_latex_escapes_every_special_character():
    from elubench.reporting.render import latex_escape

    text = r"a\b&c%d$e#f_g{h}i~j^k<l>m±n−o–p×q≈r α χ² 2^n"
    escaped = latex_escape(text)
    unescaped_specials = [
        c
        for i, c in enumerate(escaped)
        if c in "&%$#_{}~^" and not (i and escaped[i - 1] == "\\") and c not in "{}$^"
    ]
    assert unescaped_specials == []
    assert r"2\textasciicircum{}n" in escaped and r"\&" in escaped and r"\_" in escaped
    assert r"\{h\}" in escaped and r"\textbackslash{}" in escaped and "$\\pm$" in escaped


def test_latex_output_compiles_as_text(cli, tmp_path):
    """Every special character of the methods paragraph reaches LaTeX escaped."""
    root = make_results(tmp_path, FOUR)
    code, out, _ = cli("compare", root, "--format", "latex")
    assert code == 0
    methods = out.split("% Methods\n", 1)[1]
    assert "2\\textasciicircum{}n" in methods and "2^n" not in methods


def test_bayesian_probabilities_are_in_every_row(cli, tmp_path):
    root = make_results(tmp_path, FOUR)
    code, out, err = cli("compare", root, "--format", "json", "--rope", "0.2")
    assert code == 0, err
    payload = _strict(out)
    assert payload["rope_pp"] == 0.2
    for key in ("paired", "bn_effects", "bn_contrasts"):
        for row in payload["tables"][key]:
            total = row["p_a_better"] + row["p_equivalent"] + row["p_b_better"]
            assert total == pytest.approx(1.0) and row["rope_pp"] == 0.2
    elu = payload["tables"]["paired"][0]
    assert elu["p_a_better"] > 0.9  # elu lower by ~1 pp on every seed, ROPE 0.2 pp


def test_scipy_where_it_is_equal():
    """The paired t-interval and BH are scipy's; checked on the same data."""
    from elubench.stats.paired import bh

    d = np.array([-3.0, -1.0, -2.0, 0.5, -4.0, -2.5])
    row = _row(
        compare(runs_from({"relu": [50] * 6, "elu": list((50 + d).astype(int))}), baseline="relu"),
        "elu",
    )
    ci = sps.ttest_1samp((50 + d).astype(int) - 50, 0).confidence_interval()
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low / 10, ci.high / 10))
    p = np.array([0.01, 0.04, np.nan, 0.03])
    np.testing.assert_allclose(bh(p)[[0, 1, 3]], sps.false_discovery_control(p[[0, 1, 3]]))
