"""What every step of benchmarks/gpu.py shares: the step's record, its sizes, the specs it
trains and the `elubench` commands it runs.

A step is its own process (`python benchmarks/gpu.py --step NAME ...`), so a step that hangs
or crashes CUDA is killed alone and the next one starts clean. It writes its result to a JSON
file as it goes (`Step.set`, `Step.check`): a step killed at its budget still leaves what it
measured. Imports no torch at module level: the steps that only run commands start fast.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

# Each step's sizes. "gpu": what the figures need within the step's budget on one GPU;
# "dry": toy sizes, so that `--dry-run` checks every step on 2 CPU cores in seconds.
SIZES: dict[str, dict] = {
    "gpu": {
        "pairing_iterations": 100,
        "pairing_activations": [],  # the quick start's four
        "seeds": 2,
        "precision_iterations": 300,
        "cifar_iterations": 100,  # the 11-layer net in the precision step
        "deterministic_iterations": 200,  # ... and with and without --deterministic
        "resume_iterations": 1000,  # a kill ~0.1 s past the first checkpoint lands mid-run
        "resume_eval_every": 50,
        "cifar_width": 1.0,
        "cifar_preprocess": "gcn-zca",  # as the real spec: the ZCA fit runs on the GPU
        "cifar_train": 2000,
        "cifar_test": 500,
        "probe_size": None,  # the spec's (500)
        "memory_iterations": 20,
        "parallel": [1, 2, 4, 8],
        "parallel_extra": [],  # the quick start's 4 activations x 2 BN settings
        "bench": ["--steps", "20", "--warmup", "5", "--repeats", "3"],
    },
    "dry": {
        "pairing_iterations": 20,
        "pairing_activations": ["-a", "relu,elu"],
        "seeds": 2,
        "precision_iterations": 20,
        "cifar_iterations": 4,
        "deterministic_iterations": 4,
        "resume_iterations": 200,
        "resume_eval_every": 10,
        "cifar_width": 0.05,
        "cifar_preprocess": "standardize",  # a 3072-wide ZCA fit takes seconds on 2 cores
        "cifar_train": 64,
        "cifar_test": 32,
        "probe_size": 16,
        "memory_iterations": 4,
        "parallel": [2],  # one layout: each costs its workers' start-up
        "parallel_extra": [
            "-a",
            "relu,elu",
            "--batchnorm",
            "off",
            "--seeds",
            "1",
            "--set",
            "train.iterations=20",
            "--set",
            "train.eval_every=10",
        ],
        "bench": [
            "--steps",
            "1",
            "--warmup",
            "1",
            "--repeats",
            "1",
            "--width",
            "0.05",
            "--batch-size",
            "8",
            "--reference-workers",
            "0",
        ],
    },
}


class StepFailed(Exception):
    """A step that cannot go on: its message is the step's one-line error."""


class Step:
    """One step's process: its settings, the result file it keeps up to date, its checks."""

    def __init__(self, name: str, device: str, work: Path, result: Path, dry_run: bool):
        self.name, self.device, self.dry_run = name, device, dry_run
        self.size = SIZES["dry" if dry_run else "gpu"]
        self.work = Path(work) / name
        self.work.mkdir(parents=True, exist_ok=True)
        self.path = Path(result)
        self.result: dict = {"checks": {}, "commands": []}
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.result, indent=2, default=str))
        os.replace(tmp, self.path)

    def set(self, **values) -> None:
        self.result.update(values)
        self.save()

    def check(self, name: str, ok: bool, detail: object = None) -> bool:
        """A required check: the step fails (exit 1) when any is false; all are recorded."""
        self.result["checks"][name] = {"ok": bool(ok), "detail": detail}
        self.save()
        print(f"check {'ok' if ok else 'FAILED'}: {name}" + (f" ({detail})" if detail else ""))
        return bool(ok)

    def failed_checks(self) -> list[str]:
        return [name for name, c in self.result["checks"].items() if not c["ok"]]

    def train(self, specs, results, *options, check: bool = True) -> subprocess.CompletedProcess:
        """`elubench run SPECS --device DEVICE --results RESULTS OPTIONS` (`specs`: one spec's
        path or several), through `elubench` below."""
        specs = specs if isinstance(specs, (list, tuple)) else [specs]
        return self.elubench(
            "run", *specs, "--device", self.device, "--results", results, *options, check=check
        )

    def elubench(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        """`elubench ARGS` as a user runs it (`python -m elubench`), from the step's folder;
        its output goes to the step's log, its command and wall seconds to the result."""
        command = [sys.executable, "-m", "elubench", *map(str, args)]
        print("$ elubench " + " ".join(map(str, args)), flush=True)
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=self.work)
        seconds = time.perf_counter() - start
        print(proc.stdout[-4000:] if "--json" not in args else "(JSON on stdout)")
        print(proc.stderr[-4000:], flush=True)
        self.result["commands"].append(
            {
                "command": "elubench " + " ".join(map(str, args)),
                "seconds": seconds,
                "exit": proc.returncode,
            }
        )
        self.save()
        if check and proc.returncode != 0:
            raise StepFailed(f"`elubench {args[0]}` exited {proc.returncode}: {last_line(proc)}")
        return proc


def last_line(proc: subprocess.CompletedProcess) -> str:
    """The last non-empty line a command wrote (its one-line error, or a traceback's end)."""
    lines = [line.strip() for line in (proc.stderr + "\n" + proc.stdout).splitlines()]
    return next((line for line in reversed(lines) if line), "(no output)")


def records(results: Path) -> list[dict]:
    """Every run record under a results folder."""
    from elubench.store.layout import find_records

    return [json.loads(p.read_text()) for p in find_records(results)]


def finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _write_spec(step: Step, spec: dict) -> Path:
    import yaml

    path = step.work / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def quickstart(step: Step, **train) -> tuple[Path, str]:
    """The quick start's spec and what its data is: the real one (scikit-learn's digits) where
    scikit-learn is installed, else its synthetic twin (the same net, image shape, classes and
    set sizes, so the same cost): the GPU machine's wheels may leave scikit-learn out
    (benchmarks/gpu.sh --fetch-wheels: it and scipy are 45 MB of a 64 MiB carry). The dry
    run always takes the twin: importing scikit-learn costs each process over a second.
    `train` replaces keys of its train section (in a copy: a flag such as --set would reach
    every spec of a command)."""
    import yaml

    path, data = SPECS / "quickstart.yaml", "digits (scikit-learn)"
    spec = yaml.safe_load(path.read_text())
    if step.dry_run or importlib.util.find_spec("sklearn") is None:
        why = "the dry run" if step.dry_run else "scikit-learn is not installed"
        data = f"synthetic twin of digits ({why})"
        spec["name"] = "quickstart-synthetic"
        spec["data"] = {
            "dataset": "synthetic",
            "preprocess": "standardize",
            "synthetic": {"shape": [1, 8, 8], "classes": 10, "train_size": 1352, "test_size": 445},
        }
    elif not train:
        return path, data
    spec["train"].update(train)
    return _write_spec(step, spec), data


def cifar11(step: Step, **train) -> Path:
    """The 11-layer CIFAR-100 net of specs/elu-cifar100-11.yaml on synthetic 3x32x32 images of
    100 classes (no download: the GPU machine has no network), at the step's width, with the
    spec's GCN + ZCA on the GPU; `train` replaces keys of its train section."""
    import yaml

    spec = yaml.safe_load((SPECS / "elu-cifar100-11.yaml").read_text())
    size = step.size
    spec["name"] = "elu-cifar100-11-synthetic"
    spec["data"] = {
        "dataset": "synthetic",
        "preprocess": size["cifar_preprocess"],
        "augment": spec["data"]["augment"],
        "synthetic": {
            "shape": [3, 32, 32],
            "classes": 100,
            "train_size": size["cifar_train"],
            "test_size": size["cifar_test"],
        },
    }
    spec.pop("reference", None)
    if size["cifar_width"] != 1:
        spec["model"]["width"] = size["cifar_width"]
    if size["probe_size"]:
        train.setdefault("probe_size", size["probe_size"])
    if step.dry_run:
        train.setdefault("batch_size", 8)
    spec["train"].update(train)
    return _write_spec(step, spec)
