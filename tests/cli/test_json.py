"""Every JSON elubench writes parses with a strict parser (no NaN / Infinity tokens), in the
shapes docs/json.md documents."""

from __future__ import annotations

import json

import pytest
from conftest import TEN, make_results


def strict(text: str):
    """json.loads that refuses NaN and Infinity, as JavaScript's JSON.parse and Go do."""

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_compare_json_shape(cli, tmp_path):
    degenerate = {
        "relu": [60, 61, 62, 63, 64, 65],
        "elu": [58, 59, 60, 61, 62, 63],
    }  # d = -2 always
    root = make_results(tmp_path, degenerate)
    code, out, err = cli("compare", root, "--format", "json", "--q-values")
    assert code == 0, err
    payload = strict(out)
    assert {
        "spec_name",
        "baseline",
        "configs",
        "alternative",
        "alpha",
        "primary_test",
        "correction",
        "comparison_family",
        "comparison_mode",
        "rope_pp",
        "tables",
        "friedman",
        "warnings",
        "methods",
    } <= set(payload)
    row = payload["tables"]["paired"][0]
    for key in (
        "a",
        "b",
        "setting",
        "n_pairs",
        "mean_diff_pp",
        "ci_low",
        "ci_high",
        "wins",
        "t_stat",
        "t_p",
        "wilcoxon_p",
        "wilcoxon_method",
        "p_floor",
        "d_z",
        "rank_biserial",
        "p_a_better",
        "p_equivalent",
        "p_b_better",
        "rope_pp",
        "p_holm",
        "best_holm_p",
        "cannot_reach",
        "verdict",
        "seeds_for_80_power",
        "notes",
        "q_bh",
    ):
        assert key in row, key
    assert row["t_stat"] is None and isinstance(row["notes"], list) and row["notes"]
    friedman = payload["friedman"]
    assert friedman["f_statistic"] is None and friedman["degenerate"]
    assert {"statistic", "p", "p_method", "p_se", "k", "n_blocks", "mean_ranks"} <= set(friedman)


def test_show_and_activations_json_are_strict(cli):
    code, out, _ = cli("show", "specs/elu-cifar100-11.yaml", "--json")
    assert code == 0
    plan = strict(out)
    assert plan["total_params"] == 1_669_028 and plan["layers"][0]["kind"] == "conv"
    code, out, _ = cli("activations", "--json")
    assert code == 0 and {row["name"] for row in strict(out)} >= {"elu", "relu", "prelu"}


@pytest.mark.slow
def test_records_metrics_and_spec_json_are_strict(cli, tmp_path):
    code, _, err = cli(
        "run",
        "specs/quickstart.yaml",
        "--results",
        tmp_path,
        "--seeds",
        "1",
        "-a",
        "prelu",
        "--batchnorm",
        "off",
        "--set",
        "train.iterations=20",
        "--set",
        "train.eval_every=10",
        "--device",
        "cpu",
    )
    assert code == 0, err
    folder = tmp_path / "quickstart"
    spec = strict((folder / "spec.json").read_text())
    assert set(spec) == {"spec_name", "spec_hash", "spec"}
    (run,) = folder.glob("runs/*")
    record = strict((run / "run.json").read_text())
    assert record["status"] == "ok" and record["prelu_slopes"]
    for line in (run / "metrics.jsonl").read_text().splitlines():
        assert {"iteration", "test_error", "activations", "prelu"} <= set(strict(line))


def test_a_diverged_runs_nan_slopes_are_written_as_null(tmp_path):
    """The store writes what the trainer hands it as strict JSON, whatever floats it holds."""
    import math

    from elubench.store.record import RunRecord
    from elubench.store.rundir import RunDir

    record = RunRecord(
        run_id="r",
        spec_name="s",
        spec_hash="h",
        activation="prelu",
        batchnorm=False,
        seed=0,
        status="diverged",
        reason="non-finite loss",
        test_errors=None,
        test_size=10,
        test_error=None,
        test_loss=None,
        train_loss=None,
        iterations=3,
        wall_seconds=1.0,
        images_per_second=math.inf,
        init_hash="x",
        prelu_slopes={"s1_conv1": {"mean": math.nan, "min": math.nan, "max": 1.0}},
    )
    run = RunDir(tmp_path / "r")
    run.write_record(record)
    run.append_metrics({"iteration": 3, "train_loss": math.nan, "test_error": math.inf})
    saved = strict(run.record_path.read_text())
    assert saved["images_per_second"] is None and saved["prelu_slopes"]["s1_conv1"]["mean"] is None
    assert strict(run.metrics_path.read_text()) == {
        "iteration": 3,
        "train_loss": None,
        "test_error": None,
    }


def test_csv_and_markdown_carry_the_same_verdicts(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    code, out, _ = cli("compare", root, "--format", "json")
    verdicts = [r["verdict"] for r in strict(out)["tables"]["paired"]]
    code, csv_text, _ = cli("compare", root, "--format", "csv")
    assert all(v in csv_text for v in verdicts)


def test_data_json_is_strict(cli, tmp_path):
    code, out, err = cli(
        "data",
        "specs/quickstart.yaml",
        "specs/mnist-mlp-8x128.yaml",
        "--data-dir",
        tmp_path,
        "--json",
    )
    assert code == 2 and "mnist was not found" in err  # the JSON comes first, whole
    report = strict(out)
    assert set(report) == {"data_dir", "data_dir_from", "ready", "datasets"} and not report["ready"]
    mnist = report["datasets"][1]
    assert set(mnist) == {"dataset", "needed_by", "ready", "folder", "note", "downloaded", "files"}
    assert set(mnist["files"][0]) == {
        "name",
        "path",
        "md5",
        "size",
        "status",
        "found_md5",
        "found_size",
    }
    assert {f["status"] for f in mnist["files"]} == {"missing"}
