"""The same record for the same run, whatever trains it (issue 16): with the default thread
count, serial, the default (as many runs at once as the cores), --parallel, local workers, Ray
and Slurm give bit-identical metrics and results on a CPU. And `compare` names pairs trained
under different numeric conditions."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from conftest import make_results, recorded_runs, tiny_spec

SPEC = tiny_spec(
    train={"batch_size": 32, "lr": 0.05, "iterations": 30, "eval_every": 10},
    compare={"activations": ["elu", "relu"], "batchnorm": [False, True], "seeds": 1},
)

EXECUTORS = {
    "serial": ["--executor", "serial"],
    "default": [],
    "parallel": ["--parallel", "2"],
    "local": ["--executor", "local", "--workers", "2"],
    "ray": ["--executor", "ray", "--ray-cpus", "2"],
    "slurm-local": ["--executor", "slurm", "--slurm-cluster", "local"],
}
if shutil.which("sbatch"):  # a real Slurm (scripts/slurm-local.sh starts one on Debian)
    EXECUTORS["slurm"] = ["--executor", "slurm", "--slurm-time", "10"]


def _runs(folder):
    """run_id -> (the record's result, every metrics line without its timing)."""
    return {
        run_id: (result, lines, record["executor"], record["runs_at_once"])
        for run_id, (result, lines, record) in recorded_runs(folder).items()
    }


@pytest.mark.slow
def test_every_executor_gives_the_serial_records(cli, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    found = {}
    for name, flags in EXECUTORS.items():
        code, out, err = cli("run", spec, "--results", tmp_path / name, "--device", "cpu", *flags)
        assert code == 0, (name, err)
        found[name] = _runs(tmp_path / name)
    serial = found["serial"]
    assert len(serial) == 4 and all(result["threads"] == 1 for result, *_ in serial.values())
    for name, runs in found.items():
        assert runs.keys() == serial.keys(), name
        for run_id, (result, lines, _, _) in runs.items():
            assert result == serial[run_id][0], (name, run_id)
            assert lines == serial[run_id][1], (name, run_id)  # every evaluation, bit for bit
    assert {v[2] for v in found["serial"].values()} == {"serial"}
    assert {v[2:] for v in found["parallel"].values()} == {("local", 2)}
    assert {v[2] for v in found["ray"].values()} == {"ray"}


def _with_conditions(root, config, seed, **fields):
    path = next(
        root.rglob(
            f"{config.replace('+bn', '')}-{'bn' if '+bn' in config else 'nobn'}-he-s{seed:03d}/run.json"
        )
    )
    record = json.loads(path.read_text())
    record.update(fields)
    path.write_text(json.dumps(record))


def _all_with_conditions(root, errors):
    """Every run: cpu, fp32, 1 thread, torch 2.14.1."""
    for config, values in errors.items():
        for seed in range(len(values)):
            _with_conditions(
                root,
                config,
                seed,
                device="cpu",
                precision="fp32",
                threads=1,
                versions={"torch": "2.14.1"},
            )


def test_compare_names_pairs_trained_under_different_conditions(cli, tmp_path):
    errors = {"relu": [60, 62, 58, 61, 65, 59], "elu": [50, 51, 49, 52, 55, 48]}
    root = make_results(tmp_path, errors)
    _all_with_conditions(root, errors)
    _with_conditions(root, "elu", 2, threads=2)  # one seed of elu trained with 2 threads
    code, out, err = cli("compare", root, "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    warning = next(w for w in payload["warnings"] if "different conditions" in w)
    assert (
        warning.startswith("elu vs relu: 1 of 6 pairs")
        and "2 threads, torch 2.14.1 vs cpu, fp32, 1 thread" in warning
    )
    assert "cpu, fp32, 1 thread, torch 2.14.1 (11 runs)" in payload["methods"]
    assert "cpu, fp32, 2 threads, torch 2.14.1 (1 run)" in payload["methods"]


def test_same_conditions_say_so_once(cli, tmp_path):
    errors = {"relu": [60, 62, 58], "elu": [50, 51, 49]}
    root = make_results(tmp_path, errors)
    _all_with_conditions(root, errors)
    code, out, _ = cli("compare", root, "--format", "json")
    payload = json.loads(out)
    assert not any("different conditions" in w for w in payload["warnings"])
    assert "Every run was trained on cpu, fp32, 1 thread, torch 2.14.1." in payload["methods"]


def test_the_default_executor_fills_the_cores_on_a_cpu(monkeypatch):
    from elubench.execution.executors.base import SerialExecutor
    from elubench.execution.executors.factory import default_executor
    from elubench.execution.executors.local import LocalExecutor
    from elubench.spec.loader import validate_spec

    spec = validate_spec(SPEC)
    monkeypatch.setattr("elubench.core.machine.usable_cores", lambda: 8)
    monkeypatch.setattr("elubench.core.machine.available_memory", lambda: 64 * 2**30)
    chosen = default_executor("cpu", spec)
    assert isinstance(chosen, LocalExecutor) and chosen.workers == 8
    assert default_executor("cpu", spec, threads=4).workers == 2
    assert isinstance(default_executor("cpu", spec, threads=8), SerialExecutor)
    # memory bounds the runs at once: 8 cores, but room for 3 runs
    from elubench.net.memory import run_memory_bytes

    per_run = run_memory_bytes(spec, spec.compare.parsed_activations()[0])
    monkeypatch.setattr("elubench.core.machine.available_memory", lambda: int(3.5 * per_run / 0.8))
    assert default_executor("cpu", spec).workers == 3
    assert isinstance(default_executor("cuda", spec), SerialExecutor)
