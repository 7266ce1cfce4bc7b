import json
import time

import pytest
from conftest import TEN, make_results


def test_compare_tables_and_verdicts(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    code, out, err = cli("compare", root, "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    paired = {(r["a"], r["b"]): r for r in payload["tables"]["paired"]}
    elu = paired[("elu", "relu")]
    assert elu["wins"] == 10 and elu["wilcoxon_p"] == pytest.approx(2 / 1024)
    assert elu["wilcoxon_method"].startswith("exact") and elu["verdict"] == "better"
    assert (
        payload["alternative"] == "two-sided" and payload["primary_test"] == "Wilcoxon signed-rank"
    )
    assert "Holm" in payload["methods"]


@pytest.mark.parametrize(
    "fmt, needle",
    [
        ("rich", "activation comparisons"),
        ("markdown", "| configuration |"),
        ("csv", "# paired:"),
        ("latex", r"\begin{tabular}"),
    ],
)
def test_formats(cli, tmp_path, fmt, needle):
    root = make_results(tmp_path, TEN)
    code, out, err = cli("compare", root, "--format", fmt)
    assert code == 0, err
    assert needle in out


def test_out_file_and_options(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    target = tmp_path / "stats.md"
    code, _, err = cli(
        "compare",
        root,
        "--format",
        "markdown",
        "--out",
        target,
        "--all-pairs",
        "--alternative",
        "less",
        "--q-values",
        "--baseline",
        "relu+bn",
    )
    assert code == 0, err
    text = target.read_text()
    assert "every pair" in text and "BH q" in text and "less" in text


def test_one_sided_exact_p_can_go_below_0001(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    code, out, _ = cli("compare", root, "--format", "json", "--alternative", "less")
    paired = {(r["a"], r["b"]): r for r in json.loads(out)["tables"]["paired"]}
    assert paired[("elu", "relu")]["wilcoxon_p"] == pytest.approx(1 / 1024)


def test_diverged_runs_are_counted_and_shown(cli, tmp_path):
    errors = dict(TEN)
    errors["elu"] = [None] + TEN["elu"][1:]
    root = make_results(tmp_path, errors)
    code, out, _ = cli("compare", root, "--format", "json")
    payload = json.loads(out)
    row = next(r for r in payload["tables"]["descriptives"] if r["config"] == "elu")
    assert row["n_ok"] == 9 and row["n_diverged"] == 1
    assert any("did not finish ok" in w for w in payload["warnings"])


@pytest.mark.parametrize(
    "setup, args, words",
    [
        ("empty", [], "no run records"),
        ("missing", [], "no such results folder"),
        ("corrupt", [], "corrupt run record"),
        ("two specs", ["--spec", "demo", "--spec", "nope"], "no runs of spec 'nope'"),
        ("ok", ["--baseline", "gelu"], "baseline 'gelu' is not in the data"),
        ("ok", ["--format", "xml"], "unknown format"),
        ("ok", ["--alternative", "bigger"], "unknown alternative"),
        ("ok", ["--spec", "other"], "no runs of spec 'other'"),
    ],
)
def test_bad_input(cli, tmp_path, setup, args, words):
    root = tmp_path / "results"
    root.mkdir()
    if setup in ("ok", "corrupt", "two specs"):
        make_results(root, TEN)
    if setup == "missing":
        root = tmp_path / "nowhere"
    if setup == "corrupt":
        (root / "demo" / "runs" / "elu-nobn-he-s003" / "run.json").write_text('{"run_id": ')
    if setup == "two specs":
        make_results(root, TEN, spec_name="other")
    code, out, err = cli("compare", root, *args)
    assert code == 2
    assert words in err
    assert "Traceback" not in err + out


def test_skip_bad_names_the_file(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    bad = root / "demo" / "runs" / "elu-nobn-he-s003" / "run.json"
    bad.write_text("{")
    code, out, err = cli("compare", root, "--skip-bad", "--format", "json")
    assert code == 0, err
    assert any(str(bad) in w for w in json.loads(out)["warnings"])


def test_compare_over_2000_runs_is_fast(cli, tmp_path):
    import random

    rng = random.Random(0)
    configs = ["elu", "relu", "srelu", "lrelu", "elu+bn", "relu+bn", "srelu+bn", "lrelu+bn"]
    root = make_results(tmp_path, {c: [rng.randint(40, 70) for _ in range(250)] for c in configs})
    start = time.perf_counter()
    code, out, err = cli("compare", root, "--format", "json")
    elapsed = time.perf_counter() - start
    assert code == 0, err
    assert len(json.loads(out)["tables"]["descriptives"]) == 8
    # generous: a busy CI machine must not fail it; the measured figure (2-3 s) and how to
    # measure it are in docs/performance.md
    assert elapsed < 30.0, elapsed


@pytest.mark.parametrize("width", [80, 120, 200])
def test_rich_tables_are_never_cropped(tmp_path, width):
    """On a terminal narrower than a table, its columns go into consecutive tables that each
    repeat the row's name and verdict: every header and every cell is shown whole."""
    import io

    from conftest import quickstart_results
    from rich.console import Console

    from elubench.reporting.analysis import analyze
    from elubench.reporting.render import to_rich
    from elubench.reporting.tables import display_tables

    folder = quickstart_results(tmp_path)
    result = analyze(folder)
    sections = display_tables(result.comparison)
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(to_rich(sections, result.comparison.warnings, result.comparison.methods))
    text = console.file.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text  # nothing truncated
    for section in sections:
        for column in section.frame.columns:
            assert f" {column} " in text or f"┃ {column}" in text, (section.title, column)
        for row in section.frame.itertuples(index=False):
            for value in row:
                assert str(value) in text, (section.title, value)
    if width == 80:
        assert "(1/" in text  # split, not squeezed


def test_autoencoder_tables_name_their_unit(cli, tmp_path):
    """An autoencoder's scores are reconstruction MSE, shown x 100: every header and note says
    so, and no percentage point is claimed."""
    import numpy as np

    mse = {"elu": [0.0674, 0.0685, 0.0687, 0.0671], "relu": [0.0899, 0.0904, 0.0901, 0.0910]}
    root = make_results(tmp_path / "r", {c: [1] * 4 for c in mse})
    for path in root.rglob("run.json"):
        record = json.loads(path.read_text())
        value = mse[record["config"]][record["seed"]]
        record.update(task="autoencoder", test_errors=None, test_error=value, test_loss=value)
        path.write_text(json.dumps(record))
    code, out, err = cli("compare", root, "--format", "markdown")
    assert code == 0, err
    assert "Test MSE × 100 per configuration" in out and "Δ MSE×100 [95% CI]" in out
    assert " pp" not in out and "test error" not in out
    elu_row = next(line for line in out.splitlines() if line.startswith("| elu |"))
    assert f"{np.mean(mse['elu']) * 100:.4f} ± {np.std(mse['elu'], ddof=1) * 100:.4f}" in elu_row
    relu_vs = next(line for line in out.splitlines() if line.startswith("| elu vs relu |"))
    diff = (np.array(mse["elu"]) - np.array(mse["relu"])).mean() * 100
    assert f"{diff:.2f}" in relu_vs
