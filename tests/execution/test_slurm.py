"""The slurm executor against a real Slurm (issue 15): a job array of real sbatch jobs gives the
serial path's records, a Slurm without accounting says so once instead of on every poll, and a
job cancelled there is reported lost instead of waited for.

The tests marked `slurm` skip, saying why, where there is no sbatch or no node takes jobs.
Start a one-node Slurm on a Debian machine (as root) with `scripts/slurm-local.sh`; CI does so
in `.ci/run`. Every Slurm job starts a Python that imports torch, so the matrices are tiny.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import RESULT_FIELDS, recorded_runs, tiny_spec

from elubench.execution.executors.slurm import Squeue, _sacct_fails

SPEC = tiny_spec(
    train={"batch_size": 32, "lr": 0.05, "iterations": 20, "eval_every": 10},
    compare={"activations": ["elu", "relu"], "batchnorm": [False], "seeds": 2},
)
START_SLURM = "start one as root with scripts/slurm-local.sh"


def _slurm_or_skip() -> None:
    """Skip, saying why, unless a real Slurm is reachable and a node takes jobs."""
    pytest.importorskip("submitit")
    if shutil.which("sbatch") is None:
        pytest.skip(f"no Slurm here (no sbatch on the PATH); {START_SLURM}")
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"sinfo does not answer ({exc}); {START_SLURM}")
    states = out.stdout.split()
    if out.returncode != 0 or not {"idle", "mixed"} & set(states):
        why = (out.stderr.strip() or "no node").splitlines()[-1]
        pytest.skip(f"no Slurm node takes jobs (sinfo: {', '.join(states) or why}); {START_SLURM}")


@pytest.fixture(scope="module")
def slurm():
    _slurm_or_skip()


def _sacct_works() -> bool:
    return (
        subprocess.run(
            ["sacct", "-n", "-X", "-o", "JobID", "-j", "1"], capture_output=True
        ).returncode
        == 0
    )


def _elubench(*args, timeout=300) -> subprocess.CompletedProcess:
    """`elubench ARGS` as a user runs it: a process of its own, from this Python (the venv)."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "elubench", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _runs(folder: Path) -> dict:
    """run_id -> (the record's result fields, its executor, every metrics line untimed)."""
    return {
        run_id: (result, record["executor"], lines)
        for run_id, (result, lines, record) in recorded_runs(folder, RESULT_FIELDS).items()
    }


@pytest.fixture(scope="module")
def matrix(slurm, tmp_path_factory):
    """One tiny matrix (2 activations x 2 seeds), trained serially and as a real job array."""
    root = tmp_path_factory.mktemp("slurm-matrix")
    spec = root / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    serial = _elubench(
        "run", spec, "--results", root / "serial", "--device", "cpu", "--executor", "serial"
    )
    assert serial.returncode == 0, serial.stderr
    started = time.monotonic()
    job_array = _elubench(
        "run",
        spec,
        "--results",
        root / "slurm",
        "--device",
        "cpu",
        "--executor",
        "slurm",
        "--slurm-time",
        "10",
    )
    return {
        "root": root,
        "serial": serial,
        "slurm": job_array,
        "seconds": time.monotonic() - started,
    }


@pytest.mark.slurm
@pytest.mark.slow
def test_a_real_job_array_gives_the_serial_records(matrix):
    done = matrix["slurm"]
    assert done.returncode == 0, done.stdout + done.stderr
    serial, slurm = _runs(matrix["root"] / "serial"), _runs(matrix["root"] / "slurm")
    assert len(serial) == 4 and slurm.keys() == serial.keys()
    for run_id, (result, executor, lines) in slurm.items():
        assert result["status"] == "ok", run_id
        assert executor == "slurm" and serial[run_id][1] == "serial", run_id
        assert result == serial[run_id][0], run_id  # the results and the record's numbers
        assert lines == serial[run_id][2], run_id  # every evaluation, bit for bit
    logs = matrix["root"] / "slurm" / "tiny" / "slurm"
    assert len(list(logs.rglob("*_log.out"))) == 4  # one real sbatch job per run
    assert not list((matrix["root"] / "slurm").rglob("claim.json"))


@pytest.mark.slurm
@pytest.mark.slow
def test_a_slurm_without_accounting_is_said_once_not_on_every_poll(matrix):
    if _sacct_works():
        pytest.skip("this Slurm keeps accounting (sacct answers): nothing to say")
    done = matrix["slurm"]
    output = (done.stdout + done.stderr).splitlines()
    said = [line for line in output if "sacct" in line or "accounting" in line]
    # before: per poll, sacct's own "Slurm accounting storage is disabled" and submitit's
    # "Bypassing sacct error ..." on stderr and again on stdout (3 lines a poll)
    assert said == [
        "sacct does not answer here (Slurm accounting storage is disabled); "
        "job states come from squeue only"
    ], said
    assert "submitit WARNING" not in done.stdout + done.stderr


LOST_DRIVER = """
import json, sys
from elubench.execution.executors.factory import make_executor
from elubench.spec.matrix import expand
from elubench.execution.state import Reporter, RunSettings
from elubench.spec.loader import validate_spec

class Notes(Reporter):
    skipped = {}
    def note(self, text):
        print("NOTE", text, flush=True)
    def run_skipped(self, cfg, reason):
        self.skipped[cfg.run_id] = reason

spec = validate_spec(json.loads(sys.argv[1]))
executor = make_executor("slurm", cpus_per_run=1, time_min=5, poll_seconds=0.5)
executor.lost_after_s = 1.0
settings = RunSettings(results=sys.argv[2], device="cpu", checkpoint_seconds=0, threads=1)
records = executor.run(spec, expand(spec), settings, Notes())
print("END", json.dumps({"records": len(records), "skipped": Notes.skipped}), flush=True)
"""


@pytest.mark.slurm
@pytest.mark.slow
def test_a_cancelled_job_is_reported_lost_not_waited_for(slurm, tmp_path):
    """What the executor guarantees whatever the cluster's kill timing (KillWait: 5 s in
    scripts/slurm-local.sh, Slurm's default 30 s elsewhere): the driver never hangs on the
    cancelled job, and the run either finished before the kill (one ok record, nothing lost)
    or is reported lost, naming the job, with no record and its claim left for the next `run`
    to take over. Never both, never a run counted twice (docs/reliability.md)."""
    raw = tiny_spec(
        name=f"lost{os.getpid()}",
        train={"batch_size": 32, "lr": 0.05, "iterations": 5000, "eval_every": 1000},
        compare={"activations": ["elu"], "batchnorm": [False], "seeds": 1},
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", LOST_DRIVER, json.dumps(raw), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        job = None
        for line in driver.stdout:
            if "submitted as jobs" in line:
                job = line.split("submitted as jobs ")[1].split("..")[0]
                break
        assert job, "the driver did not submit"
        deadline = time.monotonic() + 120
        while not (claim := next((tmp_path / raw["name"]).rglob("claim.json"), None)):
            assert time.monotonic() < deadline and driver.poll() is None, "the run never started"
            time.sleep(0.2)
        subprocess.run(["scancel", job], check=True)
        out, _ = driver.communicate(timeout=180)  # no accounting: submitit alone would hang
    finally:
        if driver.poll() is None:
            driver.kill()
            subprocess.run(["scancel", "--name", f"elubench-{raw['name']}"])
    assert driver.returncode == 0, out
    end = json.loads(out.split("END ", 1)[1])
    records = list((tmp_path / raw["name"]).rglob("run.json"))
    if end["records"]:  # the job outlived the cancel's grace (a long KillWait) and finished
        assert end["skipped"] == {} and len(records) == 1, end
        assert json.loads(records[0].read_text())["status"] == "ok"
    else:  # killed mid-run: lost, not waited for; its claim stays for the next invocation
        (reason,) = end["skipped"].values()
        assert "lost" in reason and job in reason, reason
        if not _sacct_works():
            assert "CANCELLED" in reason, reason
        assert records == [] and claim.exists()


# --- the squeue fallback, with stand-ins for sacct and squeue (no Slurm needed) -------------


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """Put `sacct` and `squeue` stand-ins first on the PATH; write(name, stdout, stderr, rc)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def write(name, stdout="", stderr="", rc=0):
        script = bin_dir / name
        script.write_text(
            f"#!/bin/sh\nprintf '%b' '{stdout}'\nprintf '%s\\n' '{stderr}' >&2\nexit {rc}\n"
        )
        script.chmod(0o755)

    return write


def test_sacct_that_fails_is_told_apart_from_one_that_answers(fake_slurm):
    fake_slurm("sacct", stderr="Slurm accounting storage is disabled", rc=1)
    assert _sacct_fails("12_0") == "Slurm accounting storage is disabled"
    fake_slurm("sacct", stdout="12_0\n")
    assert _sacct_fails("12_0") is None


def test_squeue_says_when_a_job_is_over_after_the_grace_time(fake_slurm):
    watch = Squeue("12", grace_s=0.3)
    fake_slurm("squeue", stdout="12_0|RUNNING\n12_1|PENDING\n12_2|CANCELLED\n")
    watch.refresh()
    assert watch.ended("12_0") is None and watch.ended("12_1") is None
    assert watch.ended("12_2") is None  # over, but its result file may still be on the way
    assert watch.ended("12_3") is None  # not listed: gone
    time.sleep(0.35)
    assert watch.ended("12_2") == "CANCELLED" and watch.ended("12_3") == "gone from squeue"
    fake_slurm("squeue", stderr="slurm_load_jobs error: Invalid job id specified", rc=1)
    watch.refresh()  # the whole array is forgotten: every job is gone
    assert watch.ended("12_2") == "gone from squeue"
    fake_slurm("squeue", stderr="slurm_load_jobs error: Unable to contact slurm controller", rc=1)
    watch.refresh()  # squeue did not answer: judge nothing
    assert watch.ended("12_2") is None and watch.ended("12_0") is None
    fake_slurm("squeue", stdout="12_0|RUNNING\n")
    watch.refresh()
    assert watch.ended("12_0") is None


@pytest.mark.slurm
@pytest.mark.slow
def test_the_sequential_design_trains_its_rounds_as_job_arrays(slurm, tmp_path):
    """`run --until-decided` on a real Slurm (issue 24): each round a job array, decided between
    rounds; the same runs and decisions as the serial executor."""
    spec = tmp_path / "spec.yaml"
    body = {**SPEC, "compare": {**SPEC["compare"], "until_decided": True, "max_seeds": 6}}
    spec.write_text(yaml.safe_dump(body, sort_keys=False))
    found = {}
    for name, flags in (("serial", []), ("slurm", ["--slurm-time", "10"])):
        done = _elubench(
            "run", spec, "--results", tmp_path / name, "--device", "cpu", "--executor", name,
            *flags, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "sequential round 1" in done.stdout
        compared = _elubench("compare", tmp_path / name, "--format", "json")
        found[name] = (
            json.loads(compared.stdout)["sequential"]["comparisons"],
            _runs(tmp_path / name).keys(),
        )
    assert found["slurm"] == found["serial"]
