"""Executors on the digits set: worker processes, Ray, submitit's local and debug clusters.

Every run is pinned to one CPU thread (RunSettings.threads=1) in every executor, so the parallel
paths must reproduce the serial path's results exactly (CPU training is deterministic for a
fixed thread count; different thread counts may reorder float sums).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_spec

from elubench.core.errors import DataError, ExecutorError
from elubench.core.machine import visible_gpus
from elubench.execution.executors.base import StopFlag, WorkerPayload
from elubench.execution.executors.factory import make_executor
from elubench.execution.executors.local import assign_gpus
from elubench.execution.executors.slurm import sbatch_options
from elubench.execution.runner import execute_run, run_matrix
from elubench.execution.state import Reporter, RunSettings
from elubench.spec.loader import validate_spec
from elubench.spec.matrix import expand
from elubench.store.record import read_record

SPEC = tiny_spec(train={"batch_size": 32, "lr": 0.05, "iterations": 30, "eval_every": 10})


def _spec(**train):
    return validate_spec(tiny_spec(train={**SPEC["train"], **train}))


def _settings(path, **kw):
    return RunSettings(results=path, device="cpu", checkpoint_seconds=0, threads=1, **kw)


class Recorder(Reporter):
    """Remembers what a driver reported, per run."""

    def __init__(self):
        self.ended, self.skipped, self.started = {}, {}, []

    def run_start(self, cfg, index, todo):
        self.started.append(cfg.run_id)

    def run_end(self, cfg, record):
        assert cfg.run_id not in self.ended
        self.ended[cfg.run_id] = record

    def run_skipped(self, cfg, reason):
        self.skipped[cfg.run_id] = reason


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The serial path's records of the whole matrix (2 activations x 2 BN x 2 seeds)."""
    spec = _spec()
    records = run_matrix(spec, expand(spec), _settings(tmp_path_factory.mktemp("serial")))
    return {r["run_id"]: r for r in records}


def _stored(root: Path, spec, configs) -> dict[str, dict]:
    runs = root / spec.name / "runs"
    return {c.run_id: read_record(runs / c.run_id / "run.json") for c in configs}


def _assert_same_as_serial(records: dict, serial: dict) -> None:
    for run_id, record in records.items():
        assert record["status"] == "ok", record.get("reason")
        assert record["test_errors"] == serial[run_id]["test_errors"], run_id
        assert record["train_loss"] == serial[run_id]["train_loss"], run_id
        assert record["init_hash"] == serial[run_id]["init_hash"], run_id


# --- choosing and building executors --------------------------------------------------------


def test_unknown_executor_and_option_are_clear_errors():
    with pytest.raises(ExecutorError, match="unknown executor 'dask'") as info:
        make_executor("dask")
    assert "serial, local, ray, slurm" in str(info.value)
    with pytest.raises(ExecutorError, match="takes no option workers"):
        make_executor("serial", workers=2)
    with pytest.raises(ExecutorError, match="at least one worker"):
        make_executor("local", workers=0)


@pytest.mark.parametrize(
    "name, module, install",
    [("ray", "ray", "elubench[ray]"), ("slurm", "submitit", "elubench[slurm]")],
)
def test_a_missing_extra_says_what_to_install(monkeypatch, name, module, install):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    expected = rf"the {name} executor needs .*: pip install '{re.escape(install)}'"
    with pytest.raises(ExecutorError, match=expected):
        make_executor(name)


def test_slurm_without_sbatch_points_to_the_local_cluster(monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ExecutorError, match="no sbatch") as info:
        make_executor("slurm")
    assert "--slurm-cluster local" in str(info.value)
    with pytest.raises(ExecutorError, match="unknown submitit cluster"):
        make_executor("slurm", cluster="pbs")


def test_sbatch_options_and_gpu_placement(monkeypatch):
    assert sbatch_options(["account=abc", "--qos = high"]) == {"account": "abc", "qos": "high"}
    with pytest.raises(ExecutorError, match="KEY=VALUE"):
        sbatch_options(["account"])
    assert assign_gpus(3, ["0", "1"]) == ["0", "1", "0"]
    assert assign_gpus(2, []) == [None, None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_what_travels_to_workers_pickles(tmp_path):
    spec = _spec()
    work = WorkerPayload(
        spec.model_dump(mode="json"), spec.hash, _settings(tmp_path), StopFlag(tmp_path / "stop")
    )
    back = pickle.loads(pickle.dumps(work))
    assert back.settings == work.settings and back.spec().hash == spec.hash
    assert not back.stop()
    work.stop.request()
    assert pickle.loads(pickle.dumps(work)).stop()


# --- local worker processes -----------------------------------------------------------------


@pytest.mark.slow
def test_local_workers_record_every_run_once_as_the_serial_path_does(tmp_path, serial):
    spec = _spec()
    configs = expand(spec)
    broken = configs[5]
    # metrics.jsonl as a folder: the OS refuses this one run's writes (IsADirectoryError) in its
    # worker; the run is left resumable, not failed, and stops no other run
    (tmp_path / spec.name / "runs" / broken.run_id / "metrics.jsonl").mkdir(parents=True)
    reporter = Recorder()
    records = make_executor("local", workers=2).run(spec, configs, _settings(tmp_path), reporter)
    others = sorted(c.run_id for c in configs if c is not broken)
    assert sorted(r["run_id"] for r in records) == others
    assert sorted(reporter.started) == sorted(c.run_id for c in configs)
    assert sorted(reporter.ended) == others
    assert list(reporter.skipped) == [broken.run_id]
    assert "Is a directory" in reporter.skipped[broken.run_id]
    assert not (tmp_path / spec.name / "runs" / broken.run_id / "run.json").exists()
    _assert_same_as_serial(
        _stored(tmp_path, spec, [c for c in configs if c is not broken]), serial
    )  # the broken run stopped no other run
    assert not list((tmp_path / spec.name).rglob("attempt-*.json"))
    assert not (tmp_path / spec.name / ".stop").exists()
    again = Recorder()  # a second invocation trains only the run left behind
    (tmp_path / spec.name / "runs" / broken.run_id / "metrics.jsonl").rmdir()
    records = make_executor("local", workers=2).run(spec, configs, _settings(tmp_path), again)
    assert again.started == [broken.run_id] and len(records) == 8
    _assert_same_as_serial(_stored(tmp_path, spec, configs), serial)


@pytest.mark.slow
def test_two_drivers_on_one_results_folder_train_each_run_once(tmp_path):
    raw = tiny_spec(train=SPEC["train"])
    spec = validate_spec(raw)
    drivers = [_driver(raw, tmp_path, seeds=2, order=order, workers=1) for order in (1, -1)]
    outputs = [driver.communicate(timeout=120)[0] for driver in drivers]  # they meet midway
    assert [driver.returncode for driver in drivers] == [0, 0], outputs
    stored = _stored(tmp_path, spec, expand(spec))
    assert all(r["status"] == "ok" for r in stored.values())
    finished = [json.loads(out.splitlines()[-1]) for out in outputs]
    assert set(finished[0]) | set(finished[1]) == set(stored)
    for run_id, at in [*finished[0].items(), *finished[1].items()]:
        # a run trained twice would leave two different finish times behind
        assert at == stored[run_id]["finished_at"], run_id
    assert not list((tmp_path / spec.name).rglob("attempt-*.json"))


@pytest.mark.slow
def test_a_killed_worker_is_reported_lost_and_its_run_retried_next_time(tmp_path):
    spec = _spec(iterations=300, eval_every=100)
    configs = expand(spec, seeds=1)[:2]
    victim = tmp_path / spec.name / "runs" / configs[0].run_id / "claim.json"

    class Killer(Recorder):
        def run_start(self, cfg, index, todo):
            super().run_start(cfg, index, todo)
            if cfg == configs[0]:
                _wait_for(lambda: _owner(victim))  # the worker has claimed the run: kill it
                os.kill(_owner(victim), signal.SIGKILL)

    reporter = Killer()
    records = make_executor("local", workers=1).run(spec, configs, _settings(tmp_path), reporter)
    assert "lost" in reporter.skipped[configs[0].run_id]
    assert "killed by signal 9" in reporter.skipped[configs[0].run_id]
    assert [r["run_id"] for r in records] == [configs[1].run_id]
    assert victim.exists()  # its claim stays behind, owned by a dead process
    record = run_matrix(spec, configs[:1], _settings(tmp_path))[0]
    assert record["status"] == "ok" and not victim.exists()


def _owner(claim: Path) -> int | None:
    """The pid in a claim file, once it is there and written."""
    try:
        return json.loads(claim.read_text())["pid"]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


DRIVER = """
import json, sys
from elubench.execution.executors.factory import make_executor
from elubench.spec.matrix import expand
from elubench.core.errors import Interrupted
from elubench.execution.state import RunSettings
from elubench.spec.loader import validate_spec
spec = validate_spec({spec!r})
settings = RunSettings(results={root!r}, device="cpu", checkpoint_seconds=0, threads=1)
try:
    records = make_executor("local", workers={workers}).run(
        spec, expand(spec, seeds={seeds})[::{order}], settings)
except Interrupted as stop:
    print("interrupted", len(stop.records))
    sys.exit(130)
print(json.dumps({{r["run_id"]: r["finished_at"] for r in records}}))
"""


def _driver(raw: dict, root: Path, *, seeds: int, order: int, workers: int) -> subprocess.Popen:
    """`run` of the local executor in a process of its own (a second user, a Ctrl-C target)."""
    script = DRIVER.format(spec=raw, root=str(root), seeds=seeds, order=order, workers=workers)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_runs_in_progress_and_a_rerun_resumes_them(tmp_path):
    raw = tiny_spec(train={"batch_size": 32, "lr": 0.05, "iterations": 2000, "eval_every": 500})
    spec = validate_spec(raw)
    driver = _driver(raw, tmp_path, seeds=1, order=1, workers=2)
    runs = tmp_path / spec.name / "runs"
    _wait_for(lambda: len(list(runs.glob("*/metrics.jsonl"))) >= 2)  # both workers are training
    driver.send_signal(signal.SIGINT)
    out, _ = driver.communicate(timeout=60)
    assert driver.returncode == 130 and out.startswith("interrupted"), out
    stopped = [c for c in expand(spec, seeds=1) if (runs / c.run_id / "checkpoint.pt").exists()]
    assert len(stopped) == 2
    assert not list(runs.glob("*/claim.json")) and not list(runs.glob("*/run.json"))
    record = execute_run(spec, stopped[0], _settings(tmp_path))
    assert record["status"] == "ok" and record["resumed_at"] and record["resumed_at"][0] > 0


# --- Ray --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_runs_the_matrix_on_a_local_instance(tmp_path, serial):
    ray = pytest.importorskip("ray")
    spec = _spec()
    configs = expand(spec, seeds=1)
    executor = make_executor("ray", local_cpus=2, cpus_per_run=1)
    reporter = Recorder()
    try:
        records = executor.run(spec, configs, _settings(tmp_path), reporter)
    except ExecutorError as exc:
        if "cannot start or reach Ray" in str(exc):
            pytest.skip(f"Ray cannot start here: {exc}")
        raise
    assert not ray.is_initialized()  # the instance it started is shut down
    assert sorted(reporter.ended) == sorted(c.run_id for c in configs)
    assert len(records) == 4
    _assert_same_as_serial(_stored(tmp_path, spec, configs), serial)


# --- Slurm through submitit -------------------------------------------------------------------


@pytest.mark.slow
def test_slurm_job_array_on_submitits_local_cluster(tmp_path, serial):
    pytest.importorskip("submitit")
    spec = _spec()
    configs = expand(spec, seeds=1)[:2]
    executor = make_executor(
        "slurm",
        cluster="local",
        cpus_per_run=1,
        time_min=10,
        poll_seconds=0.2,
        sbatch=["account=ignored-here"],
    )
    reporter = Recorder()
    records = executor.run(spec, configs, _settings(tmp_path), reporter)
    assert sorted(reporter.ended) == sorted(c.run_id for c in configs) and len(records) == 2
    _assert_same_as_serial(_stored(tmp_path, spec, configs), serial)
    assert list((tmp_path / spec.name / "slurm").rglob("*.out"))  # logs sit beside the runs


@pytest.mark.slow
def test_a_users_mistake_in_a_worker_stops_the_matrix_with_its_message(tmp_path):
    pytest.importorskip("submitit")
    spec = validate_spec(tiny_spec(data={"dataset": "mnist", "preprocess": "standardize"}))
    settings = _settings(tmp_path, data_dir=tmp_path / "no-data")
    with pytest.raises(DataError, match="mnist was not found") as info:
        make_executor("slurm", cluster="debug", poll_seconds=0).run(spec, expand(spec), settings)
    assert "--download" in str(info.value)
    back = pickle.loads(pickle.dumps(info.value))  # as it travels back from a worker process
    assert isinstance(back, DataError) and back.render() == info.value.render()
    assert not list((tmp_path / spec.name / "runs").rglob("run.json"))


@pytest.mark.slow
def test_slurm_debug_cluster_records_a_crash_and_finishes_the_rest(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    import elubench.training.trainer as train

    spec = _spec()
    configs = expand(spec, seeds=1)
    real = train.train_run

    def crash_one(spec, cfg, *args, **kwargs):
        if cfg == configs[2]:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(spec, cfg, *args, **kwargs)

    monkeypatch.setattr(train, "train_run", crash_one)
    records = make_executor("slurm", cluster="debug", poll_seconds=0).run(
        spec, configs, _settings(tmp_path)
    )
    status = {r["run_id"]: r["status"] for r in records}
    assert status.pop(configs[2].run_id) == "failed"
    assert list(status.values()) == ["ok"] * 3
