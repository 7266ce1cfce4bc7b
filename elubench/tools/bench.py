"""`elubench bench`: elubench's training engine against a plain PyTorch loop, in one sitting.

A, the reference, is what a careful user writes by hand: a torchvision-style Dataset of images
with per-sample transforms (random crop with padding, flip, to-tensor, normalize) feeding a
DataLoader, the model in the default NCHW layout, eager mode, `loss.item()` every step.
B is elubench's engine exactly as `elubench run` trains: the data set resident on the device,
batches cropped and flipped there, channels_last, no host sync per step.

A and B (its ReLU run; B also times each requested activation) train the same net from the
same initial weights with the same batch size, on images of the spec's shape and the same count
(BENCH_IMAGES) but not the same images: A on uniform random uint8 noise images, B on
elubench's synthetic images (the `synthetic` dataset); speed does not depend on the pixel
values. Measurements interleave A and B (A B A B ...), each after warm-up steps that
are not counted, so drifts of the machine hit both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from elubench.activations.code import resolve_name
from elubench.activations.registry import Activation
from elubench.data.load import load_data
from elubench.spec.data_section import Data, Synthetic
from elubench.spec.layout import net_layout
from elubench.spec.matrix import RunConfig
from elubench.training.runtime import configure, device_name, synchronize
from elubench.training.steps import build_for_training, make_step

BENCH_IMAGES = 2000  # synthetic training images: enough for many distinct batches


@dataclass
class Timing:
    images_per_second: list[float]

    def summary(self) -> dict:
        values = self.images_per_second
        return {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "repeats": len(values),
        }


def _config(spec, activation) -> RunConfig:
    """A run of `activation` (a name, or a resolved Activation: a custom one carries its
    reference, which build_for_training resolves)."""
    if isinstance(activation, str):
        activation = resolve_name(activation, spec)
    label = str(activation)
    return RunConfig.new(
        spec_name=spec.name,
        spec_hash=spec.hash,
        activation=label,
        batchnorm=False,
        init=spec.compare.init_list()[0],
        seed=0,
        config=label,
        activation_ref=activation.ref,
    )


def _synthetic_data(spec) -> Data:
    """The spec's data settings on synthetic images of its shape (no download needed)."""
    shape = spec.data.image_shape()
    return Data(
        dataset="synthetic",
        preprocess="standardize",
        augment=spec.data.augment,
        synthetic=Synthetic(
            shape=shape, classes=spec.data.classes() or 10, train_size=BENCH_IMAGES, test_size=100
        ),
    )


class _ImageDataset(torch.utils.data.Dataset):
    """torchvision-style: uint8 H×W×C images, a PIL image per sample, transforms per sample."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from PIL import Image

        image = self.images[index]
        picture = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        return self.transform(picture), int(self.labels[index])


def _reference_loader(spec, batch_size: int, workers: int):
    from torchvision import transforms as T

    c, h, w = spec.data.image_shape()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (BENCH_IMAGES, h, w, c), dtype=np.uint8)
    labels = rng.integers(0, spec.data.classes() or 10, BENCH_IMAGES)
    steps = []
    augment = spec.data.augment
    if augment.crop:
        steps.append(T.RandomCrop(augment.crop, padding=augment.pad))
    if augment.hflip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize([0.5] * c, [0.25] * c)]
    dataset = _ImageDataset(images, labels, T.Compose(steps))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def _forever(loader):
    while True:
        yield from loader


class _Reference:
    """Loop A: DataLoader batches, NCHW, eager, loss.item() each step."""

    def __init__(self, spec, device, batch_size, workers):
        model, _, _, _ = build_for_training(spec, _config(spec, "relu"), device)
        self.model = model.to(memory_format=torch.contiguous_format)
        opt = spec.train.optimizer
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=spec.train.lr_at(0),
            momentum=opt.momentum,
            weight_decay=opt.weight_decay,
        )
        self.batches = _forever(_reference_loader(spec, batch_size, workers))
        self.device, self.task = device, spec.task

    def steps(self, n: int) -> int:
        images = 0
        for _ in range(n):
            x, y = next(self.batches)
            x, y = x.to(self.device), y.to(self.device)
            out = self.model(x)
            loss = (
                torch.nn.functional.mse_loss(out, x)
                if self.task == "autoencoder"
                else torch.nn.functional.cross_entropy(out, y)
            )
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss.item()
            images += len(x)
        return images


class _Engine:
    """Loop B: elubench's trainer step on device-resident data."""

    def __init__(self, spec, activation, device, batch_size, data, compile: bool):
        self.model, self.optimizer, _, memory_format = build_for_training(
            spec, _config(spec, activation), device
        )
        self.step = make_step(
            self.model, self.optimizer, spec.task, spec.train.precision, memory_format, compile
        )
        self.data, self.batch_size, self.device = data, batch_size, device
        self.epoch = 0
        self.batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = iter(())

    def _next(self):
        for batch in self.batches:
            return batch
        self.epoch += 1
        self.batches = self.data.epoch_batches(self.epoch, 0, self.batch_size)
        return next(self.batches)

    def steps(self, n: int) -> int:
        loss = None
        for _ in range(n):
            x, y = self._next()
            loss = self.step(x, y)
        assert loss is not None, n  # n >= 1: bench's --steps and --warmup are at least 1
        loss.item()  # one sync at the end: the time includes all queued work
        return n * self.batch_size

    def flops_per_image(self) -> int:
        """Training FLOPs (forward + backward) of one step per image, by torch's counter."""
        x, y = self._next()
        counter = FlopCounterMode(display=False)
        with counter:
            self.step(x, y)
        return counter.get_total_flops() // len(x)


def _timed(loop, steps: int, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    images = loop.steps(steps)
    synchronize(device)
    return images / (time.perf_counter() - start)


PEAK_SIZES = {"cpu": (1024, 2048, 3072), "other": (4096, 8192)}


def measure_peak(device, dtype=torch.float32, repeats: int = 3) -> float:
    """FLOP/s of large matmuls in the training dtype with every thread: the best of several
    sizes and repeats, so one slow moment of a shared machine does not set the peak."""
    best = 0.0
    for n in PEAK_SIZES["cpu" if device.type == "cpu" else "other"]:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for i in range(repeats + 1):
            synchronize(device)
            start = time.perf_counter()
            a @ b
            synchronize(device)
            if i:  # the first of each size is warm-up
                best = max(best, 2 * n**3 / (time.perf_counter() - start))
        del a, b
    return best


def activation_costs(
    spec, activations: list, device, batch_size: int, repeats: int = 5, inner: int = 3
) -> dict:
    """Forward + backward time of each activation alone, summed over the spec's hidden layer
    shapes (one training step's worth), in microseconds: the median over `repeats` of the time
    of `act(x.clone())` and its backward, less the same with the identity (the clone and the
    backward's plumbing every activation pays). Interleaved over activations, like the rest."""
    from elubench.activations.kernels import ExpLinearCPU
    from elubench.activations.modules import ExpLinear

    parsed = {
        str(a): a for a in (resolve_name(a, spec) if isinstance(a, str) else a for a in activations)
    }
    layout = net_layout(spec, next(iter(parsed.values())), False)
    shapes = [(batch_size, *shape) for shape in layout.hidden_shapes()]
    inputs = [torch.randn(shape, device=device, requires_grad=True) for shape in shapes]
    grads = [torch.randn(shape, device=device) for shape in shapes]
    modules = {
        name: [act.create(shape[1]).to(device) for shape in shapes] for name, act in parsed.items()
    }
    if (
        device.type == "cpu"
    ):  # the exponential activations with each kernel (elubench.activations.kernels)
        for name in list(modules):
            first = modules[name][0]
            if isinstance(first, ExpLinear):
                coefficients = (first.alpha, first.scale, first.input_scale)
                modules[f"{name} [torch kernel]"] = [
                    lambda x, c=coefficients: torch.ops.aten.elu_(x, *c) for _ in shapes
                ]
                modules[f"{name} [elubench kernel]"] = [
                    lambda x, c=coefficients: ExpLinearCPU.apply(x, *c, True) for _ in shapes
                ]
    modules["identity"] = [torch.nn.Identity() for _ in shapes]

    def once(layers) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(inner):
            for layer, x, g in zip(layers, inputs, grads):
                layer(x.clone()).backward(g)
        synchronize(device)
        return (time.perf_counter() - start) / inner

    times: dict[str, list[float]] = {name: [] for name in modules}
    for layers in modules.values():
        once(layers)  # warm-up
    for _ in range(repeats):
        for name, layers in modules.items():
            times[name].append(once(layers))
    base = statistics.median(times.pop("identity"))
    return {name: max(statistics.median(t) - base, 0.0) * 1e6 for name, t in times.items()}


def _kernel(activation, device) -> str:
    module = activation.create(1)
    return module.implementation(device) if hasattr(module, "implementation") else "torch"


def run_bench(
    spec,
    *,
    device: torch.device,
    activations: list[str],
    batch_size: int | None = None,
    steps: int = 20,
    warmup: int = 5,
    repeats: int = 3,
    compile: bool = False,
    reference_workers: int = 2,
    progress=lambda text: None,
) -> dict:
    """Measure A and B (and each activation's engine step time); return a plain dict."""
    configure(device)
    batch_size = batch_size or spec.train.batch_size
    data = load_data(_synthetic_data(spec), device=device)

    progress("building the reference loop (A)")
    reference = _Reference(spec, device, batch_size, reference_workers)
    engines: dict[str, _Engine] = {}
    compile_seconds: dict[str, float] = {}
    # label -> Activation: a custom activation is keyed by its label in tables
    resolved: dict[str, Activation] = {}
    for name in ["relu", *activations]:
        activation = resolve_name(name, spec)
        resolved.setdefault(str(activation), activation)
    for label in resolved:
        progress(f"building the engine (B) for {label}")
        engines[label] = _Engine(spec, resolved[label], device, batch_size, data, compile)
        start = time.perf_counter()
        engines[label].steps(warmup)  # includes compilation when compiling
        compile_seconds[label] = time.perf_counter() - start
    reference.steps(warmup)

    dtype = torch.bfloat16 if spec.train.precision == "bf16" else torch.float32
    progress("measuring the matmul peak")
    peak_before = measure_peak(device, dtype)  # again after the loops: the best of both sets it
    timings = {"reference": Timing([]), **{a: Timing([]) for a in engines}}
    for r in range(repeats):
        progress(f"repeat {r + 1}/{repeats}")
        timings["reference"].images_per_second.append(_timed(reference, steps, device))
        for label, engine in engines.items():
            timings[label].images_per_second.append(_timed(engine, steps, device))

    flops = engines["relu"].flops_per_image()
    dtype = torch.bfloat16 if spec.train.precision == "bf16" else torch.float32
    progress("measuring the matmul peak and each activation alone")
    peak = max(peak_before, measure_peak(device, dtype))
    costs = activation_costs(spec, list(resolved.values()), device, batch_size)
    a = timings["reference"].summary()
    b = timings["relu"].summary()
    achieved = flops * b["median"]
    return {
        "spec_name": spec.name,
        "model_width": spec.model.width,
        "batch_size": batch_size,
        "steps": steps,
        "warmup": warmup,
        "repeats": repeats,
        "reference_images_per_second": a["median"],
        "elubench_images_per_second": b["median"],
        "reference": a,
        "elubench": b,
        "speedup": b["median"] / a["median"],
        "flops_per_image": flops,
        "peak_flops": peak,
        "achieved_flops": achieved,
        "peak_fraction": achieved / peak,
        "activation_time_ratio": {
            act: timings["relu"].summary()["median"] / t.summary()["median"]
            for act, t in timings.items()
            if act != "reference"
        },
        "activation_images_per_second": {
            act: t.summary() for act, t in timings.items() if act != "reference"
        },
        "activation_microseconds": costs,
        "activation_cost_vs_relu": {
            act: (us / costs["relu"] if costs["relu"] > 0 else None) for act, us in costs.items()
        },
        "activation_kernel": {
            act: _kernel(resolved[act], device) for act in costs if act in resolved
        },
        "compile": compile,
        "compile_seconds": compile_seconds if compile else None,
        "reference_workers": reference_workers,
        "device": str(device),
        "device_name": device_name(device),
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
