"""Crash safety of `elubench run` as a process: SIGKILL loses at most the work since the last
checkpoint and the finished record equals an uninterrupted run's; Ctrl-C checkpoints and stops."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import tiny_spec

pytestmark = pytest.mark.slow


def _spec(tmp_path, iterations=400):
    spec = tiny_spec(
        train={"batch_size": 32, "lr": 0.05, "iterations": iterations, "eval_every": 20},
        compare={"activations": ["elu"], "batchnorm": [True], "seeds": 1},
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _run_command(spec, results, *extra):
    return [sys.executable, "-m", "elubench", "run", str(spec), "--results", str(results),
            "--device", "cpu", *extra]  # fmt: skip


def _start(spec, results):
    return subprocess.Popen(_run_command(spec, results, "--checkpoint-every", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for(path, proc, timeout=120):
    start = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {path.name} appeared: {proc.stderr.read()}")
        if time.time() - start > timeout:
            raise AssertionError(f"no {path.name} after {timeout} s")
        time.sleep(0.05)


def _record(results):
    return json.loads(next(results.rglob("run.json")).read_text())


def test_sigkill_then_restart_gives_the_uninterrupted_record(tmp_path):
    spec = _spec(tmp_path)
    whole = subprocess.run(
        _run_command(spec, tmp_path / "whole"),
        capture_output=True,
        text=True,
    )
    assert whole.returncode == 0, whole.stderr

    results = tmp_path / "killed"
    proc = _start(spec, results)
    checkpoint = results / "tiny" / "runs" / "elu-bn-he-s000" / "checkpoint.pt"
    _wait_for(checkpoint, proc)
    time.sleep(0.3)  # somewhere past the checkpoint
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (checkpoint.parent / "run.json").exists()

    # the dead process's claim is taken over at once (same host, dead pid)
    again = subprocess.run(
        _run_command(spec, results),
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    a, b = _record(tmp_path / "whole"), _record(results)
    assert b["resumed_at"] and b["resumed_at"][0] > 0
    assert a["test_errors"] == b["test_errors"]
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
    assert not checkpoint.exists() and not (checkpoint.parent / "claim.json").exists()


def test_ctrl_c_checkpoints_and_says_how_to_continue(tmp_path):
    # long enough that Ctrl-C lands mid-run on any machine (400 iterations take 2 s on 2 cores;
    # the run stops at its next look at the flag, so the length costs nothing)
    spec = _spec(tmp_path, iterations=20_000)
    results = tmp_path / "r"
    proc = _start(spec, results)
    run_dir = results / "tiny" / "runs" / "elu-bn-he-s000"
    _wait_for(run_dir / "metrics.jsonl", proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command to continue" in " ".join(out.split())
    assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "run.json").exists()
    assert not (run_dir / "claim.json").exists()
