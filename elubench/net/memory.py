"""What one run needs, estimated from the net's layout before anything is allocated; and the check that
refuses a run that cannot fit.

Pure Python at import (no torch): `elubench show` prints the estimate, and `run` checks it
before the executor or the dry run touch torch. torch is imported only to ask a CUDA device
its free memory.

The estimate, for one run in fp32 (bf16 autocast keeps less; this is the upper figure). It is
an estimate: PyTorch, oneDNN/cuDNN and the C allocator decide the real figure, and it is
calibrated against measurements on one machine (below), not derived from them.

- weights: parameters × 4 bytes × 3 (the weights, their gradients, SGD's momentum buffers);
- a training step, per image of the batch (`PerImage.step`): what autograd keeps, read off the
  layout row by row: a conv or FC layer's output; with BN, BN's output too; an activation that
  is not in place (mish, gelu, prelu, ... all but relu, elu, lrelu, selu, celu) its output
  besides its input; a stochastic one (rrelu) its noise too; max pooling its output and int64 indices (3 floats' worth); average,
  SPP and global pooling their output; dropout its output and a byte mask; the input batch.
  Backward adds the gradients of two of the largest layer outputs, and on a CPU the unfolded
  input of the largest conv (C_in·k²·H·W, a GEMM convolution's buffer). × ACTIVATION_FACTOR;
- evaluations (no_grad, `PerImage.inference`): the input, three of the largest layer outputs
  and the GEMM buffer per image, for the probe (probe_size images in one pass) plus an
  evaluation batch (on a CPU the C allocator keeps what the first freed, so they add up;
  × INFERENCE_FACTOR); on a GPU the larger of the two, without the GEMM buffer. The run's
  activation figure is the larger of the step's and the evaluations';
- the dataset held on the device (digits, mnist, cifar, synthetic): train images padded for
  the random crop plus test images, 4 bytes a value; imagefolder streams its images, so only
  its loader's prefetched batches (workers × 2 batches) count, on the host;
- on a CPU, the process itself (PROCESS_BYTES: Python with torch and elubench loaded, 518 MiB
  measured) and the copies loading makes (HOST_DATA_COPIES: the set and its copies while it
  is generated or read and preprocessed; measured 4.0-5.2x the set when loading alone);
- on a GPU, GPU_WORKSPACE_BYTES for cuDNN workspaces and the caching allocator's slack: a
  margin, not a measurement (no GPU was at hand).

Calibration, once, on the project's development machine (2-core AMD EPYC, 23 GiB, Linux,
torch 2.14.1 on the CPU, one thread), with `benchmarks/memory_calibration.py`:

- a training step, in a fresh process: build the net and optimizer as `train` does, reset the
  peak-RSS mark, take one `train.make_step` and read the peak (VmHWM); less the gradients and
  momentum the step creates. 14 cases (quickstart at batch 1024, elu-cifar100-11 at 32-64,
  he-init-30layer at 32, elu-cifar10-18 at 16, mnist-mlp-8x128 at 4096, mnist-autoencoder at
  1024; elu, relu, mish; with and without BN): measured / row sum 0.53-1.21, median 0.86.
  ACTIVATION_FACTOR = 1.25 puts the estimate above every case, within 2.4x of each;
- whole runs (`elubench run --executor serial`, 4 iterations, 3 evaluations, synthetic data,
  peak RSS of the process; `--runs`), two passes of five nets: elu-cifar100-11 (batch 32 +
  BN; batch 100), he-init-30layer (batch 32), the 8x128 MLP on 60,000 synthetic 28x28 images
  (batch 64) and a small mish + BN net on 20,000 images (batch 256). Estimate / measured peak
  was 1.03-1.08, 1.25-1.26, 1.14-1.55, 0.63-0.75 and 0.77-1.08: the same run's peak varied by
  up to 40 % between passes (the C allocator keeps freed memory or not; the synthetic set is
  generated or read from its cache), and the data-heavy runs peaked above the estimate, as
  generating the set and writing its cache held up to 8 copies of it (HOST_DATA_COPIES = 5,
  INFERENCE_FACTOR = 0.6). So on a CPU the estimate is good to within about 1.6x either way;
  the check is meant to refuse what clearly cannot fit, and `--no-memory-check` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from elubench.core.errors import ResourceError
from elubench.spec.layout import net_layout

FLOAT = 4
PROCESS_BYTES = 512 * 2**20  # Python with torch and elubench loaded (measured 518 MiB)
GPU_WORKSPACE_BYTES = 512 * 2**20  # cuDNN workspaces and the caching allocator's slack
ACTIVATION_FACTOR = 1.25  # training step: measured 0.53-1.21 of the row sum (docstring)
INFERENCE_FACTOR = 0.6  # an evaluation batch and the probe: whole runs (docstring)
HOST_DATA_COPIES = 5  # CPU: the resident set and the copies loading makes (docstring)


def _prod(shape) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


@dataclass(frozen=True)
class RunEstimate:
    """Bytes one run needs (see the module docstring for what each part counts)."""

    params: int
    weights: int  # weights + gradients + momentum
    activations: int  # CPU: the larger of a training step's and the evaluations'
    device_activations: int  # GPU: the same without GEMM workspaces, one pass at a time
    data: int  # the dataset held on the device
    host: int  # CPU, beside the above: the process, loading copies, loaders

    def to_dict(self) -> dict:
        """`show --json`'s "memory": every part and both totals, in bytes."""
        return {
            "params": self.params,
            "weights_bytes": self.weights,
            "activations_bytes": self.activations,
            "gpu_activations_bytes": self.device_activations,
            "data_bytes": self.data,
            "cpu_total_bytes": self.cpu_total,
            "gpu_total_bytes": self.device_total,
        }

    @property
    def device_total(self) -> int:
        """On a GPU: what the device must hold."""
        return self.weights + self.device_activations + self.data + GPU_WORKSPACE_BYTES

    @property
    def cpu_total(self) -> int:
        """On a CPU: everything in one process's memory."""
        return self.weights + self.activations + self.data + self.host


@dataclass(frozen=True)
class PerImage:
    """Floats per image, read off the layout (see the module docstring)."""

    saved: int  # what autograd keeps over a training step, the input batch included
    largest: int  # the largest layer output
    workspace: int  # the largest conv's unfolded input (C_in·k²·H_out·W_out), a GEMM conv's buffer
    input: int

    @property
    def step(self) -> int:
        """A training step: what autograd keeps, two gradients in flight, a GEMM workspace."""
        return self.saved + 2 * self.largest + self.workspace

    @property
    def inference(self) -> int:
        """A no_grad pass: the input, about three layer outputs alive at once, a workspace."""
        return self.input + 3 * self.largest + self.workspace


def per_image(layout, activation) -> PerImage:
    in_place = activation.in_place  # built to write into its input (activations.registry)
    # a stochastic one (RReLU) keeps its noise, one float per element, for the backward pass
    noise = int(activation.stochastic)
    first = _prod(layout.input_shape)
    saved, largest, workspace = first, 0, 0
    for row in layout.rows:
        n = _prod(row.out_shape)
        largest = max(largest, n)
        if row.kind == "conv" and row.kernel > 1:
            workspace = max(workspace, row.in_shape[0] * row.kernel**2 * (n // row.units))
        if row.kind in ("conv", "fc"):
            acts = row.activation is not None
            saved += n * (1 + row.batchnorm + (acts and not in_place) + acts * noise)
        elif row.kind == "maxpool":
            saved += 3 * n
        elif row.kind == "dropout":
            saved += n + (n + 3) // 4
        elif row.kind in ("avgpool", "spp", "gap"):
            saved += n
    return PerImage(saved, largest, workspace, first)


def estimate_run(spec, activation, batchnorm: bool) -> RunEstimate:
    """The memory one run of `spec` with this activation and BN setting needs, from its layout."""
    layout = net_layout(spec, activation, batchnorm)
    train, data = spec.train, spec.data
    sizes = data.sizes()
    batch = min(train.batch_size, sizes[0]) if sizes else train.batch_size
    probe = min(train.probe_size, sizes[0]) if sizes else train.probe_size
    evaluation = min(max(2 * batch, 256), 1000)  # train.eval_batch_size
    if sizes:
        evaluation = min(evaluation, sizes[1])
    floats = per_image(layout, activation)
    cpu = max(
        ACTIVATION_FACTOR * batch * floats.step,
        INFERENCE_FACTOR * (probe + evaluation) * floats.inference,
    )
    gpu = max(
        batch * (floats.step - floats.workspace),
        max(probe, evaluation) * (floats.inference - floats.workspace),
    )
    c, h, w = data.image_shape()
    pad = data.augment.pad
    if sizes is None:  # imagefolder: streamed; the loader's prefetched batches, on the host
        stored, loaders = 0, data.imagefolder.workers * 2 * batch * c * h * w * FLOAT
    else:
        stored = (
            sizes[0] * c * (h + 2 * pad) * (w + 2 * pad) + sizes[1] * _prod(data.input_shape())
        ) * FLOAT
        loaders = 0
    return RunEstimate(
        params=layout.total_params,
        weights=layout.total_params * FLOAT * 3,
        activations=int(cpu * FLOAT),
        device_activations=int(gpu * FLOAT),
        data=stored,
        host=PROCESS_BYTES + (HOST_DATA_COPIES - 1) * stored + loaders,
    )


def run_memory_bytes(spec, activation, batchnorm: bool = True) -> int:
    """One CPU run's resident memory, estimated (the process, the dataset and its loading copies,
    weights with gradients and momentum, a batch's activations). `run` uses it to keep the runs
    it trains at once within the memory available."""
    return estimate_run(spec, activation, batchnorm).cpu_total


def human_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def largest_estimate(spec, configs) -> RunEstimate:
    """The largest estimate over the configurations to train (BN and PReLU add memory)."""
    from elubench.activations.code import activation_for

    kinds = {(cfg.activation, cfg.batchnorm): cfg for cfg in configs}
    estimates = [
        estimate_run(spec, activation_for(kinds[key], spec), key[1]) for key in sorted(kinds)
    ]
    return max(estimates, key=lambda e: (e.cpu_total, e.device_total))


def check_fits(spec, configs, device: str, runs_at_once: int | None, *, skip: bool = False) -> None:
    """Refuse (ResourceError) runs that cannot fit in the memory they would share.

    CPU: the memory available now (machine.available_memory) divided by the runs that train at
    once must hold one run's cpu_total. CUDA: the device's free memory (torch.cuda.mem_get_info)
    divided by the runs sharing that GPU must hold device_total. Nothing is checked when `skip`
    (--no-memory-check), when nothing is to train, when the runs train elsewhere (Ray, Slurm:
    runs_at_once is None), on MPS, or where the memory cannot be read.
    """
    if skip or not configs or runs_at_once is None:
        return
    from elubench.core.machine import available_memory, trains_on_cpu, visible_gpus

    device = (device or "auto").lower()
    if trains_on_cpu(device):
        free, what, sharing, on_gpu = (
            available_memory(),
            "memory available on this machine",
            runs_at_once,
            False,
        )
    elif device.split(":")[0] in ("auto", "cuda"):
        import torch

        if not torch.cuda.is_available():
            return  # `run` says so itself (or auto falls back to the CPU there)
        index = device.split(":")[1] if ":" in device else "0"
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            return  # `run` names the missing GPU
        free = torch.cuda.mem_get_info(int(index))[0]
        what, on_gpu = f"free memory of GPU {index}", True
        sharing = -(-runs_at_once // (1 if ":" in device else max(1, len(visible_gpus()))))
    else:
        return
    estimate = largest_estimate(spec, configs)
    need = estimate.device_total if on_gpu else estimate.cpu_total
    if free is None or need * sharing <= free:
        return
    share = (
        f"{human_bytes(free)}, for {sharing} runs at once: {human_bytes(free // sharing)} each"
        if sharing > 1
        else human_bytes(free)
    )
    activations = estimate.device_activations if on_gpu else estimate.activations
    raise ResourceError(
        f"one run needs about {human_bytes(need)} (weights, gradients and momentum "
        f"{human_bytes(estimate.weights)}, activations {human_bytes(activations)}, dataset "
        f"{human_bytes(estimate.data)}) but the {what} is {share}",
        where=f"--device {device}",
        hint=("fewer runs at once (--parallel), " if sharing > 1 else "")
        + "a smaller train.batch_size or model.width; or --no-memory-check to train anyway",
    )
