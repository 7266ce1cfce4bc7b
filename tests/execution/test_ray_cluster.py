"""The ray executor on a multi-node Ray cluster started on this machine (ray.cluster_utils):
a head node with no CPUs for tasks and two worker nodes of one CPU each, so every run trains on
a worker node. A worker node removed mid-run (its raylet and its worker processes die, as when
a machine is lost) is a system failure: Ray resubmits the run's task to the node left, the task
takes over the dead attempt's claim and resumes the run from its checkpoint, and the matrix
completes in the same driver invocation with the serial path's records. A run whose worker dies
on every try is reported lost once Ray's retries are spent.

Every "node" here has this machine's hostname, so a dead attempt's claim is stale as soon as
its process is gone (elubench.store.rundir's claim rules); across hosts it goes stale after
STALE_SECONDS without a heartbeat, which a retried task waits for (ray_tasks.attempt_in_ray;
the last test checks that wait without Ray).

Run them alone with: pytest -m ray_cluster tests/test_ray_cluster.py (1.5 to 2 minutes on 2
cores, most of it the serial reference and Ray's start-up).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import RESULT_FIELDS, tiny_spec

from elubench.core.errors import DataError
from elubench.execution.executors.base import StopFlag, WorkerPayload
from elubench.execution.executors.factory import make_executor
from elubench.execution.executors.ray_tasks import MAX_RETRIES, attempt_in_ray
from elubench.execution.runner import run_matrix
from elubench.execution.state import Reporter, RunSettings
from elubench.spec.loader import validate_spec
from elubench.spec.matrix import expand
from elubench.store.record import read_record

pytestmark = pytest.mark.slow  # they train real runs

# 2 activations x BN off x 2 seeds; a run trains for a few seconds and checkpoints at every
# evaluation (checkpoint_seconds=0), so a run cut short resumes from a recent evaluation.
SPEC = tiny_spec(
    train={"batch_size": 32, "lr": 0.05, "iterations": 1500, "eval_every": 100},
    compare={"activations": ["elu", "relu"], "batchnorm": [False], "seeds": 2},
)


def _settings(path, **kw):
    return RunSettings(results=path, device="cpu", checkpoint_seconds=0, threads=1, **kw)


class Recorder(Reporter):
    """Remembers what a driver reported, per run; a run reported finished twice fails."""

    def __init__(self):
        self.ended, self.skipped = {}, {}

    def run_end(self, cfg, record):
        assert cfg.run_id not in self.ended, f"{cfg.run_id} was reported finished twice"
        self.ended[cfg.run_id] = record

    def run_skipped(self, cfg, reason):
        self.skipped[cfg.run_id] = reason


@pytest.fixture(scope="module")
def cluster():
    """A head node (0 CPUs) and two worker nodes (1 CPU each) on this machine, for the module."""
    ray = pytest.importorskip(
        "ray", reason="the Ray cluster tests need ray: pip install 'elubench[ray]'"
    )
    from ray.cluster_utils import Cluster

    cluster = Cluster()
    try:
        cluster.add_node(num_cpus=0, include_dashboard=False)  # the head: no task lands here
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
    except Exception as exc:
        cluster.shutdown()
        pytest.skip(f"cannot start a Ray cluster on this machine: {exc}")
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """run_id -> (result fields, metrics lines without timing) of the serial path."""
    spec = validate_spec(SPEC)
    root = tmp_path_factory.mktemp("serial")
    run_matrix(spec, expand(spec), _settings(root))
    return _runs(root / spec.name / "runs")


def _runs(runs: Path) -> dict:
    out = {}
    for path in sorted(runs.glob("*/run.json")):
        record = read_record(path)
        text = (path.parent / "metrics.jsonl").read_text()
        lines = [json.loads(line) for line in text.splitlines()]
        for line in lines:
            line.pop("seconds")  # timing differs from run to run
        out[record["run_id"]] = ({key: record[key] for key in RESULT_FIELDS}, lines)
    return out


def _owner(claim: Path) -> int | None:
    """The pid in a claim file, once it is there and written."""
    try:
        return json.loads(claim.read_text())["pid"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def _last_evaluation(metrics: Path) -> int:
    """The iteration of the last whole line of a metrics.jsonl (-1 while there is none)."""
    try:
        lines = metrics.read_text().splitlines()
    except FileNotFoundError:
        return -1
    for line in reversed(lines):
        try:
            return json.loads(line)["iteration"]
        except (json.JSONDecodeError, KeyError):
            continue  # a line being written
    return -1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _parent(pid: int) -> int | None:
    try:  # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _node_of(cluster, pid: int):
    """The worker node whose raylet started process `pid` (a Ray worker)."""
    from ray._private import ray_constants

    raylets = {
        node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid: node
        for node in cluster.worker_nodes
    }
    ancestor = pid
    while ancestor and ancestor > 1:
        if ancestor in raylets:
            return raylets[ancestor]
        ancestor = _parent(ancestor)
    raise AssertionError(
        f"process {pid} was started by none of the worker nodes' raylets {sorted(raylets)}"
    )


def _wait_for(condition, what: str, timeout: float = 90.0):
    """Poll `condition` until it gives something true; fail saying `what` never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.02)


def _in_thread(target):
    """Start target() in a thread; join() re-raises what it raised."""
    errors = []

    def run():
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(timeout=120.0):
        thread.join(timeout)
        assert not thread.is_alive(), "the helper thread did not finish"
        if errors:
            raise errors[0]

    return join


@pytest.mark.ray_cluster
def test_a_node_lost_mid_run_is_retried_by_ray_and_resumes_from_its_checkpoint(
    serial, cluster, tmp_path
):
    spec = validate_spec(SPEC)
    configs = expand(spec)
    runs = tmp_path / spec.name / "runs"
    every = SPEC["train"]["eval_every"]
    past = 3 * every  # a checkpoint there (one at every evaluation) when the node goes
    victim: dict = {}

    def busy_run():
        """A run training on a worker node with a checkpoint at iteration `past` or later:
        (folder, its worker's pid, the iteration of its latest evaluation)."""
        for checkpoint in runs.glob("*/checkpoint.pt"):
            folder = checkpoint.parent
            pid = _owner(folder / "claim.json")
            at = _last_evaluation(folder / "metrics.jsonl")
            if pid and _alive(pid) and at >= past and not (folder / "run.json").exists():
                return folder, pid, at
        return None

    def remove_its_node():
        folder, pid, at = _wait_for(
            busy_run, f"a run to train on a worker node past iteration {past}"
        )
        node = _node_of(cluster, pid)
        victim.update(
            run_id=folder.name, pid=pid, at=at, records_then=len(list(runs.glob("*/run.json")))
        )
        cluster.remove_node(node)  # kills its raylet; its worker processes die with it
        victim["removed"] = time.monotonic()
        _wait_for(lambda: not _alive(pid), f"worker {pid} of the removed node to die", 30)
        victim["worker_died"] = time.monotonic()

    reporter = Recorder()
    executor = make_executor("ray", address=cluster.address, cpus_per_run=1)
    start = time.monotonic()
    join = _in_thread(remove_its_node)
    records = executor.run(spec, configs, _settings(tmp_path), reporter)
    seconds = time.monotonic() - start
    join()

    # one driver invocation: Ray resubmitted the lost task to the node left
    assert not reporter.skipped, f"runs reported lost or skipped: {reporter.skipped}"
    assert sorted(reporter.ended) == sorted(c.run_id for c in configs), (
        f"finished {sorted(reporter.ended)}, expected every run of {[c.run_id for c in configs]}"
    )
    assert sorted(r["run_id"] for r in records) == sorted(c.run_id for c in configs)
    assert len(cluster.worker_nodes) == 1

    # each run recorded once, nothing left behind, and every record the serial path's
    stored = _runs(runs)
    assert stored.keys() == serial.keys()
    for run_id, (result, lines) in stored.items():
        assert result == serial[run_id][0], f"{run_id}: the record differs from the serial one"
        assert lines == serial[run_id][1], f"{run_id}: metrics.jsonl differs from the serial one"
    for name in ("attempt-*.json", "claim.json", "checkpoint.pt"):
        assert not list(runs.glob(f"*/{name}")), f"{name} left behind"
    assert {read_record(runs / r / "run.json")["executor"] for r in stored} == {"ray"}

    # the lost run was resumed from a checkpoint, not trained again from the start
    resumed = read_record(runs / victim["run_id"] / "run.json")["resumed_at"]
    # (its checkpoint follows its evaluation's line: a removal between the two leaves the one
    # before)
    assert resumed and resumed[0] >= victim["at"] - every and resumed[0] % every == 0, (
        f"{victim['run_id']} (its node removed after its evaluation at iteration "
        f"{victim['at']}) was not resumed from a checkpoint: resumed_at={resumed}"
    )
    print(
        f"\n[ray-cluster] matrix of {len(configs)} runs in {seconds:.1f} s; node of "
        f"{victim['run_id']} removed at its evaluation {victim['at']} with "
        f"{victim['records_then']} records in; its worker died "
        f"{victim['worker_died'] - victim['removed']:.1f} s later; resumed at iteration "
        f"{resumed} of {SPEC['train']['iterations']}"
    )


@pytest.mark.ray_cluster
def test_a_run_whose_worker_dies_on_every_try_is_lost_once_rays_retries_are_spent(
    cluster, tmp_path
):
    spec = validate_spec(
        tiny_spec(train={"batch_size": 32, "lr": 0.05, "iterations": 10**6, "eval_every": 10**5})
    )
    cfg = expand(spec)[0]
    claim = tmp_path / spec.name / "runs" / cfg.run_id / "claim.json"
    killed: list[int] = []
    finished = threading.Event()

    def kill_every_worker_that_claims_it():
        while not finished.is_set():
            pid = _owner(claim)
            if pid and pid not in killed and _alive(pid):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    reporter = Recorder()
    join = _in_thread(kill_every_worker_that_claims_it)
    start = time.monotonic()
    try:
        records = make_executor("ray", address=cluster.address, cpus_per_run=1).run(
            spec, [cfg], _settings(tmp_path), reporter
        )
    finally:
        finished.set()
        join()
    assert records == [] and not reporter.ended
    assert "lost" in reporter.skipped.get(cfg.run_id, ""), reporter.skipped
    assert len(killed) == MAX_RETRIES + 1, (
        f"{len(killed)} workers tried the run; Ray should have retried it {MAX_RETRIES} times"
    )
    print(
        f"\n[ray-cluster] lost after {len(killed)} tries in {time.monotonic() - start:.1f} s: "
        f"{reporter.skipped[cfg.run_id]}"
    )


@pytest.mark.ray_cluster
def test_a_users_mistake_on_a_worker_node_stops_the_matrix_and_is_not_retried(cluster, tmp_path):
    spec = validate_spec(tiny_spec(data={"dataset": "mnist", "preprocess": "standardize"}))
    settings = _settings(tmp_path, data_dir=tmp_path / "no-data")
    with pytest.raises(DataError, match="mnist was not found"):
        make_executor("ray", address=cluster.address, cpus_per_run=1).run(
            spec, expand(spec), settings
        )
    assert not list((tmp_path / spec.name / "runs").rglob("run.json"))


# --- a retried task and the claim of the attempt that died (no Ray needed) -------------------


def test_a_retry_waits_for_the_dead_attempts_claim_a_first_try_does_not(tmp_path):
    spec = validate_spec(
        tiny_spec(train={"batch_size": 32, "lr": 0.05, "iterations": 20, "eval_every": 10})
    )
    cfg = expand(spec)[0]
    work = WorkerPayload(
        spec.model_dump(mode="json"), spec.hash, _settings(tmp_path), StopFlag(tmp_path / "stop")
    )
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = tmp_path / spec.name / "runs" / cfg.run_id
        folder.mkdir(parents=True)
        # the attempt before, alive for now, on this host
        (folder / "claim.json").write_text(
            json.dumps({"host": socket.gethostname(), "pid": holder.pid, "claimed": time.time()})
        )
        assert attempt_in_ray(work, cfg, attempt_number=lambda: 0)[0] == "skipped"
        started = time.monotonic()
        kind, _ = attempt_in_ray(work, cfg, attempt_number=lambda: 1, patience=0.3, poll=0.1)
        assert kind == "skipped", "a retry took over a live process's claim"  # it outlived
        assert time.monotonic() - started >= 0.3  # the retry's patience, which it used up
        # it dies (with its node) a moment later; reaped, or its pid would still answer
        threading.Timer(0.5, lambda: (holder.kill(), holder.wait())).start()
        started = time.monotonic()
        kind, record = attempt_in_ray(work, cfg, attempt_number=lambda: 1, poll=0.1)
        assert time.monotonic() - started < 30, "the retry waited on a dead process's claim"
        assert kind == "done" and record["status"] == "ok" and record["resumed_at"] == []
        assert not (folder / "claim.json").exists()
    finally:
        holder.kill()
        holder.wait()
