"""End-to-end training on the real digits set (seconds each on a 2-core CPU)."""

import json

import pytest
from conftest import tiny_spec

from elubench.execution.runner import execute_run, run_matrix
from elubench.execution.state import RunSettings
from elubench.spec.loader import validate_spec
from elubench.spec.matrix import expand
from elubench.store.record import REQUIRED_KEYS, read_record
from elubench.store.rundir import ResultsDir

pytestmark = pytest.mark.slow


def _spec(**train):
    base = {"batch_size": 32, "lr": 0.05, "iterations": 60, "eval_every": 20}
    base.update(train)
    return validate_spec(tiny_spec(train=base))


def _settings(tmp_path, **kw):
    return RunSettings(results=tmp_path, device="cpu", checkpoint_seconds=0, **kw)


def test_matrix_records_every_run_with_the_contract_keys(tmp_path):
    spec = _spec()
    configs = expand(spec, seeds=1)
    records = run_matrix(spec, configs, _settings(tmp_path))
    assert len(records) == 4
    for cfg in configs:
        record = read_record(tmp_path / "tiny" / "runs" / cfg.run_id / "run.json")
        assert set(REQUIRED_KEYS) <= set(record.to_json())
        assert record["status"] == "ok" and isinstance(record["batchnorm"], bool)
        assert isinstance(record["test_errors"], int) and record["test_size"] == 445
        assert record["test_error"] == record["test_errors"] / 445
        assert record["test_error"] < 0.5  # chance is 0.9
        assert record["iterations"] == 60 and record["images_per_second"] > 0
        metrics = [
            json.loads(line)
            for line in (tmp_path / "tiny" / "runs" / cfg.run_id / "metrics.jsonl")
            .read_text()
            .splitlines()
        ]
        assert [m["iteration"] for m in metrics] == [0, 20, 40, 60]
        assert set(metrics[-1]["activations"]) == {"s1_conv1", "s2_conv2"}
        assert metrics[-1]["test_errors"] == record["test_errors"]
        assert not (tmp_path / "tiny" / "runs" / cfg.run_id / "checkpoint.pt").exists()
    hashes = {r["init_hash"] for r in records}
    assert len(hashes) == 1  # one seed: every activation and BN setting started alike


def test_rerun_skips_done_runs_and_does_only_the_missing(tmp_path):
    spec = _spec()
    configs = expand(spec, seeds=1)
    run_matrix(spec, configs[:2], _settings(tmp_path))
    done = {
        c.run_id: (tmp_path / "tiny" / "runs" / c.run_id / "run.json").stat().st_mtime_ns
        for c in configs[:2]
    }
    records = run_matrix(spec, configs, _settings(tmp_path))
    assert len(records) == 4
    for run_id, mtime in done.items():
        assert (tmp_path / "tiny" / "runs" / run_id / "run.json").stat().st_mtime_ns == mtime


def test_same_seed_twice_gives_the_same_result(tmp_path):
    spec = _spec()
    cfg = expand(spec, seeds=1)[1]  # elu+bn
    a = execute_run(spec, cfg, _settings(tmp_path / "a"))
    b = execute_run(spec, cfg, _settings(tmp_path / "b"))
    assert a["test_errors"] == b["test_errors"] and a["train_loss"] == b["train_loss"]


def test_stopped_run_resumes_to_the_same_record(tmp_path):
    spec = _spec(iterations=50, eval_every=10)
    cfg = expand(spec, seeds=1)[2]  # relu, no BN, dropout on
    whole = execute_run(spec, cfg, _settings(tmp_path / "whole"))

    from elubench.core.errors import Stopped

    calls = {"n": 0}

    def stop_after_23_steps():
        calls["n"] += 1
        return calls["n"] >= 23

    settings = _settings(tmp_path / "parts")
    ResultsDir(settings.results, spec).prepare()
    with pytest.raises(Stopped):
        execute_run(spec, cfg, settings, should_stop=stop_after_23_steps)
    run_dir = tmp_path / "parts" / "tiny" / "runs" / cfg.run_id
    assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "run.json").exists()
    resumed = execute_run(spec, cfg, settings)
    assert resumed["resumed_at"] == [23]
    assert resumed["test_errors"] == whole["test_errors"]
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-6)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [0, 10, 20, 30, 40, 50]


def test_divergence_is_recorded_not_raised(tmp_path):
    spec = _spec(lr=1e6, iterations=200, eval_every=100)
    cfg = expand(spec, seeds=1)[2]  # relu without BN blows up at this rate
    record = execute_run(spec, cfg, _settings(tmp_path))
    assert record["status"] == "diverged"
    assert "non-finite training loss" in record["reason"]
    assert 1 <= record["iterations"] < 200
    assert record["test_errors"] is None


def test_a_crash_is_recorded_as_failed_and_retried(tmp_path, monkeypatch):
    spec = _spec()
    cfg = expand(spec, seeds=1)[0]
    import elubench.training.trainer as train

    def boom(*a, **k):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(train, "train_run", boom)
    record = execute_run(spec, cfg, _settings(tmp_path))
    assert record["status"] == "failed" and "simulated" in record["reason"]
    monkeypatch.undo()
    record = execute_run(spec, cfg, _settings(tmp_path))
    assert record["status"] == "ok"
    assert (tmp_path / "tiny" / "runs" / cfg.run_id / "attempt-1.json").exists()


def test_autoencoder_trains_and_its_error_falls(tmp_path):
    spec = validate_spec(
        tiny_spec(
            task="autoencoder",
            data={"dataset": "digits", "preprocess": "none"},
            model={"stacks": ["1x32xFC", "1x8xFC", "1x32xFC", "1x64xFC"], "pool": "none"},
            train={
                "batch_size": 32,
                "lr": 0.1,
                "iterations": 150,
                "eval_every": 50,
                "optimizer": {"momentum": 0.9, "weight_decay": 0.0},
            },
            compare={"activations": ["elu"], "batchnorm": [False], "seeds": 1},
        )
    )
    record = execute_run(spec, expand(spec)[0], _settings(tmp_path))
    assert record["status"] == "ok" and record["test_errors"] is None
    lines = [
        json.loads(x)
        for x in (tmp_path / spec.name / "runs" / expand(spec)[0].run_id / "metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    assert lines[-1]["test_error"] < 0.6 * lines[0]["test_error"]


def test_prelu_slopes_are_recorded_and_learned(tmp_path):
    spec = validate_spec(
        tiny_spec(
            compare={"activations": ["prelu"], "batchnorm": [False], "seeds": 1},
            train={"batch_size": 32, "lr": 0.05, "iterations": 40},
        )
    )
    record = execute_run(spec, expand(spec)[0], _settings(tmp_path))
    slopes = record["prelu_slopes"]
    assert set(slopes) == {"s1_conv1", "s2_conv2"}
    assert any(abs(s["mean"] - 0.25) > 1e-4 for s in slopes.values())


def test_shards_from_two_machines_merge_by_copying(cli, tmp_path):
    import shutil

    import yaml

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            tiny_spec(train={"batch_size": 32, "lr": 0.05, "iterations": 20}), sort_keys=False
        )
    )
    for index, machine in ((1, "a"), (2, "b")):
        code, _, err = cli(
            "run", spec, "--results", tmp_path / machine, "--shard", f"{index}/2", "--device", "cpu"
        )
        assert code == 0, err
    a_runs = {p.name for p in (tmp_path / "a" / "tiny" / "runs").iterdir()}
    b_runs = {p.name for p in (tmp_path / "b" / "tiny" / "runs").iterdir()}
    assert len(a_runs) == len(b_runs) == 4 and not a_runs & b_runs
    shutil.copytree(tmp_path / "b", tmp_path / "a", dirs_exist_ok=True)
    code, out, err = cli("compare", tmp_path / "a", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["tables"]["descriptives"]
    assert {r["config"]: r["n_ok"] for r in rows} == {
        "elu": 2,
        "elu+bn": 2,
        "relu": 2,
        "relu+bn": 2,
    }
    code, out, _ = cli("run", spec, "--results", tmp_path / "a", "--device", "cpu")
    assert code == 0 and "8 runs: 8 done, 0 to train" in out


class MemorySink:
    """A RunSink that keeps everything in memory: the trainer needs no results tree."""

    def __init__(self):
        self.lines, self.checkpoint = [], None

    def metrics(self):
        return list(self.lines)

    def truncate_metrics(self, last_iteration):
        self.lines = [line for line in self.lines if line["iteration"] <= last_iteration]

    def append_metrics(self, line):
        self.lines.append(line)

    def load_checkpoint(self):
        return self.checkpoint

    def save_checkpoint(self, payload):
        self.checkpoint = payload


def test_the_trainer_trains_into_any_sink_and_matches_the_store(tmp_path):
    import torch

    from elubench.data.load import load_data
    from elubench.training.trainer import LoopOptions, train_run

    spec = _spec()
    cfg = expand(spec, activations=["elu"], batchnorm=[True], seeds=1)[0]
    stored = execute_run(spec, cfg, _settings(tmp_path))
    sink = MemorySink()
    torch.set_num_threads(stored["threads"])
    record = train_run(
        spec, cfg, load_data(spec.data), sink, LoopOptions(device=torch.device("cpu"))
    )
    assert record.status == "ok" and record.test_errors == stored.test_errors
    assert [line["iteration"] for line in sink.lines] == [0, 20, 40, 60]
    on_disk = [
        json.loads(x)
        for x in (tmp_path / "tiny" / "runs" / cfg.run_id / "metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [line["test_error"] for line in on_disk] == [line["test_error"] for line in sink.lines]


def test_cpu_records_say_which_allocator_setting_was_in_force(tmp_path):
    import subprocess
    import sys

    record = execute_run(_spec(), expand(_spec(), seeds=1)[0], _settings(tmp_path))
    assert record.allocator.startswith("glibc keeps freed memory")
    code = (
        "import torch; from elubench.training.runtime import configure, allocator_setting; "
        "configure(torch.device('cpu')); print(allocator_setting(torch.device('cpu')))"
    )
    off = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "ELUBENCH_KEEP_FREED_MEMORY": "0"},
    )
    assert off.stdout.strip() == "default (turned off by ELUBENCH_KEEP_FREED_MEMORY)"
