"""What this machine offers a matrix, found without importing torch (the driver stays light):
the cores this process may use, the memory available, the GPUs visible."""

from __future__ import annotations

import itertools
import os
import platform
import shutil
import subprocess


def usable_cores() -> int:
    """Cores this process may use (its affinity mask, not the machine's total)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available to new processes now (Linux: MemAvailable); None if unknown."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def visible_gpus() -> list[str]:
    """The CUDA GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi
    lists."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = (item.strip() for item in listed.split(","))
        return list(itertools.takewhile(lambda g: g and not g.startswith("-"), ids))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        lines = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(k) for k, _ in enumerate(x for x in lines.splitlines() if x.startswith("GPU "))]


def trains_on_cpu(device: str) -> bool:
    """Whether `--device` means the CPU here: `cpu`, or `auto` with no CUDA GPU visible and no
    Apple GPU (an arm64 Mac is taken to have MPS)."""
    device = (device or "auto").lower()
    if device == "cpu":
        return True
    if device != "auto":
        return False
    apple_gpu = platform.system() == "Darwin" and platform.machine() == "arm64"
    return not visible_gpus() and not apple_gpu


def cpu_name() -> str:
    """The CPU's model and the cores this process may use: "AMD EPYC 7B13 (2 cores)"."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({usable_cores()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine() or 'cpu'} ({usable_cores()} cores)"
