"""Shared helpers for the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec (a dict, or YAML text) to a file and return its path."""

    def write(content, name="spec.yaml"):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return write


def tiny_spec(**changes) -> dict:
    """A small valid spec on the digits set; `changes` replace whole sections or keys."""
    spec = {
        "name": "tiny",
        "data": {"dataset": "digits", "preprocess": "standardize"},
        "model": {"stacks": ["1x8x3", "1x16x3", "1x10x1"], "dropout": [0.0, 0.1, 0.0]},
        "train": {"batch_size": 32, "lr": 0.05, "iterations": 20, "eval_every": 10},
        "compare": {"activations": ["elu", "relu"], "batchnorm": [False, True], "seeds": 2},
    }
    spec.update(changes)
    return spec


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `elubench ARGS...` in-process through the real entry point; return (code, out, err)."""
    import sys

    from elubench.cli import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["elubench", *map(str, args)])
        monkeypatch.setenv("COLUMNS", "200")
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def make_results(root, errors: dict, *, spec_name="demo", spec_hash="abc", test_size=1000,
                 status=None, metrics=True):
    """A results tree from numbers: errors = {config: [test_errors per seed]} (None = diverged).

    Writes run.json files with the record contract's keys (and a few metrics lines), the way
    `elubench run` lays them out, without training anything."""
    import json
    from pathlib import Path

    status = status or {}
    base = Path(root) / spec_name / "runs"
    for config, values in errors.items():
        activation, _, rest = config.partition("+")
        for seed, count in enumerate(values):
            run_id = f"{activation}-{'bn' if rest else 'nobn'}-he-s{seed:03d}"
            folder = base / run_id
            folder.mkdir(parents=True, exist_ok=True)
            state = status.get((config, seed), "ok" if count is not None else "diverged")
            record = {"run_id": run_id, "spec_name": spec_name, "spec_hash": spec_hash,
                      "activation": activation, "batchnorm": bool(rest), "init": "he", "seed": seed,
                      "config": config, "status": state, "task": "classification",
                      "test_errors": count if state == "ok" else None, "test_size": test_size,
                      "test_error": count / test_size if state == "ok" else None,
                      "test_loss": 0.5, "train_loss": 0.4, "iterations": 100, "wall_seconds": 2.0,
                      "images_per_second": 1000.0 if activation == "relu" else 950.0,
                      "init_hash": f"h{seed}"}
            (folder / "run.json").write_text(json.dumps(record))
            if metrics and state == "ok":
                lines = [{"iteration": i * 50, "test_error": (count + 300 - 150 * i) / test_size,
                          "train_loss": None if i == 0 else 1.0 / i,
                          "activations": {"s1_conv1": {"mean": 0.1 * i, "median": 0.05 * i}}}
                         for i in range(3)]
                (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return Path(root)
