"""Custom activations trained end to end (issue 10): serial, worker processes and Ray give the
serial path's numbers; a file's source travels to workers and is checked there; a changed
file is refused like a changed spec, and --force keeps the old records; a package's
registered activation is listed and trains. Tiny specs on the digits: seconds each."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SPECS, python_in, tiny_spec

from elubench.core.errors import ExecutorError
from elubench.execution.executors.base import StopFlag, WorkerPayload
from elubench.execution.executors.factory import make_executor
from elubench.execution.runner import run_matrix
from elubench.execution.state import RunSettings
from elubench.spec.loader import load_spec
from elubench.spec.matrix import expand
from elubench.store.record import read_metrics, read_record

EXAMPLE = SPECS / "examples" / "activations.py"
TRAIN = {"batch_size": 32, "lr": 0.05, "iterations": 30, "eval_every": 10}


def _spec_file(folder: Path, activations, seeds=2, baseline=None, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE, folder / "activations.py")
    compare = {"activations": activations, "batchnorm": [False], "seeds": seeds}
    spec = tiny_spec(
        train=TRAIN, compare={**compare, **({"baseline": baseline} if baseline else {})}, **changes
    )
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "spec.yaml"


def _settings(path, **kw):
    return RunSettings(results=path, device="cpu", checkpoint_seconds=0, threads=1, **kw)


def _same(records, reference):
    by_id = {r["run_id"]: r for r in reference}
    assert sorted(r["run_id"] for r in records) == sorted(by_id)
    for record in records:
        expected = by_id[record["run_id"]]
        assert record["status"] == "ok", record.get("reason")
        for key in ("test_errors", "train_loss", "init_hash", "activation_params"):
            assert record[key] == expected[key], (record["run_id"], key)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The serial path's records of PISRLU (learned alpha per channel) and elu, 2 seeds."""
    folder = tmp_path_factory.mktemp("serial")
    spec = load_spec(_spec_file(folder / "spec", ["activations.py:PISRLU", "elu"]))
    return spec, run_matrix(spec, expand(spec), _settings(folder / "results")), folder / "results"


def test_a_custom_activation_trains_paired_and_records_what_it_is(serial):
    spec, records, results = serial
    by = {(r["activation"], r["seed"]): r for r in records}
    for seed in (0, 1):  # the same initial weights as elu at each seed
        assert by[("pisrlu", seed)]["init_hash"] == by[("elu", seed)]["init_hash"]
    assert by[("pisrlu", 0)]["init_hash"] != by[("pisrlu", 1)]["init_hash"]
    record = by[("pisrlu", 0)]
    target = spec.compare.activations[0]
    assert record["run_id"] == "pisrlu-nobn-he-s000" and record["config"] == "pisrlu"
    assert record["activation_ref"] == target
    assert record["activation_source"] == {
        "reference": target,
        "qualified_name": target,
        "parameters": {"init": 1.0},
        "code": spec.activation_code[target],
    }
    learned = record["activation_params"]
    assert set(learned) == {"s1_conv1.alpha", "s2_conv2.alpha"}
    assert (
        learned["s1_conv1.alpha"]["min"] != learned["s1_conv1.alpha"]["max"]
    )  # it learned, per channel
    assert (
        by[("elu", 0)].get("activation_source") is None
        and by[("elu", 0)]["activation_params"] is None
    )
    # every evaluation's values in metrics.jsonl, as PReLU's slopes are
    folder = results / spec.name / "runs" / record["run_id"]
    lines = read_metrics(folder / "metrics.jsonl")
    assert [line["iteration"] for line in lines] == [0, 10, 20, 30]
    assert lines[0]["activation_params"]["s1_conv1.alpha"] == {"mean": 1.0, "min": 1.0, "max": 1.0}
    assert lines[-1]["activation_params"] == learned
    assert (
        "activation_params"
        not in read_metrics(folder.parent / "elu-nobn-he-s000" / "metrics.jsonl")[0]
    )
    # the results folder's spec says which code it holds runs of
    meta = json.loads((folder.parent.parent / "spec.json").read_text())
    assert (
        meta["spec"]["activation_code"] == spec.activation_code and meta["spec_hash"] == spec.hash
    )


@pytest.mark.slow
def test_local_workers_train_it_as_the_serial_path_does(tmp_path, serial):
    spec, reference, _ = serial
    records = make_executor("local", workers=2).run(spec, expand(spec), _settings(tmp_path))
    _same(records, reference)
    assert {r["executor"] for r in records} == {"local"}


@pytest.mark.slow
def test_ray_trains_it_from_the_shipped_source_as_the_serial_path_does(tmp_path, serial):
    ray = pytest.importorskip("ray")
    spec, reference, _ = serial
    executor = make_executor("ray", local_cpus=2, cpus_per_run=1)
    try:
        records = executor.run(spec, expand(spec), _settings(tmp_path))
    except ExecutorError as exc:
        if "cannot start or reach Ray" in str(exc):
            pytest.skip(f"Ray cannot start here: {exc}")
        raise
    assert not ray.is_initialized()
    _same(records, reference)


def _attempt_in_a_fresh_process(work, cfg, tmp_path):
    """attempt(work, cfg) in a new interpreter (as a worker on another node: nothing resolved)."""
    blob = tmp_path / "work.pkl"
    blob.write_bytes(pickle.dumps((work, cfg)))
    code = (
        "import pickle, sys; from elubench.execution.executors.base import attempt; "
        f"work, cfg = pickle.loads(open({str(blob)!r}, 'rb').read()); "
        "kind, payload = attempt(work, cfg); "
        "print(kind); print(payload.render() if kind == 'error' else payload.status)"
    )
    return python_in(tmp_path, code).split("\n", 1)


@pytest.mark.slow
def test_a_worker_that_cannot_see_the_file_trains_from_its_source_and_checks_it(tmp_path):
    spec = load_spec(_spec_file(tmp_path / "spec", ["activations.py:isrlu(alpha=2)"], seeds=1))
    [cfg] = expand(spec)
    payload = dict(
        spec_data=spec.model_dump(mode="json"),
        spec_hash=spec.hash,
        settings=_settings(tmp_path / "results"),
        stop=StopFlag(tmp_path / "stop"),
    )
    from elubench.activations.code import ship

    files = ship(spec)
    assert list(files) == [spec.compare.activations[0].rpartition(":")[0]]
    tampered = {
        path: source + b"\n# not the code the spec hash covers\n" for path, source in files.items()
    }
    (tmp_path / "spec" / "activations.py").unlink()  # the worker's node has no such file
    kind, text = _attempt_in_a_fresh_process(
        WorkerPayload(**payload, activation_files=tampered), cfg, tmp_path
    )
    assert kind == "error" and "changed since the spec was read" in text
    kind, text = _attempt_in_a_fresh_process(
        WorkerPayload(**payload, activation_files=files), cfg, tmp_path
    )
    assert (kind, text.strip()) == ("done", "ok")
    record = read_record(tmp_path / "results" / spec.name / "runs" / cfg.run_id / "run.json")
    assert record.activation == "isrlu(alpha=2.0)" and record.activation_source["parameters"] == {
        "alpha": 2.0
    }


# --- the command line: refusal of changed code, --force, compare ------------------------------


@pytest.mark.slow
def test_a_changed_activation_file_is_refused_and_force_keeps_the_old_records(cli, tmp_path):
    spec = _spec_file(
        tmp_path / "spec",
        ["activations.py:isrlu", "relu"],
        seeds=2,
        baseline="activations.py:isrlu",
    )  # the custom one as the baseline, by its name
    results = tmp_path / "results"
    code, out, err = cli("run", spec, "--results", results, "--device", "cpu", "--dry-run")
    assert code == 0 and "against isrlu" in " ".join(out.split()), out
    code, out, err = cli("run", spec, "--results", results, "--device", "cpu")
    assert code == 0, out + err
    runs = results / "tiny" / "runs"
    before = {p.parent.name: p.read_bytes() for p in runs.glob("*/run.json")}
    assert len(before) == 4
    code, out, err = cli("compare", results)
    assert code == 0 and "relu vs isrlu" in out
    hashes = {}
    for record in map(read_record, runs.glob("*/run.json")):
        hashes.setdefault(record.seed, set()).add(record.init_hash)
    assert all(len(h) == 1 for h in hashes.values())  # paired: one init per seed
    with open(tmp_path / "spec" / "activations.py", "a") as handle:
        handle.write("\n# a new version of isrlu\n")
    code, out, err = cli("run", spec, "--results", results, "--device", "cpu")
    assert code == 2 and "refusing to mix" in err and "--force" in err and "Traceback" not in err
    flat = " ".join(err.split())
    assert "the code of " in flat and "activations.py:isrlu changed (sha256:" in flat
    assert {p.parent.name: p.read_bytes() for p in runs.glob("*/run.json")} == before
    code, out, err = cli("run", spec, "--results", results, "--device", "cpu", "--force")
    assert code == 0, out + err
    [old] = (results / "tiny" / "superseded").iterdir()
    assert {p.parent.name: p.read_bytes() for p in (old / "runs").glob("*/run.json")} == before
    assert (
        json.loads((old / "spec.json").read_text())["spec_hash"]
        != json.loads((results / "tiny" / "spec.json").read_text())["spec_hash"]
    )
    assert len(list(runs.glob("*/run.json"))) == 4


@pytest.mark.slow
def test_activations_named_on_the_command_line_and_show_count_learned_parameters(cli, tmp_path):
    spec = _spec_file(tmp_path / "spec", ["elu"], seeds=1)
    code, out, err = cli("show", spec, "-a", "activations.py:PISRLU", "--json")
    assert code == 0, err
    shown = json.loads(out)
    code, out, err = cli("show", spec, "-a", "elu", "--json")
    assert shown["total_params"] - json.loads(out)["total_params"] == 8 + 16
    assert shown["activation"] == "pisrlu" and shown["activation_source"]["code"].startswith(
        "sha256:"
    )
    results = tmp_path / "results"
    code, out, err = cli(
        "run", spec, "--results", results, "--device", "cpu", "-a", "activations.py:isrlu,elu"
    )
    assert code == 0, out + err
    assert sorted(p.name for p in (results / "tiny" / "runs").iterdir()) == [
        "elu-nobn-he-s000",
        "isrlu-nobn-he-s000",
    ]


# --- a package that registers an activation ------------------------------------------------------

PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "elubench-isrlu-test"
version = "0.1.0"

[project.entry-points."elubench.activations"]
isrlu_pkg = "isrlu_pkg.acts:isrlu"

[tool.setuptools]
packages = ["isrlu_pkg"]
"""


@pytest.mark.slow
def test_a_package_registers_an_activation_that_is_listed_and_trains(tmp_path):
    """A tiny package built and installed (pip, no index) into a folder on PYTHONPATH: its
    entry point is listed with its version, and a spec naming it trains, recording it."""
    package = tmp_path / "pkg"
    (package / "isrlu_pkg").mkdir(parents=True)
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "isrlu_pkg" / "__init__.py").write_text("")
    shutil.copy(EXAMPLE, package / "isrlu_pkg" / "acts.py")
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(package),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "COLUMNS": "250"}

    def elubench(*args):
        return subprocess.run(
            [sys.executable, "-m", "elubench", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=600,
        )

    listed = elubench("activations", "--json")
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "isrlu_pkg")
    assert (
        row["implemented_by"] == "elubench-isrlu-test 0.1.0"
        and row["source"] == "isrlu_pkg.acts:isrlu"
    )
    assert row["parameters"] == "alpha=1.0" and row["formula"].startswith("x if x >= 0")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            tiny_spec(
                train=TRAIN,
                compare={
                    "activations": ["isrlu_pkg(alpha=0.5)", "elu"],
                    "batchnorm": [False],
                    "seeds": 2,
                },
            ),
            sort_keys=False,
        )
    )
    trained = elubench("run", spec, "--results", tmp_path / "results", "--device", "cpu")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    record = read_record(
        tmp_path / "results" / "tiny" / "runs" / "isrlu_pkg_alpha=0.5-nobn-he-s000" / "run.json"
    )
    assert record.status == "ok" and record.activation == "isrlu_pkg(alpha=0.5)"
    assert record.activation_source["code"] == "elubench-isrlu-test==0.1.0"
    assert record.activation_source["qualified_name"] == "isrlu_pkg = isrlu_pkg.acts:isrlu"
    # without the package (a machine that only compares): the records still compare
    compared = subprocess.run(
        [sys.executable, "-m", "elubench", "compare", tmp_path / "results"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert compared.returncode == 0, compared.stderr
    assert "isrlu_pkg(alpha=0.5)" in compared.stdout and "elu" in compared.stdout


@pytest.mark.slow
def test_slurm_through_submitits_local_cluster_trains_it_too(tmp_path, serial):
    """Not one of the paths the issue asks to test, but the cheapest check that a Slurm job,
    pickled through a shared folder, resolves the activation as the other workers do."""
    pytest.importorskip("submitit")
    spec, reference, _ = serial
    configs = expand(spec)[:2]
    executor = make_executor(
        "slurm", cluster="local", cpus_per_run=1, time_min=10, poll_seconds=0.2
    )
    records = executor.run(spec, configs, _settings(tmp_path))
    _same(records, [r for r in reference if r["run_id"] in {c.run_id for c in configs}])
