"""`compare` and `report` on a results folder with several experiments (issue 11): each
experiment's tables, then the summary across them, in every format."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import SPECS, make_results

A = {
    "elu": [50, 52, 49, 51, 50, 48],
    "relu": [60, 61, 59, 62, 60, 63],
    "srelu": [55, 54, 57, 56, 53, 55],
    "elu+bn": [45, 46, 44, 47, 45, 44],
    "relu+bn": [49, 50, 51, 48, 50, 52],
}
B = {
    "elu": [20, 21, 22, 19, 20, 21],
    "relu": [25, 27, 26, 24, 28, 26],
    "srelu": [23, 22, 24, 25, 23, 22],
    "elu+bn": [18, 19, 17, 18, 20, 19],
    "relu+bn": [21, 22, 20, 23, 21, 22],
}
C = {
    "elu": [30, 33, 31, 32, 30, 31],
    "relu": [36, 35, 37, 34, 36, 38],
    "elu+bn": [28, 27, 29, 28, 30, 27],
    "relu+bn": [31, 32, 30, 33, 31, 32],
}  # no srelu


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def three(tmp_path):
    root = tmp_path / "results"
    for name, errors in (("alpha", A), ("beta", B), ("gamma", C)):
        make_results(root, errors, spec_name=name)
    return root


def test_rich_shows_each_experiment_then_the_summary(cli, three):
    code, out, err = cli("compare", three)
    assert code == 0, err
    for name in ("alpha", "beta", "gamma"):
        assert f"{name}: 30 runs" in out or f"{name}: 24 runs" in out
    assert "across 3 experiments" in out
    assert out.index("gamma: 24 runs") < out.index("across 3 experiments")
    assert "srelu (only in alpha, beta)" in out
    assert "comparisons on ranks" in out and "pooled seed-level differences" in out
    assert "Demšar" in out and "Hartung" in out


@pytest.mark.parametrize(
    "fmt, marks",
    [
        (
            "markdown",
            [
                "## alpha: 30 runs",
                "## Across 3 experiments",
                "### Across experiments: comparisons on ranks",
            ],
        ),
        (
            "csv",
            [
                "# alpha/descriptives:",
                "# gamma/paired:",
                "# across_ranks:",
                "# across_meta:",
                "# across_per_experiment:",
            ],
        ),
        (
            "latex",
            ["% Experiment alpha", "% Across experiments", r"\caption{across experiments: pooled"],
        ),
    ],
)
def test_every_format_carries_the_summary(cli, three, fmt, marks):
    code, out, err = cli("compare", three, "--format", fmt)
    assert code == 0, err
    for mark in marks:
        assert mark in out, mark


def test_json_holds_every_experiment_and_the_summary(cli, three):
    code, out, err = cli("compare", three, "--format", "json")
    assert code == 0, err
    payload = _strict(out)
    assert list(payload["experiments"]) == ["alpha", "beta", "gamma"]
    assert payload["experiments"]["alpha"]["tables"]["paired"]
    across = payload["across"]
    assert across["configs"] == ["elu", "elu+bn", "relu", "relu+bn"] or set(across["configs"]) == {
        "elu",
        "elu+bn",
        "relu",
        "relu+bn",
    }
    assert across["left_out"] == {"srelu": ["alpha", "beta"]}
    assert across["friedman"]["n_blocks"] == 3 and across["nemenyi"]["critical_difference"] > 0
    rows = {(r["a"], r["b"]): r for r in across["tables"]["across_ranks_tests"]}
    assert rows[("elu", "relu")]["wins"] + rows[("elu", "relu")]["ties"] == 3
    meta = {(r["a"], r["b"]): r for r in across["tables"]["across_meta"]}
    row = meta[("elu", "relu")]
    assert row["estimate"] < 0 and row["k"] == 3
    assert row["verdict"] == ("better" if row["p_holm"] <= 0.05 else "no evidence")


def test_spec_narrows_and_no_across_leaves_it_out(cli, three):
    code, out, _ = cli("compare", three, "--spec", "alpha", "--format", "json")
    assert code == 0 and "across" not in _strict(out) and _strict(out)["spec_name"] == "alpha"
    code, out, _ = cli("compare", three, "--spec", "alpha", "--spec", "gamma", "--format", "json")
    assert code == 0 and _strict(out)["across"]["experiments"] == ["alpha", "gamma"]
    code, out, _ = cli("compare", three, "--no-across", "--format", "json")
    assert code == 0 and _strict(out)["across"] is None and len(_strict(out)["experiments"]) == 3


def test_folders_merged_by_copying_stay_comparable(cli, tmp_path):
    first, second = (
        make_results(tmp_path / "one", A, spec_name="alpha"),
        make_results(tmp_path / "two", B, spec_name="beta"),
    )
    merged = tmp_path / "merged"
    shutil.copytree(first / "alpha", merged / "alpha")
    shutil.copytree(second / "beta", merged / "beta")
    code, out, err = cli("compare", merged, "--format", "json")
    assert code == 0, err
    assert _strict(out)["across"]["experiments"] == ["alpha", "beta"]


def _with_baseline(root, name, baseline):
    """Give experiment `name` a spec.json whose compare section names `baseline` (or none)."""
    from elubench.spec.loader import load_spec

    spec = load_spec(SPECS / "quickstart.yaml").model_dump(mode="json")
    spec["name"], spec["compare"]["baseline"] = name, baseline
    (root / name / "spec.json").write_text(
        json.dumps({"spec_name": name, "spec_hash": "abc", "spec": spec})
    )


def test_specs_that_disagree_on_the_baseline_are_told(cli, tmp_path):
    root = tmp_path / "results"
    make_results(root, A, spec_name="alpha")
    make_results(root, B, spec_name="beta")
    _with_baseline(root, "alpha", "relu")
    _with_baseline(root, "beta", "elu")
    code, out, err = cli("compare", root, "--format", "json")
    assert code == 0, err
    payload = _strict(out)
    assert payload["across"]["baseline"] == "relu"
    assert all(p["baseline"] == "relu" for p in payload["experiments"].values())
    assert any(
        "different baselines (alpha: relu, beta: elu)" in w for w in payload["across"]["warnings"]
    )
    payload = _strict(cli("compare", root, "--format", "json", "--no-across")[1])
    assert all(
        any("different baselines" in w for w in e["warnings"])
        for e in payload["experiments"].values()
    )
    # a spec that names none has the default (relu here): no disagreement, no warning
    _with_baseline(root, "beta", None)
    payload = _strict(cli("compare", root, "--format", "json")[1])
    assert not any("different baselines" in w for w in payload["across"]["warnings"])
    code, out, err = cli("compare", root, "--baseline", "elu", "--format", "json")
    assert code == 0, err
    assert all(p["baseline"] == "elu" for p in _strict(out)["experiments"].values())


def test_report_writes_one_report_with_the_summary_first(cli, three):
    code, out, err = cli("report", three, "--html", "--figure-format", "png")
    assert code == 0, err
    text = (three / "REPORT.md").read_text()
    assert (
        text.index("## Across 3 experiments")
        < text.index("## Experiment: alpha")
        < text.index("## Experiment: gamma")
    )
    assert "figures/cd-diagram.png" in text and "figures/forest-across.png" in text
    assert (
        "figures/alpha/forest.png" in text
        and (three / "figures" / "gamma" / "paired_seeds.png").exists()
    )
    html = (three / "REPORT.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 + 3 * 4
    assert not (three / "alpha" / "REPORT.md").exists()


def test_report_of_one_experiment_is_unchanged(cli, three):
    code, out, err = cli("report", three, "--spec", "beta", "--figure-format", "png")
    assert code == 0, err
    text = (three / "beta" / "REPORT.md").read_text()
    assert text.startswith("# elubench report: beta") and "Across" not in text


def test_the_friedman_over_experiments_is_scipys_on_the_mean_errors(cli, three):
    """On a hand-written results tree: the summary's scores are the experiments' mean errors,
    and its Friedman statistic is scipy's on them (experiments as blocks)."""
    import numpy as np
    from scipy import stats as sps

    across = _strict(cli("compare", three, "--format", "json")[1])["across"]
    configs = across["configs"]
    means = np.array(
        [[np.mean(errors[c]) / 10 for c in configs] for errors in (A, B, C)]
    )  # % of 1,000
    got = np.array(
        [[across["scores"][name][c] for c in configs] for name in ("alpha", "beta", "gamma")]
    )
    assert got == pytest.approx(means)
    assert across["friedman"]["statistic"] == pytest.approx(
        sps.friedmanchisquare(*means.T).statistic
    )
    ranks = sps.rankdata(means, axis=1).mean(axis=0)
    assert [across["friedman"]["mean_ranks"][c] for c in configs] == pytest.approx(ranks)
