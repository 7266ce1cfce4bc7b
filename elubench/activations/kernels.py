"""Which kernel computes ELU, SELU and CELU on this machine's CPU: PyTorch's or elubench's.

PyTorch's CPU kernel for the exponential activations evaluates expm1; whether that is slow
depends on the build and the CPU. On one 2-core AMD EPYC (issue 17) forward + backward of F.elu
took 14.5x ReLU's time and elubench's vectorized kernel (layers.ExpLinear) a quarter of that;
on this project's machine with torch 2.14.1 elubench's in-place kernel takes 0.87 of PyTorch's
in-place kernel's time (and ELU trains at 1.01-1.11x ReLU's time per image against 1.15-1.16x).
So the choice is measured, once per machine and torch version: both kernels, in place as
training uses them, on one thread, interleaved; elubench's is chosen only when it takes at most
MARGIN of PyTorch's time, so a difference within the measurement's noise keeps PyTorch's. The decision is cached under the cache folder, so every
process and every later run on the machine uses the same kernel (a lock makes the first worker
measure while the others wait), and each run records which kernel trained it
(`activation_impl`). $ELUBENCH_ACTIVATION_KERNELS=torch or =elubench overrides the measurement.
On a GPU it is always PyTorch's kernel (memory-bound and fast).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import statistics
import time

import torch

from elubench.core import __version__
from elubench.core.files import write_json_atomic
from elubench.core.machine import cpu_name
from elubench.core.paths import default_cache_dir

KERNELS_ENV = "ELUBENCH_ACTIVATION_KERNELS"  # torch | elubench | auto (the default)
MARGIN = 0.9  # elubench's kernel must take at most this fraction of PyTorch's time
CACHE_NAME = "kernels.json"


class ExpLinearCPU(torch.autograd.Function):
    """Forward: scale * (relu(x) + alpha * (exp(input_scale * min(x, 0)) - 1)), in place when
    asked (the tensor it overwrites is a conv, FC or BN output nobody's backward needs). The
    negative part is exactly 0 for x > 0 (exp(0) - 1), so the positive side is exactly x, even
    where x is below alpha's rounding unit; the output's sign is the input's, which the
    backward relies on. Backward from the output y: input_scale * (y + alpha * scale) where
    y <= 0, scale elsewhere."""

    @staticmethod
    def forward(ctx, x, alpha: float, scale: float, input_scale: float, inplace: bool):
        negative = torch.clamp_max(x, 0.0)
        if input_scale != 1.0:
            negative.mul_(input_scale)
        negative.exp_().sub_(1.0)
        if inplace:
            ctx.mark_dirty(x)
            y = x.relu_()
        else:
            y = torch.relu(x)
        y.add_(negative, alpha=alpha)
        if scale != 1.0:
            y.mul_(scale)
        ctx.save_for_backward(y)
        ctx.coefficients = (alpha, scale, input_scale)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        alpha, scale, input_scale = ctx.coefficients
        return (
            torch.ops.aten.elu_backward(grad, alpha, scale, input_scale, True, y),
            None,
            None,
            None,
            None,
        )


def exp_linear_kernel(device) -> str:
    """ "elubench" or "torch": whose kernel computes the exponential activations on `device`."""
    forced = os.environ.get(KERNELS_ENV, "auto").strip().lower()
    if forced in ("torch", "elubench"):
        return forced if torch.device(device).type == "cpu" or forced == "torch" else "torch"
    if torch.device(device).type != "cpu":
        return "torch"
    return _cpu_choice()


def _machine_key() -> str:
    return f"{cpu_name()} | torch {torch.__version__} | elubench {__version__}"


@functools.lru_cache(maxsize=1)
def _cpu_choice() -> str:
    path = default_cache_dir() / CACHE_NAME
    key = _machine_key()
    with _locked(path.with_suffix(".lock")):
        cached = _read(path)
        entry = cached.get(key, {})
        if entry.get("choice") in ("torch", "elubench") and entry.get("margin") == MARGIN:
            return entry["choice"]
        timing = measure()
        cached[key] = timing
        try:
            write_json_atomic(path, cached)
        except OSError:
            pass  # an unwritable cache costs only a measurement next time
    return timing["choice"]


def _read(path) -> dict:
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _locked(path):
    """An exclusive lock on `path` (POSIX flock); no lock where that is not possible."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 (held while the lock is; closed below)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()


def measure(shape=(64, 32, 8, 8), rounds: int = 11, calls: int = 40) -> dict:
    """Forward + backward of ELU in place with each kernel on one thread, medians of
    interleaved rounds, and the choice they make."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x0 = torch.randn(shape)
        grad = torch.randn(shape)
        leaf = x0.clone().requires_grad_()
        kernels = {
            "torch": lambda x: torch.ops.aten.elu_(x, 1.0, 1.0, 1.0),
            "elubench": lambda x: ExpLinearCPU.apply(x, 1.0, 1.0, 1.0, True),
        }

        def once(kernel) -> float:
            start = time.perf_counter()
            for _ in range(calls):
                kernel(leaf.clone()).backward(grad)
            return (time.perf_counter() - start) / calls

        for kernel in kernels.values():
            once(kernel)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in kernels}
        for _ in range(rounds):
            for name, kernel in kernels.items():
                times[name].append(once(kernel))
    finally:
        torch.set_num_threads(threads)
    median = {name: statistics.median(values) for name, values in times.items()}
    choice = "elubench" if median["elubench"] <= MARGIN * median["torch"] else "torch"
    return {
        "choice": choice,
        "torch_us": median["torch"] * 1e6,
        "elubench_us": median["elubench"] * 1e6,
        "margin": MARGIN,
        "shape": list(shape),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
    }
