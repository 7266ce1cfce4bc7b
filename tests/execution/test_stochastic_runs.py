"""Stochastic activations trained end to end (issue 28): torch's RReLU named from code and the
built-in rrelu train and compare through the CLI, paired with elu and relu (the same initial
weights per seed); a run is reproducible, resumes to the record it would have had, and local
workers give the serial path's numbers. Tiny specs on the digits: seconds each."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import tiny_spec

from elubench.core.errors import Stopped
from elubench.execution.executors.factory import make_executor
from elubench.execution.runner import execute_run, run_matrix
from elubench.execution.state import RunSettings
from elubench.spec.loader import load_spec
from elubench.spec.matrix import expand
from elubench.store.record import read_metrics
from elubench.store.rundir import ResultsDir

pytestmark = pytest.mark.slow

TRAIN = {"batch_size": 32, "lr": 0.05, "iterations": 40, "eval_every": 10}
# dropout on: the masks come from the global stream the activation's noise must not shift
MODEL = {"stacks": ["1x8x3", "1x16x3", "1x10x1"], "dropout": [0.0, 0.2, 0.0]}


def _spec_file(tmp_path, activations, seeds=3):
    spec = tiny_spec(
        model=MODEL,
        train=TRAIN,
        compare={"activations": activations, "batchnorm": [False], "seeds": seeds},
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _settings(path, **kw):
    return RunSettings(results=path, device="cpu", checkpoint_seconds=0, threads=1, **kw)


@pytest.mark.parametrize(
    "activations, label",
    [("torch.nn:RReLU,elu,relu", "torch.nn.RReLU"), ("rrelu,lrelu,relu", "rrelu")],
)
def test_it_trains_and_compares_paired_with_the_others(tmp_path, cli, activations, label):
    spec = _spec_file(tmp_path, ["elu", "relu"])
    code, _, err = cli(
        "run", spec, "--results", tmp_path / "r", "--activations", activations, "--seeds", "3"
    )
    assert code == 0, err
    code, out, err = cli("compare", tmp_path / "r", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    rows = result["tables"]["paired"]
    assert (
        f"{label} is random in training; its noise came from a random stream" in result["methods"]
    )
    assert any(r["a"] == label and r["b"] == "relu" and r["n_pairs"] == 3 for r in rows), rows
    records = [json.loads(path.read_text()) for path in (tmp_path / "r").glob("*/runs/*/run.json")]
    assert len(records) == 9 and {r["status"] for r in records} == {"ok"}
    for seed in range(3):  # every activation of a seed started from the same weights
        assert len({r["init_hash"] for r in records if r["seed"] == seed}) == 1


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serial")
    spec = load_spec(_spec_file(folder, ["rrelu", "relu"], seeds=2))
    records = run_matrix(spec, expand(spec), _settings(folder / "results"))
    return spec, records, ResultsDir(folder / "results", spec)


def test_the_same_seed_gives_the_same_record_and_curves(tmp_path, serial):
    spec, reference, results = serial
    cfg = next(c for c in expand(spec) if c.activation == "rrelu" and c.seed == 1)
    again = execute_run(spec, cfg, _settings(tmp_path))
    first = next(r for r in reference if r["run_id"] == cfg.run_id)
    assert again["test_errors"] == first["test_errors"]
    assert again["train_loss"] == first["train_loss"]
    curves = [
        [line["train_loss"] for line in read_metrics(where.run(cfg.run_id).path / "metrics.jsonl")]
        for where in (ResultsDir(tmp_path, spec), results)
    ]
    assert curves[0] == curves[1] and len(curves[0]) == 5


def test_a_stopped_run_resumes_to_the_record_of_the_uninterrupted_one(tmp_path, serial):
    """The noise stream's position (its call count) travels in the checkpoint: a resumed run
    draws what the uninterrupted one drew."""
    spec, reference, _ = serial
    cfg = next(c for c in expand(spec) if c.activation == "rrelu" and c.seed == 0)
    whole = next(r for r in reference if r["run_id"] == cfg.run_id)
    calls = {"n": 0}

    def stop_after_17_steps():
        calls["n"] += 1
        return calls["n"] >= 17

    settings = _settings(tmp_path)
    ResultsDir(settings.results, spec).prepare()
    with pytest.raises(Stopped):
        execute_run(spec, cfg, settings, should_stop=stop_after_17_steps)
    resumed = execute_run(spec, cfg, settings)
    assert resumed["resumed_at"] == [17]
    assert resumed["test_errors"] == whole["test_errors"]
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-6)


def test_local_workers_train_it_as_the_serial_path_does(tmp_path, serial):
    spec, reference, _ = serial
    records = make_executor("local", workers=2).run(spec, expand(spec), _settings(tmp_path))
    by_id = {r["run_id"]: r for r in reference}
    for record in records:
        expected = by_id[record["run_id"]]
        assert record["test_errors"] == expected["test_errors"], record["run_id"]
        assert record["train_loss"] == expected["train_loss"], record["run_id"]
