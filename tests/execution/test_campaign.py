"""`elubench run SPEC [SPEC ...]` (issue 11): several specs in one call, each in its own results
folder, all checked before any trains, one progress display, one summary, one exit code."""

import json

import pytest
import yaml
from conftest import tiny_spec

TWO_RUNS = {"activations": ["relu"], "batchnorm": [False], "seeds": 2}
FAST = ["--executor", "serial", "--device", "cpu"]


def _spec(tmp_path, name, file=None, **changes):
    path = tmp_path / (file or f"{name}.yaml")
    path.write_text(
        yaml.safe_dump(tiny_spec(name=name, compare=dict(TWO_RUNS), **changes), sort_keys=False)
    )
    return path


def _records(results, name):
    return {
        p.parent.name: json.loads(p.read_text())["status"]
        for p in (results / name / "runs").glob("*/run.json")
    }


def _flat(text):
    return " ".join(text.split())


def test_two_specs_from_a_glob_train_in_one_call_with_one_summary(cli, tmp_path):
    _spec(tmp_path, "tiny-a")
    _spec(tmp_path, "tiny-b")
    results = tmp_path / "results"
    code, out, err = cli("run", *sorted(tmp_path.glob("*.yaml")), "--results", results, *FAST)
    assert code == 0, out + err
    for name in ("tiny-a", "tiny-b"):
        assert _records(results, name) == {"relu-nobn-he-s000": "ok", "relu-nobn-he-s001": "ok"}
    text = _flat(out)
    assert (
        "tiny-a: 2 runs: 0 done, 2 to train" in text
        and "tiny-b: 2 runs: 0 done, 2 to train" in text
    )
    assert "ok tiny-b: relu seed 1" in text  # each run's line names its spec
    assert "tiny-a: 2 runs in" in text and "tiny-b: 2 runs in" in text  # one table per spec
    assert text.count("all 4 runs recorded") == 1 and "tiny-a: all 2 runs recorded" in text
    code, out, err = cli("run", *sorted(tmp_path.glob("*.yaml")), "--results", results, *FAST)
    assert code == 0 and "tiny-b: 2 runs: 2 done, 0 to train" in _flat(out), out + err


def test_a_bad_second_spec_stops_everything_before_the_first_trains(cli, tmp_path):
    good = _spec(tmp_path, "tiny-a")
    bad = _spec(tmp_path, "tiny-b", train={"batch_size": 32, "lr": 0.05, "iterations": "ten"})
    code, out, err = cli("run", good, bad, "--results", tmp_path / "results", *FAST)
    assert code == 2 and str(bad) in err and "train.iterations" in err, out + err
    assert not (tmp_path / "results").exists()


def test_a_flag_that_does_not_fit_one_spec_names_that_spec(cli, tmp_path):
    a = _spec(tmp_path, "tiny-a")
    b = _spec(tmp_path, "tiny-b", data={"dataset": "synthetic", "synthetic": {"train_size": 64}})
    code, _, err = cli(
        "run",
        a,
        b,
        "--results",
        tmp_path / "r",
        "--dry-run",
        "--set",
        "data.preprocess=none",
        "--set",
        "data.synthetic.train_size=100",
    )
    assert code == 2 and str(a) in err and "synthetic" in err, err


@pytest.mark.parametrize("what", ["another version", "missing dataset"])
def test_a_later_spec_that_could_not_start_is_refused_before_the_first_trains(cli, tmp_path, what):
    a = _spec(tmp_path, "tiny-a")
    results = tmp_path / "results"
    if what == "another version":
        b = _spec(tmp_path, "tiny-b")
        (results / "tiny-b").mkdir(parents=True)
        (results / "tiny-b" / "spec.json").write_text(
            json.dumps({"spec_name": "tiny-b", "spec_hash": "0123456789abcdef", "spec": {}})
        )
        words = "refusing to mix"
    else:
        b = _spec(
            tmp_path, "tiny-b", data={"dataset": "mnist"}, model={"stacks": ["1x8x3", "1x10x1"]}
        )
        words = "--download"
    code, out, err = cli("run", a, b, "--results", results, "--data-dir", tmp_path / "empty", *FAST)
    assert code == 2 and str(b) in err and words in err, out + err
    assert not (results / "tiny-a").exists()


def test_two_files_with_one_spec_name_are_refused_naming_both(cli, tmp_path):
    a = _spec(tmp_path, "tiny", "a.yaml")
    b = _spec(tmp_path, "tiny", "b.yaml")
    code, out, err = cli("run", a, b, "--results", tmp_path / "results", *FAST)
    flat = _flat(err)
    assert code == 2 and str(a) in flat and str(b) in flat and "same name" in flat, out + err
    assert not (tmp_path / "results").exists()


def test_the_same_file_twice_is_trained_once_with_a_note(cli, tmp_path):
    a = _spec(tmp_path, "tiny-a")
    code, out, err = cli("run", a, a, "--results", tmp_path / "r", "--dry-run", *FAST)
    assert code == 0, out + err
    assert f"{a} is given more than once" in _flat(out)
    assert _flat(out).count("tiny-a (spec hash") == 1 and "2 specs" not in out


def test_dry_run_of_two_specs_lists_both_and_a_total(cli, tmp_path):
    a, b = _spec(tmp_path, "tiny-a"), _spec(tmp_path, "tiny-b")
    code, out, err = cli("run", a, b, "--results", tmp_path / "r", "--dry-run", "--device", "cpu")
    assert code == 0, out + err
    text = _flat(out)
    assert "tiny-a (spec hash" in text and "tiny-b (spec hash" in text
    assert text.count("estimate on cpu: 2 runs") == 2
    assert "2 specs: 4 runs, 0 done, 4 to train; estimate" in text and "in all" in text
    assert not (tmp_path / "r").exists()  # a dry run writes nothing
    code, out, err = cli(
        "run",
        a,
        b,
        "--results",
        tmp_path / "r",
        "--dry-run",
        "--device",
        "cpu",
        "--shard",
        "2/2",
        "-a",
        "relu,elu",
    )
    assert code == 0 and "2 specs: 4 runs, 0 done, 4 to train" in _flat(out), (
        out + err
    )  # each spec's slice


def test_a_failed_run_in_one_spec_does_not_stop_the_next_and_sets_the_exit_code(
    cli, tmp_path, monkeypatch
):
    import elubench.training.trainer

    real = elubench.training.trainer.train_run

    def crash(spec, cfg, *args, **kwargs):
        if spec.name == "tiny-a" and cfg.seed == 1:
            raise RuntimeError("boom")
        return real(spec, cfg, *args, **kwargs)

    monkeypatch.setattr(elubench.training.trainer, "train_run", crash)
    results = tmp_path / "results"
    code, out, err = cli(
        "run", _spec(tmp_path, "tiny-a"), _spec(tmp_path, "tiny-b"), "--results", results, *FAST
    )
    assert code == 3, out + err
    assert _records(results, "tiny-a") == {"relu-nobn-he-s000": "ok", "relu-nobn-he-s001": "failed"}
    assert set(_records(results, "tiny-b").values()) == {"ok"}
    text = _flat(out)
    assert "1 of 4 runs failed" in text and "tiny-a/relu-nobn-he-s001" in text
    assert (
        "tiny-a: 1 of 2 runs failed (exit code 3)" in text and "tiny-b: all 2 runs recorded" in text
    )


def test_a_mistake_found_once_something_trained_stops_only_its_spec(cli, tmp_path, monkeypatch):
    import elubench.data.load
    from elubench.core.errors import DataError

    real = elubench.data.load.load_data

    def load(data, **kwargs):
        if data.preprocess == "none":
            raise DataError("the images do not decode", where="somewhere")
        return real(data, **kwargs)

    monkeypatch.setattr(elubench.data.load, "load_data", load)
    a = _spec(tmp_path, "tiny-a")
    b = _spec(tmp_path, "tiny-b", data={"dataset": "digits", "preprocess": "none"})
    c = _spec(tmp_path, "tiny-c")
    results = tmp_path / "results"
    code, out, err = cli("run", a, b, c, "--results", results, *FAST)
    assert code == 4, out + err
    text = _flat(out)
    assert "tiny-b: stopped" in text and "the images do not decode" in text
    assert "tiny-b/relu-nobn-he-s000: not trained: somewhere: the images do not decode" in text
    assert len(_records(results, "tiny-a")) == len(_records(results, "tiny-c")) == 2
    # with one spec (or before anything trained) a mistake is exit 2, as always
    code, out, err = cli("run", b, a, "--results", tmp_path / "other", *FAST)
    assert code == 2 and "the images do not decode" in err, out + err


def test_ctrl_c_says_what_each_spec_folder_holds_and_exits_130(cli, tmp_path, monkeypatch):
    import elubench.core.errors
    import elubench.training.trainer

    real = elubench.training.trainer.train_run

    def stop(spec, cfg, *args, **kwargs):
        if spec.name == "tiny-b":
            raise elubench.core.errors.Stopped(f"{cfg.run_id} stopped at iteration 10")
        return real(spec, cfg, *args, **kwargs)

    monkeypatch.setattr(elubench.training.trainer, "train_run", stop)
    results = tmp_path / "results"
    specs = [_spec(tmp_path, name) for name in ("tiny-a", "tiny-b", "tiny-c")]
    code, out, err = cli("run", *specs, "--results", results, *FAST)
    assert code == 130, out + err
    text = _flat(out)
    assert f"tiny-a: 2 of 2 runs are recorded in {results / 'tiny-a'}" in text
    assert "tiny-b: 0 of 2 runs are recorded" in text and "(stopped here)" in text
    assert "tiny-c: 0 of 2 runs are recorded" in text and "(not started)" in text
    assert "run the same command to continue" in text
    assert not (results / "tiny-c").exists()


def test_an_executors_note_names_its_spec():
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from elubench.api.progress import CampaignReporter

    console = Console(file=io.StringIO(), width=120)
    reporter = CampaignReporter(
        console, [SimpleNamespace(name="alpha", todo=4), SimpleNamespace(name="beta", todo=2)]
    )
    reporter.experiment_start(1, SimpleNamespace(spec=SimpleNamespace(task="classification")))
    reporter.note("2 runs sent to Ray (a local instance)")
    reporter.close()
    assert "beta: 2 runs sent to Ray (a local instance)" in console.file.getvalue()
