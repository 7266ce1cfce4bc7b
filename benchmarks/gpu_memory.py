"""benchmarks/gpu.py's memory step: the peak memory of short runs, and of the activation
probe's pass alone, against elubench.net.memory's estimate."""

from __future__ import annotations

import gc
import math
import os
import resource
from pathlib import Path
from typing import Any

from gpu_common import Step, cifar11, quickstart


class _Sink:
    """A run's metrics and checkpoints kept in memory (the trainer's RunSink)."""

    def __init__(self):
        self.lines: list[dict] = []

    def metrics(self):
        return self.lines

    def truncate_metrics(self, last_iteration):
        self.lines = [line for line in self.lines if line["iteration"] <= last_iteration]

    def append_metrics(self, line):
        self.lines.append(line)

    def load_checkpoint(self):
        return None

    def save_checkpoint(self, payload):
        pass


class _Meter:
    """Peak memory since the last reset: the CUDA caching allocator's on a GPU; on a CPU (the
    dry run) the process's resident high-water mark (Linux: /proc/self/clear_refs)."""

    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device.type == "cuda"

    def reset(self) -> int:
        if self.cuda:
            gc.collect()  # the previous case's tensors, before the cache is emptied
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
            return self.torch.cuda.memory_allocated()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return self._status("VmRSS")
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def peak(self) -> int:
        if self.cuda:
            self.torch.cuda.synchronize()
            return self.torch.cuda.max_memory_allocated()
        try:
            return self._status("VmHWM")
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    @staticmethod
    def _status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise OSError(field)


def memory(step: Step) -> None:
    """Peak memory of whole (short) runs against elubench.net.memory's estimate, and of the
    activation probe's pass alone against its part of the estimate. On a GPU the estimate's
    device_total (data, weights with gradients and momentum, activations, cuDNN margin);
    on a CPU (dry run) the process's growth against cpu_total less the process itself."""
    import torch

    from elubench.spec.loader import load_spec
    from elubench.spec.schema import config_label
    from elubench.training.runtime import configure, resolve_device

    if step.device == "cpu":  # the dry run: glibc keeping freed memory would hide each peak
        os.environ["ELUBENCH_KEEP_FREED_MEMORY"] = "0"
    device = resolve_device(step.device)
    configure(device)
    meter = _Meter(torch, device)
    n = step.size["memory_iterations"]
    quick, _ = quickstart(step)
    deep = cifar11(step)
    cases = [
        (quick, "elu", True, "fp32"),
        (deep, "relu", False, "fp32"),
        (deep, "elu", True, "fp32"),
        (deep, "mish", True, "fp32"),
        (deep, "prelu", False, "fp32"),
        (deep, "elu", True, "bf16"),
    ]
    if step.dry_run:  # the code paths without the repeats: bf16 convolutions are slow on CPUs
        cases = cases[:2]
    from elubench.data.load import load_data

    # the ZCA fit's transient memory is the preprocessing's, not a run's: fit (and cache) first
    load_data(load_spec(deep).data, device=device)
    rows: list[dict[str, Any]] = []
    meter_name = "CUDA allocator" if device.type == "cuda" else "process RSS, dry run"
    for path, name, bn, chosen in cases:
        sets = [f"train.iterations={n}", f"train.eval_every={n // 2}", f"train.precision={chosen}"]
        try:  # one case's failure (an out-of-memory, say) is a row; the next case runs
            rows.append(_case(torch, meter, device, load_spec(path, sets), name, bn))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            rows.append({"config": config_label(name, bn), "precision": chosen, "error": error})
        step.set(cases=rows, meter=meter_name)
    failed = [f"{r['config']} {r['precision']}: {r['error']}" for r in rows if "error" in r]
    step.check("every case measured", not failed, failed)
    rows = [r for r in rows if "error" not in r]
    ratios = [r["estimate_over_measured"] or 0 for r in rows]
    probes = [r["probe_measured_bytes"] / max(r["probe_estimate_bytes"], 1) for r in rows]
    if not rows:
        return step.set(headline="no case measured")
    step.set(
        headline=f"{meter_name}: estimate / measured peak {min(ratios):.2f}-{max(ratios):.2f} "
        f"over {len(rows)} short runs ({sum(r >= 1 for r in ratios)} covered); the probe's pass "
        f"measured / estimated {min(probes):.2f}-{max(probes):.2f}"
    )


def _case(torch, meter, device, spec, name: str, bn: bool) -> dict[str, Any]:
    """One short run of `spec` with this activation and BN: its peak against the estimate,
    then the probe's pass alone against the probe's part of it."""
    from elubench.activations.code import resolve_name
    from elubench.data.load import load_data
    from elubench.net.memory import FLOAT, PROCESS_BYTES, estimate_run, per_image
    from elubench.spec.layout import net_layout
    from elubench.spec.matrix import RunConfig
    from elubench.spec.schema import config_label
    from elubench.training.steps import activation_stats
    from elubench.training.trainer import LoopOptions, Trainer

    act = resolve_name(name, spec)
    estimate = estimate_run(spec, act, bn)
    floats = per_image(net_layout(spec, act, bn), act)
    label = config_label(str(act), bn)
    cfg = RunConfig.new(
        spec_name=spec.name,
        spec_hash=spec.hash,
        activation=str(act),
        batchnorm=bn,
        init="he",
        seed=0,
        config=label,
    )
    base = meter.reset()
    data = load_data(spec.data, device=device)
    options = LoopOptions(device=device, checkpoint_seconds=math.inf)
    trainer = Trainer(spec, cfg, data, _Sink(), options)
    trainer.train()
    measured = meter.peak() - base
    reserved = torch.cuda.max_memory_reserved() if device.type == "cuda" else None
    before = meter.reset()
    activation_stats(trainer.model, trainer.probe, spec.train.precision, trainer.memory_format)
    probe_measured = meter.peak() - before
    probe = len(trainer.probe)
    if device.type == "cuda":  # net.memory: on a GPU the pass holds no GEMM workspace
        expected = estimate.device_total
        probe_expected = probe * (floats.inference - floats.workspace) * FLOAT
    else:
        expected = estimate.cpu_total - PROCESS_BYTES
        probe_expected = probe * floats.inference * FLOAT
    return {
        "spec": spec.name,
        "config": label,
        "precision": spec.train.precision,
        "batch_size": spec.train.batch_size,
        "measured_peak_bytes": measured,
        "reserved_peak_bytes": reserved,
        "estimate_bytes": expected,
        "estimate_over_measured": expected / measured if measured > 0 else None,
        "estimate_parts": estimate.to_dict(),
        "probe_images": probe,
        "probe_measured_bytes": probe_measured,
        "probe_estimate_bytes": probe_expected,
    }
