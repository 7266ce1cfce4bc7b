"""The device a run trains on, backend settings, and the versions a record names."""

from __future__ import annotations

import os
import sys

import torch

from elubench.core import __version__
from elubench.core.errors import DeviceError
from elubench.core.machine import cpu_name, usable_cores

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then MPS, then the CPU; an explicit device must exist."""
    name = (name or "auto").lower()
    base = name.split(":")[0]
    if base not in DEVICES:
        raise DeviceError(
            f"unknown device {name!r}", where="--device", hint="use auto, cpu, cuda, cuda:N or mps"
        )
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "CUDA is not available on this machine",
                where="--device",
                hint="use --device cpu (or auto)",
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"there is no GPU {index} (this machine has {torch.cuda.device_count()})",
                where="--device",
            )
    if base == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise DeviceError(
            "MPS (Apple GPU) is not available on this machine",
            where="--device",
            hint="use --device cpu (or auto)",
        )
    return torch.device(name)


def configure(
    device: torch.device, threads: int | None = None, deterministic: bool = False
) -> None:
    """Every process-wide setting for speed that does not change the science, in one place.

    CUDA: cudnn.benchmark picks the fastest conv algorithm per shape (fixed shapes here);
    TF32 stays off so fp32 means fp32. CPU: `threads` intra-op threads (a run's fixed count, see
    `train.threads`; all cores when None, as `bench` measures) and freed memory kept in the heap
    (`keep_freed_memory`, unless $ELUBENCH_KEEP_FREED_MEMORY=0).

    `deterministic` (`run --deterministic`): PyTorch's deterministic algorithms and cuDNN's
    deterministic convolutions with benchmark mode off, at a cost on GPUs (docs/performance.md).
    Ops with no deterministic implementation warn instead of failing the run.
    """
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if device.type == "cpu":
        torch.set_num_threads(threads or usable_cores())
        if keep_freed_memory_wanted():
            keep_freed_memory()


KEEP_FREED_MEMORY_ENV = "ELUBENCH_KEEP_FREED_MEMORY"
_ALLOCATOR: dict[str, bool | None] = {"applied": None}  # what keep_freed_memory did in this process


def keep_freed_memory_wanted() -> bool:
    """False when $ELUBENCH_KEEP_FREED_MEMORY is 0, false, no or off (docs/performance.md)."""
    return os.environ.get(KEEP_FREED_MEMORY_ENV, "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to serve big blocks from its heap and keep what is freed.

    PyTorch's CPU allocator has no cache: every step allocates and frees the same large
    activation tensors. By default glibc maps each block over 32 MB fresh from the kernel
    and unmaps it on free, so every step page-faults its activations in again; measured on
    the 11-layer net at full width on 2 cores this costs 15-25 % of the step (docs/performance.md).
    Only layout changes, not arithmetic. Returns False where it does not apply (not glibc).
    Applies to the whole process, once; `allocator_setting` says what was done.
    """
    if _ALLOCATOR["applied"] is not None:
        return _ALLOCATOR["applied"]
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        _ALLOCATOR["applied"] = False
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
    _ALLOCATOR["applied"] = applied
    return applied


def allocator_setting(device: torch.device) -> str | None:
    """The CPU allocator setting a run trained under, for its record; None off the CPU."""
    if device.type != "cpu":
        return None
    if _ALLOCATOR["applied"]:
        return "glibc keeps freed memory (M_MMAP_MAX 0, M_TRIM_THRESHOLD 1 GiB)"
    if not keep_freed_memory_wanted():
        return f"default (turned off by {KEEP_FREED_MEMORY_ENV})"
    return "default (mallopt not available)" if _ALLOCATOR["applied"] is False else "default"


_COMPILE_CONFIGURED = {"done": False}


def compiled(model):
    """torch.compile with settings that keep the science, set once per process: dropout draws
    from torch's own generator as in eager mode (so a seed gives the same masks compiled or
    not), a recompile limit above the number of variants in a matrix, and a persistent cache
    under the user's cache folder so later runs and later sessions reuse compiled graphs."""
    if not _COMPILE_CONFIGURED["done"]:
        import torch._dynamo
        import torch._inductor.config

        from elubench.core.paths import default_cache_dir

        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(default_cache_dir() / "inductor"))
        torch._inductor.config.fallback_random = True
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        _COMPILE_CONFIGURED["done"] = True
    return torch.compile(model)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return cpu_name()
    return device.type


def versions() -> dict[str, str]:
    import numpy

    out = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "elubench": __version__,
    }
    try:
        import scipy

        out["scipy"] = scipy.__version__
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass
    if torch.version.cuda:
        out["cuda"] = torch.version.cuda
    return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
