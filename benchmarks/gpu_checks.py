"""The correctness steps of benchmarks/gpu.py: what must hold on the GPU before its figures
mean anything. Each takes a `gpu_common.Step` and records its checks and figures."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from gpu_common import ROOT, Step, StepFailed, cifar11, finite, quickstart, records

# Activations on the device against the CPU, fp32 (one stated tolerance for every activation,
# output and gradients alike): |device - cpu| <= ATOL + RTOL * |cpu|. Both sides compute in
# fp32 with their own exp/erf/tanh (a few ulps apart) and reduce PReLU's slope gradient in
# their own order, so the bound is a few ulps of the values at stake, not bit equality.
RTOL, ATOL = 1e-5, 1e-5
# Besides each built-in at its defaults, the parameters that take another code path.
VARIANTS = [
    "elu(alpha=0.5)",
    "celu(alpha=2)",
    "lrelu(0.2)",
    "gelu(approximate=tanh)",
    "softplus(beta=2)",
    "prelu(shared=true)",
]


def environment(step: Step) -> None:
    """The machine as the steps see it: GPU, driver, torch, CUDA, cuDNN, Python, elubench."""
    import torch

    import elubench

    info: dict = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cpu_cores": os.cpu_count(),
        "elubench": elubench.__version__,
        "elubench_file": elubench.__file__,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name,
            gpu_memory_bytes=props.total_memory,
            compute_capability=f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count,
        )
    smi = shutil.which("nvidia-smi")
    if smi:
        query = "--query-gpu=name,driver_version,memory.total"
        out = subprocess.run([smi, query, "--format=csv,noheader"], capture_output=True, text=True)
        info["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
        if out.returncode == 0 and out.stdout.strip():
            info["driver"] = out.stdout.splitlines()[0].split(",")[1].strip()
    for name in ("numpy", "torchvision", "scikit-learn", "pydantic", "typer", "rich", "pyyaml"):
        try:  # the installed version, without importing (torchvision alone takes seconds)
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    step.set(environment=info)
    step.check(
        "elubench is this working tree's", Path(elubench.__file__).resolve().is_relative_to(ROOT)
    )
    if step.device == "cuda":
        step.check("torch sees a CUDA GPU", torch.cuda.is_available(), torch.version.cuda)
    gpu = info.get("gpu") or "no GPU (dry run)"
    step.set(
        headline=f"{gpu}, driver {info.get('driver', '?')}, torch {info['torch']} (CUDA "
        f"{info['torch_cuda']}, cuDNN {info['cudnn']}), Python {info['python']}, "
        f"torchvision {info['torchvision'] or 'missing'}"
    )


def pairing(step: Step) -> None:
    """The quick start's pairing on the device: every activation and BN setting of a seed
    starts from the same weights (the records' init hash), the hash the CPU computes."""
    size = step.size
    n, seeds = size["pairing_iterations"], size["seeds"]
    spec, data = quickstart(step, iterations=n, eval_every=n // 2)
    results = step.work / "results"
    step.train(
        spec,
        results,
        "--seeds",
        seeds,
        "--executor",
        "serial",
        *size["pairing_activations"],
    )
    runs = records(results)
    chosen = size["pairing_activations"]
    activations = chosen[1].split(",") if chosen else _spec_activations(spec)
    expected = len(activations) * 2 * seeds  # x BN off and on
    step.set(data=data, runs=len(runs))
    step.check(
        "every activation x BN x seed ran ok",
        len(runs) == expected and all(r["status"] == "ok" for r in runs),
        f"{len(runs)} runs, statuses {sorted({r['status'] for r in runs})}",
    )
    step.check("finite losses", all(finite(r["train_loss"], r["test_loss"]) for r in runs))
    hashes: dict[int, set] = {}
    for r in runs:
        hashes.setdefault(r["seed"], set()).add(r["init_hash"])
    step.set(init_hashes={seed: sorted(h) for seed, h in hashes.items()})
    step.check(
        "one init hash per seed across activations and BN",
        all(len(h) == 1 for h in hashes.values()),
    )
    step.check("each seed its own init", len({min(h) for h in hashes.values()}) == seeds)

    from elubench.activations.code import resolve_name
    from elubench.net.build import build_model
    from elubench.net.init import init_hash
    from elubench.spec.loader import load_spec

    loaded = load_spec(spec)
    on_cpu = {
        seed: init_hash(build_model(loaded, resolve_name("relu", loaded), False, seed=seed))
        for seed in hashes
    }
    step.check(
        "the CPU's init hash for each seed", all(hashes[s] == {on_cpu[s]} for s in hashes), on_cpu
    )
    devices = {r["device"] for r in runs}
    step.check(f"trained on {step.device}", devices == {step.device}, sorted(devices))
    kernels = {r["activation"]: r["activation_impl"] for r in runs}
    step.set(kernels=kernels, device_name=runs[0]["device_name"] if runs else None)
    if step.device == "cuda":  # elubench's own kernel is for CPUs only (activations.kernels)
        step.check("PyTorch's kernels on CUDA", set(kernels.values()) == {"torch"}, kernels)
    step.set(
        headline=f"{len(runs)} runs ({data}): one init hash per seed, the CPU's; kernels {kernels}"
    )


def _spec_activations(spec) -> list[str]:
    import yaml

    return yaml.safe_load(spec.read_text())["compare"]["activations"]


def _run_activation(torch, module, x, g, device, autocast: bool):
    """Output, input gradient and parameter gradients of `module` on `device`, its input a
    non-leaf in channels_last as a conv's output is (the in-place activations write into it)."""
    leaf = x.to(device).contiguous(memory_format=torch.channels_last).requires_grad_()
    if autocast:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            y = module(leaf.to(torch.bfloat16))
    else:
        y = module(leaf * 1.0)
    y.backward(g.to(device, y.dtype))
    grads = [p.grad.float().cpu() for p in module.parameters()]
    return [y.detach().float().cpu(), leaf.grad.float().cpu(), *grads]


def _own_stream(torch, act, x, device) -> dict:
    """A stochastic activation in training on the device: the same seed and call draw the same
    noise, and the device's global generator (dropout's) is left where it was."""
    module = act.create(16).to(device).train()
    module.seed = 3
    on = x.to(device)
    before = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    first = module(on.clone())
    module.calls = 0
    again = module(on.clone())
    after = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    same, untouched = bool(torch.equal(first, again)), bool(torch.equal(before, after))
    return {"reproducible": same, "global_stream_untouched": untouched, "ok": same and untouched}


def activations(step: Step) -> None:
    """Every built-in activation, forward and backward, on the device against the CPU."""
    import torch

    from elubench.activations.names import parse_activation
    from elubench.activations.registry import DEFINITIONS, Activation

    device = torch.device(step.device)
    names = [d.name for d in DEFINITIONS] + VARIANTS
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 16, 6, 6, generator=generator) * 3
    x.view(-1)[:10] = torch.tensor(
        [0.0, -0.0, 1e-30, -1e-30, 1e-4, -1e-4, 30.0, -30.0, 80.0, -80.0]
    )
    g = torch.randn(x.shape, generator=generator)
    rows: dict[str, dict] = {}
    bad: list[str] = []
    for name in names:
        act = parse_activation(name)
        assert isinstance(act, Activation), name  # built-ins, not a user's code
        try:  # one activation's failure on the device is a row, not the end of the step
            reference = act.create(16)
            moved = act.create(16).to(device)
            moved.load_state_dict(reference.state_dict())
            if act.stochastic:  # random in training: the devices draw apart; evaluation is not
                reference.eval(), moved.eval()
                row_extra = {"stream": _own_stream(torch, act, x, device)}
            else:
                row_extra = {}
            cpu = _run_activation(torch, reference, x, g, torch.device("cpu"), False)
            dev = _run_activation(torch, moved, x, g, device, False)
            worst = max(float(((d - c).abs() - RTOL * c.abs()).max()) for d, c in zip(dev, cpu))
            ok = worst <= ATOL and len(dev) == len(cpu)
            half = _run_activation(torch, act.create(16).to(device), x, g, device, True)
            half_ok = all(bool(torch.isfinite(t).all()) for t in half)
            rows[name] = {
                "max_abs_diff": max(float((d - c).abs().max()) for d, c in zip(dev, cpu)),
                "within_tolerance": ok,
                "bf16_autocast_finite": half_ok,
                "bf16_max_abs_diff": max(float((h - c).abs().max()) for h, c in zip(half, cpu)),
                **row_extra,
            }
            ok = ok and row_extra.get("stream", {}).get("ok", True)
        except Exception as exc:
            ok, rows[name] = False, {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        if not (ok and rows[name].get("bf16_autocast_finite")):
            bad.append(name)
        step.set(activations=rows)
    step.set(tolerance={"rtol": RTOL, "atol": ATOL, "dtype": "float32"})
    step.check(
        f"{len(names)} activations: forward and backward within tolerance, bf16 finite",
        not bad,
        bad,
    )
    step.set(
        headline=f"{len(names) - len(bad)}/{len(names)} within |{step.device} - cpu| <= {ATOL:g} + {RTOL:g}·|cpu|"
        + (f"; off: {', '.join(bad)}" if bad else "")
    )


def precision(step: Step) -> None:
    """fp32 and bf16 runs (the quick start and the 11-layer net) finish with finite losses."""
    size = step.size
    n, m = size["precision_iterations"], size["cifar_iterations"]
    spec, data = quickstart(step, iterations=n, eval_every=n // 2)
    deep = cifar11(step, iterations=m, eval_every=m)
    summary = {}
    for chosen in ("fp32", "bf16"):
        results = step.work / chosen
        step.train(
            [spec, deep],
            results,
            "--precision",
            chosen,
            "-a",
            "elu",  # the exponential one; bench-bf16 trains relu too
            "--batchnorm",
            "both",
            "--seeds",
            "1",
            "--executor",
            "serial",
        )
        runs = records(results)
        lines = [
            line
            for path in results.rglob("metrics.jsonl")
            for line in map(json.loads, path.read_text().splitlines())
        ]
        summary[chosen] = {
            r["run_id"] + " " + r["spec_name"]: {
                "status": r["status"],
                "train_loss": r["train_loss"],
                "test_error": r["test_error"],
                "images_per_second": r["images_per_second"],
            }
            for r in runs
        }
        step.set(runs=summary)
        step.check(
            f"{chosen}: 4 runs ok", len(runs) == 4 and all(r["status"] == "ok" for r in runs)
        )
        step.check(f"{chosen}: records say {chosen}", {r["precision"] for r in runs} == {chosen})
        step.check(
            f"{chosen}: every loss finite",
            all(finite(r["train_loss"], r["test_loss"]) for r in runs)
            and all(finite(line["test_loss"]) for line in lines),
        )
    step.set(
        headline=f"fp32 and bf16, quick start ({data}) and 11-layer net: "
        f"{sum(len(v) for v in summary.values())} runs, every loss finite"
    )


def _wait_for(results, name: str, proc: subprocess.Popen, timeout: float):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = next(iter(results.rglob(name)), None) if results.exists() else None
        if found is not None:
            return found
        if proc.poll() is not None:
            raise StepFailed(f"the run ended (exit {proc.returncode}) before a {name} appeared")
        time.sleep(0.02)
    raise StepFailed(f"no {name} after {timeout:.0f} s")


def resume(step: Step) -> None:
    """SIGKILL mid-run, then the same command: the run resumes from its checkpoint and its
    record completes. Both runs --deterministic, so the resumed record can also be set beside
    an uninterrupted one (recorded, not required: a GPU kernel may still vary)."""
    size = step.size
    n, every = size["resume_iterations"], size["resume_eval_every"]
    spec, data = quickstart(step, iterations=n, eval_every=every)
    common = [
        spec,
        "--device",
        step.device,
        "-a",
        "elu",
        "--batchnorm",
        "on",
        "--seeds",
        "1",
        "--executor",
        "serial",
        "--deterministic",
    ]
    whole_dir, results = step.work / "whole", step.work / "killed"
    step.elubench("run", "--results", whole_dir, *common)
    (whole,) = records(whole_dir)
    command = [
        sys.executable,
        "-m",
        "elubench",
        "run",
        "--results",
        str(results),
        *map(str, common),
        "--checkpoint-every",
        "0",
    ]
    with open(step.work / "killed.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=step.work)
        try:
            checkpoint = _wait_for(results, "checkpoint.pt", proc, timeout=120)
            time.sleep(0.1)  # past the checkpoint, into the next stretch of steps
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()  # no-op when it is dead already; never leave it running
            proc.wait()
    record = checkpoint.parent / "run.json"
    lines = (checkpoint.parent / "metrics.jsonl").read_text().splitlines()
    step.set(killed_after_evaluations=len(lines))
    step.check("killed before its record", not record.exists(), f"{len(lines)} evaluations logged")
    step.elubench("run", "--results", results, *common)
    (after,) = records(results)
    step.check(
        "the resumed run's record is ok and complete",
        after["status"] == "ok" and after["iterations"] == n and finite(after["train_loss"]),
        f"status {after['status']}, {after['iterations']}/{n} iterations",
    )
    step.check(
        "it resumed from the checkpoint",
        bool(after["resumed_at"]) and after["resumed_at"][0] > 0,
        after["resumed_at"],
    )
    same = (
        after["test_errors"] == whole["test_errors"] and after["train_loss"] == whole["train_loss"]
    )
    step.set(
        data=data,
        resumed_at=after["resumed_at"],
        matches_uninterrupted=same,
        uninterrupted={"test_errors": whole["test_errors"], "train_loss": whole["train_loss"]},
        resumed={"test_errors": after["test_errors"], "train_loss": after["train_loss"]},
        headline=f"killed at ~{len(lines) - 1} of {n // every} evaluations, resumed at iteration "
        f"{after['resumed_at'][0] if after['resumed_at'] else '?'}, record ok; "
        f"{'equal to' if same else 'differs from'} the uninterrupted run",
    )
