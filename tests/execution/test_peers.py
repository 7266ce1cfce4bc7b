"""Drivers that share a matrix finish together (issue 25): a driver whose own work is done waits
for the runs a live peer holds, takes their records as they land, and reports the matrix as it
stands; a claim that ends without a record, or a stale one, is not waited for."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml
from conftest import make_results, tiny_spec

from elubench.execution.peers import held_by_peers, wait_for_peers, waiting_text
from elubench.execution.state import Reporter
from elubench.spec.loader import validate_spec
from elubench.spec.matrix import expand
from elubench.store.rundir import Holder, ResultsDir


class Seen(Reporter):
    def __init__(self):
        self.waits, self.ended = [], []

    def waiting(self, holders):
        self.waits.append(len(holders))

    def peer_run_end(self, cfg, record, holder):
        self.ended.append((cfg.run_id, holder.pid if holder else None))


def _folder(tmp_path):
    """A spec whose matrix is 2 runs; their records written aside, to be moved in as a peer's."""
    spec = validate_spec(tiny_spec(compare={"activations": ["elu", "relu"], "batchnorm": [False],
                                            "seeds": 1}))  # fmt: skip
    aside = make_results(tmp_path / "aside", {"elu": [5], "relu": [6]}, spec_name=spec.name,
                         spec_hash=spec.hash)  # fmt: skip
    folder = ResultsDir(tmp_path / "results", spec)
    folder.prepare()
    return spec, expand(spec), folder, aside / spec.name / "runs"


def _claim(folder, run_id, pid=None):
    """A live claim: this host, a live pid (this test's), a fresh heartbeat."""
    run = folder.run(run_id)
    run.path.mkdir(parents=True, exist_ok=True)
    run.claim_path.write_text(json.dumps({"host": socket.gethostname(), "pid": pid or os.getpid(),
                                          "claimed": time.time()}))  # fmt: skip
    return run


def test_the_records_a_peer_writes_are_waited_for_and_taken(tmp_path):
    spec, configs, folder, aside = _folder(tmp_path)
    runs = [_claim(folder, cfg.run_id) for cfg in configs]
    reasons = {cfg.run_id: "claimed by a live process" for cfg in configs}

    def peer():  # finishes one run after another, then lets go of its claims
        for run in runs:
            time.sleep(0.3)
            (run.path / "run.json").write_text((aside / run.path.name / "run.json").read_text())
            run.release()

    threading.Thread(target=peer, daemon=True).start()
    seen = Seen()
    records = wait_for_peers(folder, configs, [], seen, reasons, poll=0.05)
    assert sorted(r.run_id for r in records) == sorted(c.run_id for c in configs)
    assert reasons == {}  # nothing is missing any more
    assert [pid for _, pid in seen.ended] == [os.getpid()] * 2  # the holder who trained each
    assert max(seen.waits) == 2 and seen.waits[-1] == 0  # shown while waiting, then cleared


def test_a_claim_that_ends_without_a_record_stops_the_wait_with_a_reason(tmp_path):
    spec, configs, folder, _ = _folder(tmp_path)
    run = _claim(folder, configs[0].run_id)
    threading.Timer(0.2, run.release).start()  # the peer stopped (Ctrl-C): no record
    reasons: dict[str, str] = {}
    records = wait_for_peers(folder, configs[:1], [], Seen(), reasons, poll=0.05)
    assert records == []
    assert "stopped training it without a record" in reasons[configs[0].run_id]
    assert "run the same command again" in reasons[configs[0].run_id]


def test_stale_and_dead_claims_are_not_waited_for(tmp_path):
    spec, configs, folder, _ = _folder(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _claim(folder, configs[0].run_id, pid=dead.pid)  # its process is gone: not live
    stale = _claim(folder, configs[1].run_id)
    old = time.time() - 3600
    os.utime(stale.claim_path, (old, old))  # no heartbeat for an hour
    assert held_by_peers(folder, configs, []) == {}
    started = time.monotonic()
    assert wait_for_peers(folder, configs, [], Seen(), {}, poll=5) == []
    assert time.monotonic() - started < 1  # no wait at all


def test_the_waiting_line_names_each_process():
    holders = [Holder("h1", 7, 1.0, False), Holder("h1", 7, 2.0, False), Holder("me", 9, 0.0, True)]
    assert waiting_text(holders) == (
        "waiting for 2 runs that process 7 on host h1 is training and 1 run that process 9 on "
        "this host is training"
    )


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "local"])
def test_two_drivers_on_one_matrix_both_exit_0_and_train_each_run_once(tmp_path, executor):
    """The documented way to share a matrix: the same command twice, started together."""
    raw = tiny_spec(train={"batch_size": 32, "lr": 0.05, "iterations": 300, "eval_every": 100},
                    compare={"activations": ["elu", "relu"], "batchnorm": [False], "seeds": 2})  # fmt: skip
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    command = [sys.executable, "-m", "elubench", "run", str(spec), "--results",
               str(tmp_path / "results"), "--device", "cpu", "--executor", executor]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200"}
    drivers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env) for _ in range(2)]  # fmt: skip
    outputs = [driver.communicate(timeout=300)[0] for driver in drivers]
    assert [d.returncode for d in drivers] == [0, 0], outputs
    assert all("all 4 runs recorded" in out for out in outputs), outputs
    records = sorted((tmp_path / "results").rglob("run.json"))
    assert len(records) == 4 and not list((tmp_path / "results").rglob("attempt-*.json"))
    # each run is said to be trained here by exactly one driver; the other names the trainer
    for path in records:
        record = json.loads(path.read_text())
        line = f"ok {record['config']} seed {record['seed']}:"
        here = [out for out in outputs for text in out.splitlines()
                if text.startswith(line) and "trained by" not in text]  # fmt: skip
        elsewhere = [out for out in outputs for text in out.splitlines()
                     if text.startswith(line) and "trained by" in text]  # fmt: skip
        assert len(here) == 1 and len(elsewhere) == 1, (line, outputs)
