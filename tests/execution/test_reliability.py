"""Damaged results and hostile conditions (issue 15): every damaged file is one clear error
naming it and the fix, `--skip-bad` skips every kind, `run` never takes a damaged record as
done, nothing recorded is lost (a failed attempt or an OS error keeps the checkpoint), claims
left by crashes or other hosts do not block silently, leftovers are cleaned, and the exit code
says whether every run asked for has a record."""

import errno
import json
import os
import socket
import time
from pathlib import Path

import pytest
import yaml
from conftest import RESULT_FIELDS, TEN, make_results, tiny_spec

from elubench.execution.runner import execute_run
from elubench.execution.state import RunSettings, Skipped
from elubench.spec.loader import validate_spec
from elubench.spec.matrix import expand
from elubench.store.rundir import ResultsDir


def _spec():
    return tiny_spec(compare={"activations": ["relu"], "batchnorm": [False], "seeds": 2})


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec(), sort_keys=False))
    return path


def _run(cli, spec_file, results, *extra):
    return cli(
        "run", spec_file, "--results", results, "--executor", "serial", "--device", "cpu", *extra
    )


def _runs(results):
    return results / "tiny" / "runs"


def _result(path):
    record = json.loads(path.read_text())
    return {key: record[key] for key in RESULT_FIELDS}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two recorded runs and the records and metrics of an uninterrupted run of each."""
    from elubench.execution.runner import run_matrix

    results = tmp_path_factory.mktemp("trained")
    spec = validate_spec(_spec())
    run_matrix(spec, expand(spec), RunSettings(results=results, device="cpu"))
    return results


def _copy(trained, tmp_path):
    import shutil

    shutil.copytree(trained, tmp_path / "results")
    return tmp_path / "results"


# --- run.json -------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [{"seed": "x"}, {"test_error": None}, {"status": None}])
def test_run_never_takes_a_damaged_record_as_done(cli, trained, tmp_path, spec_file, damage):
    results = _copy(trained, tmp_path)
    path = _runs(results) / "relu-nobn-he-s000" / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **damage}))
    before = path.read_bytes()
    code, out, err = _run(cli, spec_file, results)
    assert code == 4, out + err
    assert "relu-nobn-he-s000" in out and "corrupt run record" in out and "run.json" in out
    assert "1 of 2 runs have no record" in out and "Traceback" not in out + err
    assert path.read_bytes() == before  # left for the user, never trained over


# --- metrics.jsonl --------------------------------------------------------------------------

DAMAGED_LOGS = {
    "binary bytes": b'{"iteration": 0, "test_error": 0.5}\n\x00\xff\xfe garbage\n{"iteration": 10}\n',
    "not an object": b'{"iteration": 0}\n[1, 2]\n{"iteration": 10}\n',
    "wrong type": b'{"iteration": 0}\n{"iteration": "ten", "test_error": 0.4}\n',
    "no iteration": b'{"iteration": 0}\n{"test_error": 0.4}\n',
    "goes back": b'{"iteration": 20}\n{"iteration": 10}\n',
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_LOGS))
def test_compare_names_a_damaged_metrics_log_and_skip_bad_leaves_its_curve_out(
    cli, tmp_path, damage
):
    root = make_results(tmp_path, TEN)
    log = root / "demo" / "runs" / "elu-nobn-he-s003" / "metrics.jsonl"
    log.write_bytes(DAMAGED_LOGS[damage])
    code, out, err = cli("compare", root)
    assert code == 2 and "corrupt metrics log, line 2" in err and str(log) in err, err
    assert "Traceback" not in out + err
    code, out, err = cli("compare", root, "--skip-bad", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert any("curve left out" in w for w in payload["warnings"])
    assert payload["configs"]  # the run's final result stays in the tables
    code, out, err = cli("report", root, "--skip-bad", "--out", tmp_path / "report")
    assert code == 0, err


def test_a_torn_last_metrics_line_is_what_a_kill_leaves_and_is_not_damage(tmp_path):
    from elubench.store.record import read_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"iteration": 0}\n{"iteration": 10}\n{"iterat')
    assert [r["iteration"] for r in read_metrics(path)] == [0, 10]


def _interrupted(tmp_path, spec):
    """A run stopped after its first checkpoint: checkpoint.pt and metrics, no run.json."""
    from elubench.core.errors import Stopped

    cfg = expand(spec)[0]
    settings = RunSettings(results=tmp_path / "results", device="cpu", checkpoint_seconds=0)
    evaluations = []

    def progress(event):
        if event["event"] == "eval":
            evaluations.append(event["iteration"])

    with pytest.raises(Stopped):
        execute_run(
            spec, cfg, settings, should_stop=lambda: len(evaluations) >= 1, progress=progress
        )
    run = ResultsDir(settings.results, spec).run(cfg.run_id)
    assert run.checkpoint_path.exists() and not run.record_path.exists()
    return cfg, settings, run


def test_run_keeps_the_checkpoint_of_a_run_whose_metrics_log_is_damaged(tmp_path):
    spec = validate_spec(_spec())
    cfg, settings, run = _interrupted(tmp_path, spec)
    checkpoint = run.checkpoint_path.read_bytes()
    run.metrics_path.write_bytes(b"\x00\x01binary\n" + run.metrics_path.read_bytes())
    outcome = execute_run(spec, cfg, settings)
    assert isinstance(outcome, Skipped) and "corrupt metrics log, line 1" in outcome.reason
    assert "metrics.jsonl" in outcome.reason and "move it away" in outcome.reason
    assert run.checkpoint_path.read_bytes() == checkpoint and not run.record_path.exists()


# --- spec.json ------------------------------------------------------------------------------


def test_damaged_spec_json(cli, trained, tmp_path, spec_file):
    root = make_results(tmp_path / "made", TEN)
    (root / "demo" / "spec.json").write_bytes(b"\x89PNG\x00\xff binary")
    code, out, err = cli("compare", root)
    assert code == 2 and "corrupt spec.json" in err and "Traceback" not in out + err
    code, out, err = cli("compare", root, "--skip-bad")
    assert code == 0 and "corrupt spec.json" in out and "Traceback" not in out + err
    results = _copy(trained, tmp_path)
    (results / "tiny" / "spec.json").write_bytes(b"\x89PNG\x00\xff binary")
    code, out, err = _run(cli, spec_file, results)
    assert code == 2 and "corrupt spec.json" in err and "Traceback" not in out + err


# --- nothing recorded is lost -----------------------------------------------------------------


def test_a_failed_attempt_keeps_its_checkpoint_and_the_retry_resumes(tmp_path, trained):
    spec = validate_spec(_spec())
    cfg = expand(spec)[0]
    settings = RunSettings(results=tmp_path / "results", device="cpu", checkpoint_seconds=0)

    def crash_at_the_end(event):
        if event["event"] == "eval" and event["iteration"] == spec.train.iterations:
            raise RuntimeError("a crash after the first checkpoint")

    record = execute_run(spec, cfg, settings, progress=crash_at_the_end)
    run = ResultsDir(settings.results, spec).run(cfg.run_id)
    assert record.status == "failed" and "a crash after" in record.reason
    assert run.checkpoint_path.exists()  # before: deleted with the failed record
    record = execute_run(spec, cfg, settings)
    assert record.status == "ok" and record.resumed_at == [10]
    assert (run.path / "attempt-1.json").exists()  # the failed attempt, kept
    assert _result(run.record_path) == _result(_runs(trained) / cfg.run_id / "run.json")


@pytest.mark.parametrize("code", [errno.EFBIG, errno.ENOSPC, errno.EACCES])
def test_an_os_error_leaves_the_run_resumable_not_failed(tmp_path, trained, monkeypatch, code):
    from elubench.store.rundir import RunDir

    spec = validate_spec(_spec())
    cfg = expand(spec)[0]
    settings = RunSettings(results=tmp_path / "results", device="cpu", checkpoint_seconds=0)
    save = RunDir.save_checkpoint
    calls = []

    def second_save_fails(self, payload):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(code, os.strerror(code), str(self.checkpoint_path))
        save(self, payload)

    monkeypatch.setattr(RunDir, "save_checkpoint", second_save_fails)
    outcome = execute_run(spec, cfg, settings)
    run = ResultsDir(settings.results, spec).run(cfg.run_id)
    assert isinstance(outcome, Skipped) and os.strerror(code) in outcome.reason
    assert "checkpoint is kept" in outcome.reason
    assert not run.record_path.exists() and run.checkpoint_path.exists()
    assert not run.claim_path.exists()
    monkeypatch.setattr(RunDir, "save_checkpoint", save)
    record = execute_run(spec, cfg, settings)
    assert record.status == "ok" and record.resumed_at == [10]
    assert _result(run.record_path) == _result(_runs(trained) / cfg.run_id / "run.json")


def test_a_real_file_size_limit_leaves_the_run_resumable(tmp_path, spec_file, trained):
    """RLIMIT_FSIZE (what `ulimit -f` sets): a checkpoint write gets EFBIG. The run is left
    interrupted with its checkpoint and trains to the same record once the limit is lifted."""
    import resource
    import subprocess
    import sys

    results = tmp_path / "results"
    args = [
        sys.executable,
        "-m",
        "elubench",
        "run",
        str(spec_file),
        "--results",
        str(results),
        "--executor",
        "serial",
        "--device",
        "cpu",
        "--checkpoint-every",
        "0",
        "--seeds",
        "1",
    ]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    free = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert free.returncode == 0, free.stdout + free.stderr
    size = (results / "tiny" / "runs" / "relu-nobn-he-s000" / "run.json").stat().st_size
    import shutil

    shutil.rmtree(results)

    limit = size * 3  # run.json and metrics fit; a checkpoint (the weights) does not
    limited = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    out = limited.stdout + limited.stderr
    assert limited.returncode == 4, out
    assert "File too large" in out and "Traceback" not in out
    run = results / "tiny" / "runs" / "relu-nobn-he-s000"
    assert not (run / "run.json").exists()
    assert not list(run.glob(".*.tmp"))  # the torn temporary file was removed
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _result(run / "run.json") == _result(_runs(trained) / "relu-nobn-he-s000" / "run.json")


# --- claims ---------------------------------------------------------------------------------


def test_an_empty_or_unreadable_claim_is_stale(cli, tmp_path, spec_file):
    results = tmp_path / "results"
    for content in (b"", b'{"host": "x", "pi', b"\xff\x00"):
        folder = _runs(results) / "relu-nobn-he-s000"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "claim.json").write_bytes(content)
        code, out, err = _run(cli, spec_file, results, "--force")
        assert code == 0, out + err
        assert (folder / "run.json").exists() and not (folder / "claim.json").exists()


def test_a_claim_from_another_host_says_who_and_how_to_take_it_over(cli, tmp_path, spec_file):
    results = tmp_path / "results"
    folder = _runs(results) / "relu-nobn-he-s001"
    folder.mkdir(parents=True)
    (folder / "claim.json").write_text(
        json.dumps({"host": "gpu-node-7", "pid": 4242, "claimed": time.time()})
    )
    code, out, err = _run(cli, spec_file, results)
    assert code == 4, out + err
    assert "host gpu-node-7" in out and "--take-over" in out and "1 of 2 runs have no record" in out
    assert not (folder / "run.json").exists()
    code, out, err = _run(cli, spec_file, results, "--take-over")
    assert code == 0, out + err
    assert (folder / "run.json").exists() and not (folder / "claim.json").exists()


def test_take_over_never_takes_a_live_process_claim_on_this_host(tmp_path):
    from elubench.store.rundir import RunDir

    run = RunDir(tmp_path / "r")
    assert run.claim(60)
    assert not RunDir(tmp_path / "r").claim(60, take_over=True)  # our own pid: alive
    holder = run.claim_holder(60)
    assert holder.here and holder.host == socket.gethostname() and holder.pid == os.getpid()


# --- leftovers ------------------------------------------------------------------------------


def test_leftovers_of_a_kill_are_cleaned_by_the_next_run(cli, trained, tmp_path, spec_file):
    results = _copy(trained, tmp_path)
    done = _runs(results) / "relu-nobn-he-s000"
    (done / "claim.json").write_text(
        json.dumps({"host": socket.gethostname(), "pid": 2**22 + 7, "claimed": time.time()})
    )
    todo = _runs(results) / "relu-nobn-he-s001"
    (todo / "run.json").unlink()
    for name in (".checkpoint.pt.abc123.tmp", ".run.json.def456.tmp", ".stale-claim-99"):
        (todo / name).write_bytes(b"torn")
    code, out, err = _run(cli, spec_file, results)
    assert code == 0, out + err
    assert not (done / "claim.json").exists()
    assert sorted(p.name for p in todo.iterdir()) == ["metrics.jsonl", "run.json"]


# --- exit codes -----------------------------------------------------------------------------


def test_exit_code_3_when_a_run_failed(cli, tmp_path, spec_file, monkeypatch):
    import elubench.training.trainer

    real = elubench.training.trainer.train_run

    def crash_seed_1(spec, cfg, *args, **kwargs):
        if cfg.seed == 1:
            raise RuntimeError("boom")
        return real(spec, cfg, *args, **kwargs)

    monkeypatch.setattr(elubench.training.trainer, "train_run", crash_seed_1)
    code, out, err = _run(cli, spec_file, tmp_path / "results")
    assert code == 3, out + err
    assert "1 of 2 runs failed" in out and "relu-nobn-he-s001" in out
    monkeypatch.setattr(elubench.training.trainer, "train_run", real)
    code, out, err = _run(cli, spec_file, tmp_path / "results")
    assert code == 0 and "all 2 runs recorded" in out, out + err


def test_exit_codes_are_in_the_help(cli):
    code, out, _ = cli("run", "--help")
    assert code == 0
    for text in ("Exit codes", "3 some runs crashed", "4 some runs have no record"):
        assert text in " ".join(out.split())


def test_a_claim_of_an_unreaped_dead_process_is_stale(tmp_path):
    """A worker that died but was not yet reaped by its parent (a zombie) never releases its
    claim: it is dead, not alive (a retried Ray task would otherwise wait 180 s)."""
    import subprocess

    from elubench.store.rundir import RunDir

    child = subprocess.Popen(["sleep", "0"])
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            stat = Path(f"/proc/{child.pid}/stat").read_text()
            if stat.rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.05)
        run = RunDir(tmp_path / "r")
        run.path.mkdir()
        run.claim_path.write_text(
            json.dumps({"host": socket.gethostname(), "pid": child.pid, "claimed": time.time()})
        )
        assert run.claim_holder(3600) is None
        assert run.claim(3600)
    finally:
        child.wait()
