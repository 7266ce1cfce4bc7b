"""Calibrate elubench.net.memory' activation-memory estimate against a measurement on this CPU.

    python benchmarks/memory_calibration.py            # per step and pass (about 2 min, 2 cores)
    python benchmarks/memory_calibration.py --runs     # whole runs' peak RSS (about 4 min)

Each case runs in a fresh process: build the net and its SGD optimizer as `train` does, make
one batch, reset the peak-RSS mark (/proc/self/clear_refs, Linux), take one `train.make_step`
(forward, backward, the first SGD step, which creates the momentum buffers), and read the
peak (VmHWM). Measured activation memory = peak growth over the step - gradients - momentum.
The table compares it with resources' row sums (before ACTIVATION_FACTOR and
INFERENCE_FACTOR). `--runs` trains whole runs (`elubench run --executor serial`, 4 iterations,
3 evaluations, synthetic data) and compares their peak RSS with `RunEstimate.cpu_total`.
Linux only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = 200  # images in the inference pass (train.probe_size's default is 500)
CASES = [  # spec file or inline stacks, activation, batchnorm, batch size
    ("specs/quickstart.yaml", "relu", False, 1024),
    ("specs/quickstart.yaml", "elu", True, 1024),
    ("specs/quickstart.yaml", "mish", True, 1024),
    ("specs/elu-cifar100-11.yaml", "elu", False, 32),
    ("specs/elu-cifar100-11.yaml", "elu", True, 32),
    ("specs/elu-cifar100-11.yaml", "relu", False, 64),
    ("specs/elu-cifar100-11.yaml", "mish", False, 32),
    ("specs/he-init-30layer.yaml", "relu", False, 32),
    ("specs/he-init-30layer.yaml", "elu", True, 32),
    ("specs/mnist-mlp-8x128.yaml", "relu", False, 4096),
    ("specs/mnist-mlp-8x128.yaml", "mish", True, 4096),
    ("specs/elu-cifar10-18.yaml", "elu", False, 16),
    ("specs/elu-cifar10-18.yaml", "relu", True, 16),
    ("specs/mnist-autoencoder.yaml", "elu", False, 1024),
]


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def measure(spec_path: str, activation: str, batchnorm: bool, batch: int) -> dict:
    import torch

    from elubench.spec.loader import load_spec
    from elubench.spec.matrix import RunConfig
    from elubench.training.steps import (
        activation_implementation,
        activation_stats,
        build_for_training,
        make_step,
    )

    torch.set_num_threads(1)
    spec = load_spec(ROOT / spec_path, [f"train.batch_size={batch}"])
    cfg = RunConfig(
        spec_name=spec.name,
        spec_hash=spec.hash,
        activation=activation,
        batchnorm=batchnorm,
        init="he",
        seed=0,
        config=activation,
    )
    model, optimizer, _, memory_format = build_for_training(spec, cfg, torch.device("cpu"))
    activation_implementation(model, torch.device("cpu"))
    step = make_step(model, optimizer, spec.task, "fp32", memory_format)
    x = torch.randn(batch, *spec.data.input_shape()).contiguous(memory_format=memory_format)
    y = torch.randint(0, spec.data.classes() or 10, (batch,))
    params = sum(p.numel() for p in model.parameters())
    Path("/proc/self/clear_refs").write_text("5")
    before = _kib("VmRSS")
    step(x, y)
    peak = _kib("VmHWM")
    del x, y
    probe = torch.randn(PROBE, *spec.data.input_shape()).contiguous(memory_format=memory_format)
    Path("/proc/self/clear_refs").write_text("5")
    before_pass = _kib("VmRSS")
    activation_stats(model, probe, "fp32", memory_format)
    return {
        "params": params,
        "activations": peak - before - 2 * 4 * params,
        "inference": _kib("VmHWM") - before_pass,
    }


def _run_spec(name, stacks, shape, classes, batch, activation, batchnorm, train=5000) -> dict:
    return {
        "name": name,
        "data": {
            "dataset": "synthetic",
            "synthetic": {
                "shape": shape,
                "classes": classes,
                "train_size": train,
                "test_size": 1000,
            },
        },
        "model": {"stacks": stacks},
        "train": {"batch_size": batch, "lr": 0.01, "iterations": 4, "eval_every": 2},
        "compare": {"activations": [activation], "batchnorm": [batchnorm], "seeds": 1},
    }


def whole_runs() -> None:
    import tempfile

    import yaml

    from elubench.activations.names import parse_activation
    from elubench.net.memory import estimate_run
    from elubench.spec.loader import load_spec

    def stacks(path):
        return yaml.safe_load((ROOT / path).read_text())["model"]["stacks"]

    runs = [
        _run_spec(
            "c100-elu-bn-32",
            stacks("specs/elu-cifar100-11.yaml"),
            [3, 32, 32],
            100,
            32,
            "elu",
            True,
        ),
        _run_spec(
            "c100-relu-100",
            stacks("specs/elu-cifar100-11.yaml"),
            [3, 32, 32],
            100,
            100,
            "relu",
            False,
        ),
        _run_spec(
            "he30-elu-32", stacks("specs/he-init-30layer.yaml"), [3, 32, 32], 10, 32, "elu", False
        ),
        _run_spec(
            "mlp-relu-64",
            stacks("specs/mnist-mlp-8x128.yaml"),
            [1, 28, 28],
            10,
            64,
            "relu",
            False,
            train=60000,
        ),
        _run_spec(
            "small-mish-256",
            ["1x32x3", "1x64x3", "1x10x1"],
            [3, 32, 32],
            10,
            256,
            "mish",
            True,
            train=20000,
        ),
    ]
    print(f"{'run':16} {'peak RSS MiB':>12} {'estimate MiB':>12} {'estimate / peak':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in runs:
            path = Path(tmp) / f"{spec['name']}.yaml"
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            # a fresh parent per run, so RUSAGE_CHILDREN's peak is this run's alone
            probe = (
                "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
                "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
            )
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    probe,
                    sys.executable,
                    "-m",
                    "elubench",
                    "run",
                    str(path),
                    "--device",
                    "cpu",
                    "--executor",
                    "serial",
                    "--results",
                    str(Path(tmp) / "results"),
                ],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            peak = int(out.stdout.split()[-1]) * 1024
            loaded = load_spec(path)
            estimate = estimate_run(
                loaded,
                parse_activation(spec["compare"]["activations"][0]),
                spec["compare"]["batchnorm"][0],
            ).cpu_total
            print(
                f"{spec['name']:16} {peak / 2**20:12.0f} {estimate / 2**20:12.0f} "
                f"{estimate / peak:15.2f}"
            )


def main() -> None:
    if sys.argv[1:] == ["--runs"]:
        whole_runs()
        return
    if len(sys.argv) > 1:
        print(json.dumps(measure(*json.loads(sys.argv[1]))))
        return
    from elubench.activations.names import parse_activation
    from elubench.net.memory import FLOAT, per_image
    from elubench.spec.layout import net_layout
    from elubench.spec.loader import load_spec

    ratios, passes = [], []
    print(
        f"{'spec':20} {'act':5} {'bn':3} {'batch':>5} {'step: estimate':>14} {'measured':>9} "
        f"{'ratio':>6} {'pass: estimate':>14} {'measured':>9} {'ratio':>6}   (MiB)"
    )
    for case in CASES:
        spec_path, activation, batchnorm, batch = case
        out = subprocess.run(
            [sys.executable, __file__, json.dumps(case)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        got = json.loads(out.stdout)
        spec = load_spec(ROOT / spec_path)
        plan = net_layout(spec, parse_activation(activation), batchnorm)
        assert plan.total_params == got["params"]
        floats = per_image(plan, parse_activation(activation))
        step, inference = batch * floats.step * FLOAT, PROBE * floats.inference * FLOAT
        ratios.append(got["activations"] / step)
        passes.append(got["inference"] / inference)
        print(
            f"{Path(spec_path).stem:20} {activation:5} {str(batchnorm)[0]:3} {batch:5} "
            f"{step / 2**20:14.1f} {got['activations'] / 2**20:9.1f} {ratios[-1]:6.2f} "
            f"{inference / 2**20:14.1f} {got['inference'] / 2**20:9.1f} {passes[-1]:6.2f}"
        )
    for name, values in (("training step", ratios), ("inference pass", passes)):
        values.sort()
        print(
            f"{name}: measured / estimate min {values[0]:.2f}, median "
            f"{values[len(values) // 2]:.2f}, max {values[-1]:.2f}"
        )


if __name__ == "__main__":
    main()
