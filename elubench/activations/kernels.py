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

from elubench import __version__

KERNELS_ENV = "ELUBENCH_ACTIVATION_KERNELS"  # torch | elubench | auto (the default)
MARGIN = 0.9   # elubench's kernel must take at most this fraction of PyTorch's time
CACHE_NAME = "kernels.json"


def exp_linear_kernel(device) -> str:
    """"elubench" or "torch": whose kernel computes the exponential activations on `device`."""
    forced = os.environ.get(KERNELS_ENV, "auto").strip().lower()
    if forced in ("torch", "elubench"):
        return forced if torch.device(device).type == "cpu" or forced == "torch" else "torch"
    if torch.device(device).type != "cpu":
        return "torch"
    return _cpu_choice()


def _machine_key() -> str:
    from elubench.training.runtime import device_name
    return f"{device_name(torch.device('cpu'))} | torch {torch.__version__} | elubench {__version__}"


@functools.lru_cache(maxsize=1)
def _cpu_choice() -> str:
    from elubench.core.files import write_json_atomic
    from elubench.core.paths import default_cache_dir

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
        handle = open(path, "a")
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
    from elubench.activations.modules import _ExpLinearCPU

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x0 = torch.randn(shape)
        grad = torch.randn(shape)
        leaf = x0.clone().requires_grad_()
        kernels = {"torch": lambda x: torch.ops.aten.elu_(x, 1.0, 1.0, 1.0),
                   "elubench": lambda x: _ExpLinearCPU.apply(x, 1.0, 1.0, 1.0, True)}

        def once(kernel) -> float:
            start = time.perf_counter()
            for _ in range(calls):
                kernel(leaf.clone()).backward(grad)
            return (time.perf_counter() - start) / calls

        for kernel in kernels.values():
            once(kernel)  # warm-up
        times = {name: [] for name in kernels}
        for _ in range(rounds):
            for name, kernel in kernels.items():
                times[name].append(once(kernel))
    finally:
        torch.set_num_threads(threads)
    median = {name: statistics.median(values) for name, values in times.items()}
    choice = "elubench" if median["elubench"] <= MARGIN * median["torch"] else "torch"
    return {"choice": choice, "torch_us": median["torch"] * 1e6,
            "elubench_us": median["elubench"] * 1e6, "margin": MARGIN, "shape": list(shape),
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version()}
