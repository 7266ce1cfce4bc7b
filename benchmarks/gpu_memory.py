"""benchmarks/gpu.py's memory step: the peak memory of short runs, and of the activation
probe's pass alone, against elubench.net.memory's estimate."""

from __future__ import annotations

import gc
import math
import os
import resource
from pathlib import Path

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

    from elubench.activations.code import resolve_name
    from elubench.data.load import load_data
    from elubench.net.memory import FLOAT, PROCESS_BYTES, estimate_run, per_image
    from elubench.spec.layout import net_layout
    from elubench.spec.loader import load_spec
    from elubench.spec.matrix import RunConfig
    from elubench.spec.schema import config_label
    from elubench.training.runtime import configure, resolve_device
    from elubench.training.steps import activation_stats
    from elubench.training.trainer import LoopOptions, Trainer

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
    rows = []
    for path, name, bn, chosen in cases:
        sets = [f"train.iterations={n}", f"train.eval_every={n // 2}", f"train.precision={chosen}"]
        spec = load_spec(path, sets)
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
        trainer = Trainer(
            spec, cfg, data, _Sink(), LoopOptions(device=device, checkpoint_seconds=math.inf)
        )
        trainer.train()
        measured = meter.peak() - base
        before = meter.reset()
        activation_stats(trainer.model, trainer.probe, chosen, trainer.memory_format)
        probe_measured = meter.peak() - before
        probe = len(trainer.probe)
        if device.type == "cuda":
            expected, probe_expected = (
                estimate.device_total,
                probe * (floats.inference - floats.workspace) * FLOAT,
            )
        else:
            expected, probe_expected = (
                estimate.cpu_total - PROCESS_BYTES,
                probe * floats.inference * FLOAT,
            )
        rows.append(
            {
                "spec": spec.name,
                "config": label,
                "precision": chosen,
                "batch_size": spec.train.batch_size,
                "measured_peak_bytes": measured,
                "estimate_bytes": expected,
                "estimate_over_measured": expected / measured if measured > 0 else None,
                "estimate_parts": estimate.to_dict(),
                "probe_images": probe,
                "probe_measured_bytes": probe_measured,
                "probe_estimate_bytes": probe_expected,
                "reserved_peak_bytes": torch.cuda.max_memory_reserved()
                if device.type == "cuda"
                else None,
            }
        )
        meter_name = "CUDA allocator" if device.type == "cuda" else "process RSS, dry run"
        step.set(cases=rows, meter=meter_name)
        del trainer, data
    ratios = [r["estimate_over_measured"] or 0 for r in rows]
    probes = [r["probe_measured_bytes"] / max(r["probe_estimate_bytes"], 1) for r in rows]
    step.set(
        headline=f"{meter_name}: estimate / measured peak {min(ratios):.2f}-{max(ratios):.2f} "
        f"over {len(rows)} short runs ({sum(r >= 1 for r in ratios)} covered); the probe's pass "
        f"measured / estimated {min(probes):.2f}-{max(probes):.2f}"
    )
