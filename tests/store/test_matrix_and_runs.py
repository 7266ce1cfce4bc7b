import json
import os

import pytest
from conftest import tiny_spec

from elubench.core.errors import SpecError, StoreError
from elubench.core.files import write_json_atomic
from elubench.spec.loader import validate_spec
from elubench.spec.matrix import expand, parse_shard, shard
from elubench.store.layout import find_records
from elubench.store.record import read_metrics, read_record
from elubench.store.rundir import ResultsDir, RunDir


def test_expand_is_seed_major_with_stable_ids():
    spec = validate_spec(tiny_spec())
    configs = expand(spec)
    assert len(configs) == 2 * 2 * 2
    assert [c.seed for c in configs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert configs[0].run_id == "elu-nobn-he-s000" and configs[1].config == "elu+bn"
    more = expand(spec, seeds=3, activations=["elu", "lrelu(0.2)", "elu"], batchnorm=[True])
    assert [c.config for c in more[:2]] == ["elu+bn", "lrelu(a=0.2)+bn"]
    assert more[1].run_id == "lrelu_a=0.2-bn-he-s000"


def test_init_axis_labels():
    spec = validate_spec(
        tiny_spec(
            compare={
                "activations": ["relu"],
                "batchnorm": [False],
                "init": ["he", "xavier"],
                "seeds": 1,
            }
        )
    )
    assert [c.config for c in expand(spec)] == ["relu/he", "relu/xavier"]


def test_shards_partition_the_matrix():
    spec = validate_spec(tiny_spec(compare={"activations": ["elu", "relu", "srelu"], "seeds": 5}))
    configs = expand(spec)
    parts = [shard(configs, i, 4) for i in range(1, 5)]
    assert sorted(c.run_id for p in parts for c in p) == sorted(c.run_id for c in configs)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "a/b", "3", ""):
        with pytest.raises(SpecError):
            parse_shard(bad)


def test_atomic_write_and_corrupt_record(tmp_path):
    path = tmp_path / "run.json"
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    path.write_text('{"run_id": "x", "stat')
    with pytest.raises(StoreError, match="corrupt run record"):
        read_record(path)
    path.write_text('{"run_id": "x"}')
    with pytest.raises(StoreError, match="lacks"):
        read_record(path)


def test_torn_metrics_line_is_ignored(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 0}\n{"iteration": 10}\n{"iterat')
    assert read_metrics(path) == [{"iteration": 0}, {"iteration": 10}]


def test_claims_are_exclusive_and_dead_owners_are_taken_over(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.claim(stale_seconds=60)
    other = RunDir(tmp_path / "r")
    assert not other.claim(stale_seconds=60)  # our own pid is alive
    run.release()
    assert other.claim(stale_seconds=60)
    # a claim by a dead pid on this host is stale at once
    owner = json.loads(other.claim_path.read_text())
    owner["pid"] = 2**22 + 12345
    other.claim_path.write_text(json.dumps(owner))
    assert RunDir(tmp_path / "r").claim(stale_seconds=3600)
    # a claim from another host is stale only when its heartbeat is old
    other.claim_path.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert not RunDir(tmp_path / "r").claim(stale_seconds=3600)
    old = other.claim_path.stat().st_mtime - 7200
    os.utime(other.claim_path, (old, old))
    assert RunDir(tmp_path / "r").claim(stale_seconds=3600)


def test_results_dir_refuses_another_spec(tmp_path):
    spec = validate_spec(tiny_spec())
    results = ResultsDir(tmp_path, spec)
    results.prepare()
    write_json_atomic(results.run("a").record_path, {"x": 1})  # moved as it is, never read
    changed = validate_spec(tiny_spec(train={"batch_size": 16, "lr": 0.05, "iterations": 20}))
    with pytest.raises(StoreError, match="refusing to mix"):
        ResultsDir(tmp_path, changed).prepare()
    ResultsDir(tmp_path, changed).prepare(force=True)
    moved = list((tmp_path / "tiny" / "superseded").glob("*/runs/a/run.json"))
    assert len(moved) == 1 and json.loads(moved[0].read_text()) == {"x": 1}
    assert json.loads((tmp_path / "tiny" / "spec.json").read_text())["spec_hash"] == changed.hash


def test_unwritable_results_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot write results"):
        ResultsDir(blocker, validate_spec(tiny_spec())).prepare()


def test_find_records_skips_superseded(tmp_path):
    for part in ("a/runs/x", "a/superseded/t/runs/y", "b/runs/z"):
        (tmp_path / part).mkdir(parents=True)
        (tmp_path / part / "run.json").write_text("{}")
    assert [p.parent.name for p in find_records(tmp_path)] == ["x", "z"]
