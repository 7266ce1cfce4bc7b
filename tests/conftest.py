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
