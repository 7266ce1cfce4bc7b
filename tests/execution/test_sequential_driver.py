"""`run --until-decided` (issue 24): the rounds the design asks for, from records alone; the
driver end to end on the serial and the local executor, stopped and resumed to the same
decisions; and `compare` on what it leaves."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import yaml
from conftest import make_results, tiny_spec

from elubench.execution.sequential import family_sizes, next_runs, sequential_plan
from elubench.spec.loader import load_spec
from elubench.spec.matrix import select
from elubench.stats.sequential.plan import plan_decisions
from elubench.store.layout import find_records
from elubench.store.reader import runs_frame
from elubench.store.record import read_record


def _spec(tmp_path, **compare):
    body = tiny_spec(
        compare={
            "activations": ["elu", "relu", "lrelu"],
            "batchnorm": [False],
            "seeds": 2,
            "until_decided": True,
            **compare,
        }
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _pool(tmp_path, **compare):
    spec = load_spec(_spec(tmp_path, **compare))
    pool = select(spec)
    return spec, pool, sequential_plan(spec, pool)


def _records(root, errors):
    """Records of spec `tiny` from error counts per configuration and seed (None: diverged)."""
    make_results(root, errors, spec_name="tiny")
    return [read_record(path) for path in find_records(root)]


def test_the_pool_is_every_configuration_at_max_seeds(tmp_path):
    spec, pool, plan = _pool(tmp_path, max_seeds=12)
    assert len(pool) == 3 * 12 and plan.seeds == list(range(12))
    assert plan.baseline == "relu" and plan.configurations == ["elu", "relu", "lrelu"]
    assert family_sizes(plan, pool) == {"activations": 2, "bn_effects": 0, "bn_contrasts": 0}


def test_the_first_round_is_the_first_look_of_every_configuration(tmp_path):
    spec, pool, plan = _pool(tmp_path)
    first = next_runs(plan, pool, [])
    assert first.decisions is None
    assert sorted((c.config, c.seed) for c in first.configs) == sorted(
        (c, s) for c in plan.configurations for s in range(4)
    )
    # half the first round recorded: the rest of it, nothing more
    records = _records(tmp_path / "r", {"elu": [1, 2, 3, 4], "relu": [5, 6]})
    rest = next_runs(plan, pool, records)
    assert rest.decisions is None
    assert sorted((c.config, c.seed) for c in rest.configs) == sorted(
        [("relu", 2), ("relu", 3)] + [("lrelu", s) for s in range(4)]
    )


def test_a_decided_comparison_stops_training_its_configuration(tmp_path):
    """elu beats relu on every seed (decided at 7 seeds, Holm over 2 comparisons), lrelu beats
    it on 5 of 7 (open: p 0.14, z -1.56): the next round trains lrelu and the baseline only."""
    spec, pool, plan = _pool(tmp_path)
    relu = [60, 61, 62, 63, 64, 65, 66]
    errors = {"relu": relu, "elu": [r - 10 for r in relu], "lrelu": [58, 60, 63, 60, 63, 63, 67]}
    records = _records(tmp_path / "r", errors)
    step = next_runs(plan, pool, records)
    decisions = step.decisions.decisions
    assert decisions["elu vs relu"].state == "better"
    assert decisions["elu vs relu"].stop == "efficacy"
    assert decisions["lrelu vs relu"].state == "open"
    assert {(c.config, c.seed) for c in step.configs} == {("lrelu", 7), ("relu", 7)}


def test_a_diverged_seed_is_passed_over_for_the_next(tmp_path):
    """lrelu diverged at seed 1: its comparison has 6 paired seeds of 7; its next look (8
    paired seeds) needs seeds 7 and 8, not 7 alone."""
    spec, pool, plan = _pool(tmp_path)
    relu = [60, 61, 62, 63, 64, 65, 66]
    errors = {
        "relu": relu,
        "elu": [r - 10 for r in relu],
        "lrelu": [58, None, 63, 60, 63, 63, 67],
    }
    records = _records(tmp_path / "r", errors)
    step = next_runs(plan, pool, records)
    lrelu = step.decisions.planned[1]
    assert lrelu.name == "lrelu vs relu" and lrelu.seeds == (0, 2, 3, 4, 5, 6)
    assert step.decisions.next.seeds == 7  # its next look
    assert {(c.config, c.seed) for c in step.configs} == {
        ("lrelu", 7),
        ("relu", 7),
    }  # 7 paired: seeds 0, 2..7


def test_decisions_depend_on_the_records_not_their_order(tmp_path):
    spec, pool, plan = _pool(tmp_path)
    relu = [60, 61, 62, 63, 64, 65, 66, 60, 62]
    errors = {
        "relu": relu,
        "elu": [r - 3 for r in relu],
        "lrelu": [61, 60, 63, 62, 64, 66, 65, 59, 63],
    }
    records = _records(tmp_path / "r", errors)
    first = plan_decisions(runs_frame(records), plan).table()
    random.Random(3).shuffle(records)
    again = plan_decisions(runs_frame(records), plan).table()
    assert first.equals(again)


def test_the_sequential_design_runs_and_resumes_to_the_same_decisions(cli, tmp_path):
    """The driver end to end (the default executor: 2 local workers here; 12 runs at most):
    every run it asked for is
    recorded, it trains no seed past what its decisions need, `compare` reports its
    decisions; rounds lost to a kill are trained again and reach the same decisions."""
    spec = _spec(tmp_path, activations=["elu", "relu"], max_seeds=6)
    results = tmp_path / "results"
    args = ["run", spec, "--results", results, "--device", "cpu"]
    code, out, err = cli(*args)
    assert code == 0, out + err
    text = " ".join(out.split())
    assert "sequential round 1: first look: every configuration at 4 seeds; 8 runs" in text
    folder = results / "tiny"
    stored = json.loads((folder / "sequential.json").read_text())
    assert stored["max_seeds"] == 6 and stored["configurations"] == ["elu", "relu"]

    code, out, err = cli("compare", results, "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    sequential = payload["sequential"]
    assert sequential["decided"] is True and sequential["baseline"] == "relu"
    (row,) = sequential["comparisons"]
    assert row["comparison"] == "elu vs relu"
    assert row["stopped"] in ("efficacy", "futility", "max seeds")
    runs = sorted(path.parent.name for path in find_records(folder))
    assert len(runs) == 2 * row["seeds_used"] and sequential["runs"] == len(runs)
    assert "group-sequential design" in payload["methods"]
    assert "sequential" not in payload["tables"]

    # a kill that lost the last round: the next run trains it again, to the same decisions
    last = max(int(r[-3:]) for r in runs)
    for run in folder.glob(f"runs/*-s{last:03d}"):
        shutil.rmtree(run)
    code, out, err = cli(*args)
    assert code == 0, out + err
    assert "sequential round 1:" in " ".join(out.split()) and "; 2 runs" in out
    code, out, err = cli("compare", results, "--format", "json")
    assert json.loads(out)["sequential"]["comparisons"] == sequential["comparisons"]

    # run again when decided: nothing to train, the same decisions shown
    code, out, err = cli(*args)
    assert code == 0 and "every comparison is decided or stopped" in " ".join(out.split())

    # the report: the design's table first, the fixed-n tests labelled descriptive
    code, out, err = cli("report", results, "--figure-format", "png")
    assert code == 0, err
    report = (folder / "REPORT.md").read_text()
    assert "### Sequential decisions (the design's verdicts)" in report
    assert "(descriptive)" in report and "trained in rounds by the sequential design" in report
    assert report.index("Sequential decisions") < report.index("Activation comparisons")


# every executor trains a round and returns; the driver decides between rounds (the default
# executor above is the local one on a machine with 2 cores or more)
EXECUTORS = {"ray": ["--executor", "ray", "--ray-cpus", "2"]}


@pytest.mark.slow
def test_ray_reaches_the_serial_decisions(cli, tmp_path):
    """The same design through Ray: the same runs
    and decisions as the serial executor (a run's numbers depend on its seed, not on who
    trains it; tests/execution/test_slurm.py does the same on a real Slurm)."""
    spec = _spec(tmp_path, activations=["elu", "relu"], max_seeds=6)
    found = {}
    for name, flags in {"serial": ["--executor", "serial"], **EXECUTORS}.items():
        results = tmp_path / name
        code, out, err = cli("run", spec, "--results", results, "--device", "cpu", *flags)
        assert code == 0, (name, out + err)
        code, out, err = cli("compare", results, "--format", "json")
        runs = sorted(path.parent.name for path in find_records(results))
        found[name] = (json.loads(out)["sequential"]["comparisons"], runs)
    for name in EXECUTORS:
        assert found[name] == found["serial"], name


def test_compare_before_the_first_look_is_done_says_so(cli, tmp_path):
    """A folder of the design whose first round is incomplete (lrelu has no run yet):
    every table of what is there, no decisions, and why (exit 0)."""
    spec, pool, plan = _pool(tmp_path)
    root = make_results(tmp_path / "r", {"elu": [50, 51], "relu": [60, 61]}, spec_name="tiny")
    (root / "tiny" / "sequential.json").write_text(plan.model_dump_json())
    code, out, err = cli("compare", root, "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["sequential"]["decided"] is None
    assert "no run yet of lrelu" in payload["sequential"]["note"]
    assert any("no decisions yet" in w for w in payload["warnings"])


def test_the_dry_run_forecasts_runs_and_power(cli, tmp_path):
    spec = _spec(tmp_path)
    code, out, err = cli(
        "run", spec, "--dry-run", "--effects", "0,1", "--results", tmp_path / "r", "--device", "cpu"
    )
    assert code == 0, out + err
    text = " ".join(out.split())
    assert "sequential design (at most 20 seeds) against the fixed 2 seeds" in text
    assert "at most 60 runs" in text
    assert "family-wise error at d_z 0" in text
    assert not (tmp_path / "r").exists()


def test_the_python_api_runs_and_reports_the_design(tmp_path):
    """`elubench.run(..., until_decided=True)` and `elubench.compare(...).sequential`: the same
    decisions as the JSON."""
    import elubench

    spec = _spec(tmp_path, activations=["elu", "relu"], max_seeds=6)
    summary = elubench.run(
        spec, results=tmp_path / "r", until_decided=True, device="cpu", progress=False
    )
    assert summary.exit_code == 0 and summary.decisions is not None
    comparison = elubench.compare(tmp_path / "r")
    table = comparison.sequential
    assert list(table["comparison"]) == ["elu vs relu"]
    assert table.equals(summary.decisions)
    payload = json.loads(comparison.to_json())["sequential"]["comparisons"]
    assert [row["decision"] for row in payload] == list(table["decision"])
