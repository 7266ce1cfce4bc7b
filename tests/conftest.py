"""Shared helpers for the tests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec (a dict, or YAML text) to a file and return its path."""

    def write(content, name="spec.yaml"):
        path = tmp_path / name
        path.write_text(
            content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        )
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

    from elubench.cli.app import main

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


def make_results(
    root,
    errors: dict,
    *,
    spec_name="demo",
    spec_hash="abc",
    test_size=1000,
    status=None,
    metrics=True,
):
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
            record = {
                "run_id": run_id,
                "spec_name": spec_name,
                "spec_hash": spec_hash,
                "activation": activation,
                "batchnorm": bool(rest),
                "init": "he",
                "seed": seed,
                "config": config,
                "status": state,
                "task": "classification",
                "test_errors": count if state == "ok" else None,
                "test_size": test_size,
                "test_error": count / test_size if state == "ok" else None,
                "test_loss": 0.5,
                "train_loss": 0.4,
                "iterations": 100,
                "wall_seconds": 2.0,
                "images_per_second": 1000.0 if activation == "relu" else 950.0,
                "init_hash": f"h{seed}",
            }
            (folder / "run.json").write_text(json.dumps(record))
            if metrics and state == "ok":
                lines = [
                    {
                        "iteration": i * 50,
                        "test_error": (count + 300 - 150 * i) / test_size,
                        "train_loss": None if i == 0 else 1.0 / i,
                        "activations": {"s1_conv1": {"mean": 0.1 * i, "median": 0.05 * i}},
                    }
                    for i in range(3)
                ]
                (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return Path(root)


def quickstart_results(root, *, seeds: int = 10, source: str | None = None):
    """A results tree shaped like the quick start's (its spec in spec.json, its 8
    configurations, `seeds` seeds), from numbers: the report's every part, nothing trained."""
    import json

    from elubench.spec.loader import load_spec

    spec = load_spec(SPECS / "quickstart.yaml")
    if source is not None:
        spec = spec.model_copy(update={"source": source})
    base = {"elu": 50, "relu": 60, "lrelu": 56, "srelu": 52}
    errors = {
        f"{a}{bn}": [base[a] - (5 if bn else 0) + (seed * 7) % 5 for seed in range(seeds)]
        for a in base
        for bn in ("", "+bn")
    }
    make_results(root, errors, spec_name=spec.name, spec_hash=spec.hash)
    for record in (Path(root) / spec.name / "runs").glob("*/run.json"):
        fields = json.loads(record.read_text())
        record.write_text(json.dumps({**fields, "device": "cpu", "device_name": "a 2-core CPU"}))
    (Path(root) / spec.name / "spec.json").write_text(
        json.dumps(
            {"spec_name": spec.name, "spec_hash": spec.hash, "spec": spec.model_dump(mode="json")}
        )
    )
    return Path(root) / spec.name


# A user's activations file (issue 10) in which each object fails one check before anything
# trains (tests/test_custom_activations.py, the bad-input corpus of tests/test_bad_input.py).
BAD_ACTIVATIONS = """
import torch
from torch import nn

def shrinks(x):
    return x[:, :1]

def mixes(x):
    return x - x.mean()

def nan(x):
    return torch.where(x < -40, torch.full_like(x, float("nan")), x)

def raises(x):
    raise RuntimeError("boom")

def widens(x):
    return x.double()

def kinked(x):
    return torch.where(x > 0, x, 0.01 * x)  # its derivative jumps at 0, as declared
kinked.kinks = (0.0,)

class _WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * x
    @staticmethod
    def backward(ctx, g):
        return g          # should be 2 x g

def wrong_backward(x):
    return _WrongBackward.apply(x)

def grad_nan(x):  # the torch.where trap: the discarded sqrt of x < 0 is NaN, and so its gradient
    return torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x))

class Normalizes(nn.Module):
    channelwise = True
    def forward(self, x):
        dims = (2, 3) if x.dim() == 4 else ()
        return x - x.mean(dim=dims, keepdim=True) if dims else x

class HasLinear(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.gate = nn.Linear(channels, channels)
    def forward(self, x):
        return x

def elu(x):  # a built-in's name
    return x

not_callable = 3
"""


# What a run's record must hold alike whichever executor trained it (besides every metrics line
# without its timing): the result, the initial weights, the thread count, what was learned.
RESULT_FIELDS = (
    "status", "test_errors", "test_error", "test_loss", "train_loss", "iterations",
    "total_iterations", "init_hash", "threads", "activation_stats", "prelu_slopes",
)  # fmt: skip


def recorded_runs(folder, fields=RESULT_FIELDS) -> dict:
    """run_id -> (the record's `fields`, every metrics line without its timing, the whole
    record): what two executors must agree on, read from a results folder."""
    import json

    out = {}
    for path in sorted(Path(folder).rglob("run.json")):
        record = json.loads(path.read_text())
        lines = [
            json.loads(line) for line in (path.parent / "metrics.jsonl").read_text().splitlines()
        ]
        for line in lines:
            line.pop("seconds")
        out[record["run_id"]] = ({k: record[k] for k in fields}, lines, record)
    return out


def python_in(folder, code: str) -> str:
    """Run `code` in a fresh interpreter in `folder` (elubench importable from this checkout, as
    a worker elsewhere would find it); its stdout. It must succeed."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=folder, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


# Ten seeds of two activations with and without BN: error counts of 1,000 test images, elu
# better than relu in every seed (tests of compare, report, JSON and the bad-input corpus).
TEN = {
    "relu": [60, 62, 58, 61, 65, 59, 63, 60, 64, 62],
    "elu": [50, 51, 49, 52, 55, 48, 50, 51, 53, 50],
    "relu+bn": [55, 57, 52, 56, 60, 54, 58, 55, 59, 57],
    "elu+bn": [51, 50, 50, 52, 54, 49, 51, 50, 52, 51],
}


def runs_from(
    errors: dict[str, list], size: int = 1000, spec: str = "s", **columns
) -> pd.DataFrame:
    """One row per (config, seed) from {label: per-seed error counts}; an entry may be a count,
    None (a failed run) or "diverged". Labels follow config_label: act[+bn][/init]."""
    rows = []
    for label, values in errors.items():
        body, _, init = label.partition("/")
        activation, bn = body.removesuffix("+bn"), body.endswith("+bn")
        for seed, value in enumerate(values):
            status = (
                "ok"
                if isinstance(value, (int, np.integer))
                else ("diverged" if value == "diverged" else "failed")
            )
            count = int(value) if status == "ok" else None
            rows.append(
                {
                    "spec_name": spec,
                    "run_id": f"{label}-s{seed}",
                    "config": label,
                    "activation": activation,
                    "batchnorm": bn,
                    "init": init or "he",
                    "seed": seed,
                    "status": status,
                    "task": "classification",
                    "test_errors": count,
                    "test_size": size,
                    "test_error": count / size if count is not None else math.nan,
                    "train_loss": 0.1,
                    "iterations": 100,
                    "wall_seconds": 1.0,
                    "images_per_second": 1000.0,
                }
            )
    frame = pd.DataFrame(rows)
    frame["test_errors"] = frame["test_errors"].astype("Int64")
    for key, value in columns.items():
        frame[key] = value
    return frame
