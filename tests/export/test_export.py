"""`elubench export RESULTS --tensorboard DIR --mlflow URI`: real recorded runs (ok, diverged,
failed; a few seconds of training on the digits) exported and read back with TensorBoard's and
MLflow's own readers; a second export adds nothing; a changed record replaces only its own
export; mistakes are one message and exit 2."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import python_in, tiny_spec

from elubench.execution.runner import run_matrix
from elubench.execution.state import RunSettings
from elubench.export.driver import export_results
from elubench.export.runs import numeric_series
from elubench.spec.loader import validate_spec
from elubench.spec.matrix import expand

# Each test needs only the extras it exports to: one extra missing skips its own tests, and the
# rest (the other target, the mistakes, the series) still run.
needs_tensorboard = pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None,
    reason="the tensorboard extra is not installed (pip install 'elubench[tensorboard]')",
)
needs_mlflow = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None,
    reason="the mlflow extra is not installed (pip install 'elubench[mlflow]')",
)

TRAIN = {"batch_size": 32, "lr": 0.05, "iterations": 20, "eval_every": 10}
STATUSES = {
    ("tiny", "prelu-nobn-he-s000"): "ok",
    ("tiny", "elu-bn-he-s000"): "ok",
    ("tiny", "relu-nobn-he-s000"): "failed",
    ("tiny-diverged", "relu-nobn-he-s000"): "diverged",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two specs' runs recorded by `elubench run`'s own code: prelu (its slopes) and elu+bn ok,
    relu crashed (failed, no curve), and relu at a learning rate that diverges."""
    import elubench.training.trainer

    root = tmp_path_factory.mktemp("export") / "results"
    settings = RunSettings(results=root, device="cpu", checkpoint_seconds=0, threads=1)
    spec = validate_spec(
        tiny_spec(
            train=TRAIN,
            compare={
                "activations": ["prelu", "elu", "relu"],
                "batchnorm": [False, True],
                "seeds": 1,
            },
        )
    )
    wanted = {run_id for (name, run_id) in STATUSES if name == "tiny"}
    real = elubench.training.trainer.train_run

    def crash_relu(spec, cfg, *args, **kwargs):
        if cfg.activation == "relu":
            raise RuntimeError("out of memory (simulated)")
        return real(spec, cfg, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(elubench.training.trainer, "train_run", crash_relu)
        run_matrix(spec, [c for c in expand(spec) if c.run_id in wanted], settings)
    diverging = validate_spec(
        tiny_spec(
            name="tiny-diverged",
            train={**TRAIN, "lr": 1e6, "iterations": 200, "eval_every": 100},
            compare={"activations": ["relu"], "batchnorm": [False], "seeds": 1},
        )
    )
    run_matrix(diverging, expand(diverging), settings)
    found = {
        (json.loads(p.read_text())["spec_name"], p.parent.name): json.loads(p.read_text())["status"]
        for p in root.rglob("run.json")
    }
    assert found == STATUSES
    return root


def _records(root: Path) -> dict:
    """(spec, run id) -> (record, its folder)."""
    out = {}
    for path in root.rglob("run.json"):
        record = json.loads(path.read_text())
        out[(record["spec_name"], record["run_id"])] = (record, path.parent)
    return out


def _expected_series(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every number of metrics.jsonl by key path, read here without elubench's code."""
    series: dict[str, list[tuple[int, float]]] = {}

    def walk(path, value, step):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{path}/{key}", item, step)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            series.setdefault(path, []).append((step, float(value)))

    metrics = folder / "metrics.jsonl"
    for line in metrics.read_text().splitlines() if metrics.exists() else []:
        row = json.loads(line)
        for key, value in row.items():
            if key != "iteration":
                walk(key, value, row["iteration"])
    return series


def _listing(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


# --- TensorBoard ---------------------------------------------------------------------------


def _accumulator(folder: Path):
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    return acc


@needs_tensorboard
def test_tensorboard_holds_every_run_its_curves_and_hparams(results, tmp_path):
    from tensorboard.plugins.hparams import api_pb2, metadata

    tb = tmp_path / "tb"
    outcome = export_results(results, tensorboard=tb)
    [summary] = outcome.summaries
    assert (summary.exported, summary.skipped, summary.replaced) == (4, 0, 0)
    assert dict(summary.statuses) == {"ok": 2, "diverged": 1, "failed": 1}
    records = _records(results)
    assert {(p.parent.name, p.name) for p in tb.glob("*/*")} == set(records)  # one folder per run
    for (spec, run_id), (record, folder) in records.items():
        run_dir = tb / spec / run_id
        events = [p.name for p in run_dir.iterdir() if "tfevents" in p.name]
        assert len(events) == 1 and events[0].endswith(".elubench")
        acc = _accumulator(run_dir)
        expected = _expected_series(folder)
        final = {
            f"final/{k}": record[k]
            for k in ("test_error", "test_loss", "iterations", "wall_seconds", "images_per_second")
            if record[k] is not None
        }
        assert set(expected) | set(final) <= set(acc.Tags()["scalars"])
        assert not {t for t in acc.Tags()["scalars"] if not t.startswith("final/")} - set(expected)
        for tag, points in expected.items():
            got = [(e.step, e.value) for e in acc.Scalars(tag)]
            assert [s for s, _ in got] == [s for s, _ in points], tag
            assert [v for _, v in got] == pytest.approx(
                [v for _, v in points], rel=1e-6, abs=1e-30
            ), tag
        for tag, value in final.items():
            [event] = acc.Scalars(tag)
            assert event.value == pytest.approx(value, rel=1e-6)
        if record["status"] == "ok":
            assert "final/test_error" in final and expected["test_error"]
        if record["activation"] == "prelu":
            assert {"prelu/s1_conv1/mean", "activations/s2_conv2/median"} <= set(expected)
        # the HParams plugin's session: the configuration, the status, how it ended
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG]
        )
        hp = start.hparams
        assert hp["activation"].string_value == record["activation"]
        assert hp["batchnorm"].bool_value == record["batchnorm"]
        assert hp["seed"].number_value == record["seed"] == 0
        assert hp["init"].string_value == "he" and hp["spec"].string_value == spec
        assert hp["spec_hash"].string_value == record["spec_hash"]
        assert hp["status"].string_value == record["status"]
        assert hp["train.lr"].number_value == (1e6 if spec == "tiny-diverged" else 0.05)
        assert hp["train.batch_size"].number_value == 32
        assert start.group_name == f"{spec}/{run_id}"
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        assert end.status == (
            api_pb2.STATUS_SUCCESS if record["status"] == "ok" else api_pb2.STATUS_FAILURE
        )
    assert not _expected_series(records[("tiny", "relu-nobn-he-s000")][1])  # failed: no curve


@needs_tensorboard
def test_a_second_tensorboard_export_writes_nothing(results, tmp_path):
    tb = tmp_path / "tb"
    export_results(results, tensorboard=tb)
    before = _listing(tb)
    [summary] = export_results(results, tensorboard=tb).summaries
    assert (summary.exported, summary.skipped) == (0, 4)
    assert _listing(tb) == before
    # the digest is the record's content, not its place: a copied results folder is the same
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    assert export_results(copy, tensorboard=tb).summaries[0].skipped == 4
    assert _listing(tb) == before


@needs_tensorboard
def test_a_changed_record_replaces_only_its_own_tensorboard_files(results, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    tb = tmp_path / "tb"
    export_results(copy, tensorboard=tb)
    run_dir = tb / "tiny" / "elu-bn-he-s000"
    (tb / "notes.md").write_text("mine")  # beside the runs, not in one: left alone
    before = _listing(tb)
    old_events = [p.name for p in run_dir.iterdir() if "tfevents" in p.name]
    metrics = copy / "tiny" / "runs" / "elu-bn-he-s000" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join(lines[:-1]) + "\n")  # as if its last evaluation were undone
    [summary] = export_results(copy, tensorboard=tb).summaries
    assert (summary.exported, summary.replaced, summary.skipped) == (1, 1, 3)
    after = _listing(tb)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed and all(k.startswith("tiny/elu-bn-he-s000/") for k in changed)
    new_events = [p.name for p in run_dir.iterdir() if "tfevents" in p.name]
    assert len(new_events) == 1 and new_events != old_events
    assert [e.step for e in _accumulator(run_dir).Scalars("test_error")] == [0, 10]


@pytest.mark.parametrize("foreign", ["notes.txt", "events.out.tfevents.123.host.1.v2"])
@needs_tensorboard
def test_a_run_folder_holding_files_elubench_did_not_write_is_refused(
    cli, results, tmp_path, foreign
):
    tb = tmp_path / "tb"
    (tb / "tiny" / "prelu-nobn-he-s000").mkdir(parents=True)
    (tb / "tiny" / "prelu-nobn-he-s000" / foreign).write_text("someone else's")
    code, out, err = cli("export", results, "--tensorboard", tb)
    assert code == 2 and foreign in err and "did not write" in err, out + err
    assert sorted(str(p.relative_to(tb)) for p in tb.rglob("*")) == [
        "tiny",
        "tiny/prelu-nobn-he-s000",
        f"tiny/prelu-nobn-he-s000/{foreign}",
    ]


# --- MLflow --------------------------------------------------------------------------------


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for the reading client below
    return f"file:{tmp_path / 'mlruns'}"


def _mlflow_runs(uri: str, view=None) -> dict:
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    view = ViewType.ACTIVE_ONLY if view is None else view
    out = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], run_view_type=view):
            out[(experiment.name, run.data.tags["elubench.run_id"])] = run
    return out


@needs_mlflow
def test_mlflow_holds_every_run_with_params_tags_metrics_and_its_record(
    results, mlflow_uri, tmp_path
):
    [summary] = export_results(results, mlflow=mlflow_uri).summaries
    assert (summary.exported, summary.skipped) == (4, 0)
    assert summary.destination == (tmp_path / "mlruns").resolve().as_uri()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    assert {e.name for e in client.search_experiments()} >= {"tiny", "tiny-diverged"}
    runs = _mlflow_runs(mlflow_uri)
    records = _records(results)
    assert set(runs) == set(records)
    for key, (record, folder) in records.items():
        run = runs[key]
        assert run.info.run_name == record["run_id"]
        tags, params = run.data.tags, run.data.params
        assert tags["activation"] == record["activation"] and tags["status"] == record["status"]
        assert tags["batchnorm"] == str(record["batchnorm"]) and tags["seed"] == "0"
        assert tags["spec_hash"] == record["spec_hash"] and tags["spec"] == record["spec_name"]
        assert tags["elubench.version"] == (record["versions"] or {}).get("elubench", "unknown")
        assert params["activation"] == record["activation"] and params["seed"] == "0"
        assert (
            params["batchnorm"] == str(record["batchnorm"])
            and params["spec_hash"] == record["spec_hash"]
        )
        assert (
            params["train.batch_size"] == "32" and "train.lr" in params and "model.stacks" in params
        )
        assert run.info.status == ("FINISHED" if record["status"] == "ok" else "FAILED")
        if record["status"] != "ok":
            assert record["reason"] in tags["mlflow.note.content"]
        for name, points in _expected_series(folder).items():
            history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
            assert [(m.step, m.value) for m in history] == [
                (s, pytest.approx(v)) for s, v in points
            ], name
        if record["test_error"] is not None:
            [final] = client.get_metric_history(run.info.run_id, "final/test_error")
            assert (
                final.value == pytest.approx(record["test_error"])
                and final.step == record["iterations"]
            )
        dst = tmp_path / "artifacts" / run.info.run_id
        dst.mkdir(parents=True)
        got = client.download_artifacts(run.info.run_id, "run.json", str(dst))
        assert Path(got).read_bytes() == (folder / "run.json").read_bytes()


@needs_mlflow
def test_a_second_mlflow_export_adds_no_run_and_a_changed_record_replaces_its_own(
    results, mlflow_uri, tmp_path
):
    export_results(results, mlflow=mlflow_uri)
    first = {key: run.info.run_id for key, run in _mlflow_runs(mlflow_uri).items()}
    [summary] = export_results(results, mlflow=mlflow_uri).summaries
    assert (summary.exported, summary.skipped) == (0, 4)
    assert {key: run.info.run_id for key, run in _mlflow_runs(mlflow_uri).items()} == first
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    record = copy / "tiny" / "runs" / "prelu-nobn-he-s000" / "run.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "note": "trained again"}))
    [summary] = export_results(copy, mlflow=mlflow_uri).summaries
    assert (summary.exported, summary.replaced, summary.skipped) == (1, 1, 3)
    now = {key: run.info.run_id for key, run in _mlflow_runs(mlflow_uri).items()}
    assert set(now) == set(first)
    assert [key for key in now if now[key] != first[key]] == [("tiny", "prelu-nobn-he-s000")]
    from mlflow.entities import ViewType

    deleted = _mlflow_runs(mlflow_uri, ViewType.DELETED_ONLY)  # MLflow's delete: restorable
    assert {key: run.info.run_id for key, run in deleted.items()} == {
        ("tiny", "prelu-nobn-he-s000"): first[("tiny", "prelu-nobn-he-s000")]
    }


# --- both at once, through the command line ------------------------------------------------


@needs_tensorboard
@needs_mlflow
def test_the_command_exports_to_both_and_again_adds_nothing(results, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from elubench.cli.app import app

    monkeypatch.setenv("COLUMNS", "200")
    tb, uri = tmp_path / "tb", f"file:{tmp_path / 'mlruns'}"
    untouched = _listing(results)
    runner = CliRunner()
    first = runner.invoke(app, ["export", str(results), "--tensorboard", str(tb), "--mlflow", uri])
    assert first.exit_code == 0, first.output
    text = " ".join(first.output.split())
    assert (
        f"TensorBoard {tb}: 4 runs (2 ok, 1 diverged, 1 failed): 4 exported, 0 already exported"
        in text
    )
    assert "MLflow file://" in text and "4 exported, 0 already exported" in text
    assert f"tensorboard --logdir {tb}" in text and "MLFLOW_ALLOW_FILE_STORE=true mlflow ui" in text
    again = runner.invoke(
        app, ["export", str(results), "--tensorboard", str(tb), "--mlflow", uri, "--spec", "tiny"]
    )
    assert again.exit_code == 0, again.output
    assert (
        " ".join(again.output.split()).count(
            "3 runs (2 ok, 1 failed): 0 exported, 3 already exported"
        )
        == 2
    )
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert len(_mlflow_runs(uri)) == 4 and len(list(tb.glob("*/*"))) == 4
    assert _listing(results) == untouched  # export reads the results, never writes there


@needs_tensorboard
def test_a_damaged_record_stops_the_export_unless_skip_bad_leaves_it_out(cli, results, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    (copy / "tiny" / "runs" / "elu-bn-he-s000" / "run.json").write_text("{not json")
    code, out, err = cli("export", copy, "--tensorboard", tmp_path / "tb")
    assert code == 2 and "corrupt run record" in err and not (tmp_path / "tb").exists()
    code, out, err = cli("export", copy, "--tensorboard", tmp_path / "tb", "--skip-bad")
    text = " ".join(out.split())
    assert code == 0 and "warning: left out:" in text and "elu-bn-he-s000" in text, out + err
    assert "3 runs (1 ok, 1 diverged, 1 failed): 3 exported" in text


@needs_tensorboard
@needs_mlflow
def test_export_imports_neither_torch_nor_the_training_code(results, tmp_path):
    code = (
        "import sys; from pathlib import Path; from elubench.export.driver import export_results; "
        f"export_results(Path({str(results)!r}), tensorboard=Path({str(tmp_path / 'tb')!r}), "
        f"mlflow={'file:' + str(tmp_path / 'mlruns')!r}); "
        "print(sorted(m for m in ('torch', 'elubench.training.trainer', 'elubench.execution.runner') if m in sys.modules))"
    )
    out = python_in(tmp_path, code)
    assert out.strip().splitlines()[-1] == "[]", out


# --- mistakes: one message, exit 2 ---------------------------------------------------------


@pytest.mark.parametrize("package,flag", [("tensorboard", "--tensorboard"), ("mlflow", "--mlflow")])
def test_a_missing_extra_is_one_message_naming_the_install(
    cli, results, tmp_path, monkeypatch, package, flag
):
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    target = tmp_path / "out"
    code, out, err = cli(
        "export", results, flag, target if package == "tensorboard" else f"file:{target}"
    )
    assert code == 2, out + err
    assert f"pip install 'elubench[{package}]'" in err and err.count("error:") == 1
    assert "Traceback" not in err and not target.exists()


@needs_mlflow
def test_a_file_store_refused_by_mlflow_is_one_message(cli, results, tmp_path, monkeypatch):
    import mlflow

    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip("MLflow 2 opens file stores without MLFLOW_ALLOW_FILE_STORE")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")  # the user's explicit no is kept
    code, out, err = cli("export", results, "--mlflow", f"file:{tmp_path / 'mlruns'}")
    assert code == 2 and "MLflow could not open the store" in err and "Traceback" not in err, (
        out + err
    )


@pytest.mark.parametrize("case", ["missing", "empty"])
def test_a_results_folder_without_records_is_refused(cli, tmp_path, case):
    folder = tmp_path / "results"
    if case == "empty":
        folder.mkdir()
    code, out, err = cli("export", folder, "--tensorboard", tmp_path / "tb")
    assert (
        code == 2 and ("no such results folder" if case == "missing" else "no run records") in err
    )
    assert not (tmp_path / "tb").exists()


def test_no_target_and_a_target_inside_the_results_are_refused(cli, results, tmp_path):
    code, _, err = cli("export", results)
    assert code == 2 and "--tensorboard DIR and/or --mlflow URI" in err
    code, _, err = cli("export", results, "--tensorboard", results / "tb")
    assert (
        code == 2 and "would write into the results folder" in err and not (results / "tb").exists()
    )
    code, _, err = cli("export", results, "--mlflow", f"file:{results / 'mlruns'}")
    assert (
        code == 2
        and "would write into the results folder" in err
        and not (results / "mlruns").exists()
    )
    # a spec's folder given as RESULTS, its parent as the log folder: runs would land inside it
    code, _, err = cli("export", results / "tiny", "--tensorboard", results)
    assert code == 2 and "would write into the results folder" in err
    code, _, err = cli("export", results, "--tensorboard", tmp_path / "tb", "--spec", "nope")
    assert code == 2 and "no runs of spec 'nope'" in err


def test_numeric_series_takes_every_number_by_its_key_path():
    row = {
        "iteration": 30,
        "epoch": 0.5,
        "lr": 0.05,
        "train_loss": None,
        "test_errors": 12,
        "activations": {"s1_conv1": {"mean": 0.25, "median": None}},
        "prelu": {"s1_conv1": {"mean": 0.2, "min": 0.1, "max": 0.3}},
        "activation_params": {"s1_conv1.alpha": {"mean": 1.5, "min": 1.0, "max": 2.0}},
        "flag": True,
        "note": "text",
        "odd": {"layer[0]": 1.0},
    }
    assert numeric_series(row) == {
        "epoch": 0.5,
        "lr": 0.05,
        "test_errors": 12.0,
        "activations/s1_conv1/mean": 0.25,
        "prelu/s1_conv1/mean": 0.2,
        "prelu/s1_conv1/min": 0.1,
        "prelu/s1_conv1/max": 0.3,
        "activation_params/s1_conv1.alpha/mean": 1.5,
        "activation_params/s1_conv1.alpha/min": 1.0,
        "activation_params/s1_conv1.alpha/max": 2.0,
        "odd/layer_0_": 1.0,
    }
