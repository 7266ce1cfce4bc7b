"""The measuring steps of benchmarks/gpu.py: `elubench bench` in fp32 and bf16 with and without
--compile, quick-start matrices at --parallel K, the cost of --deterministic (peak memory:
gpu_memory.py). Each takes a `gpu_common.Step` and records its figures as it goes."""

from __future__ import annotations

import importlib.util
import itertools
import json
import statistics
import time

from gpu_common import SPECS, Step, cifar11, last_line, quickstart, records

BENCH_KEYS = (
    "elubench_images_per_second",
    "reference_images_per_second",
    "speedup",
    "peak_fraction",
    "peak_flops",
    "achieved_flops",
    "flops_per_image",
    "activation_time_ratio",
    "compile_seconds",
    "activation_kernel",
    "device_name",
    "dtype",
    "batch_size",
    "model_width",
)


def bench(step: Step, precision: str, compile_: bool) -> None:
    """`elubench bench` on the 11-layer CIFAR-100 net (synthetic images of its shape, as bench
    always uses) at full width: images/s of the engine (B) and of a plain loop (A), the
    fraction of the measured matmul peak, ELU's step time over ReLU's, compile seconds.
    Compiled, only ReLU: each activation is one more compilation (tens of seconds)."""
    args = [
        "bench",
        SPECS / "elu-cifar100-11.yaml",
        "--device",
        step.device,
        "--json",
        "-a",
        "relu" if compile_ else "elu",
        "--precision",
        precision,
        *step.size["bench"],
    ]
    if compile_:
        args.append("--compile")
    if importlib.util.find_spec("torchvision") is None:
        # bench's reference loop (A) is torchvision's DataLoader pipeline: without it, measure
        # the engine (B) alone rather than lose the step's figures
        result = engine_only(step, precision, compile_)
        step.set(reference="torchvision is not installed: engine B alone, no loop A")
    else:
        result = json.loads(step.elubench(*args).stdout)
    figures = {key: result.get(key) for key in BENCH_KEYS}
    step.set(figures=figures, bench=result)
    ratio = (result.get("activation_time_ratio") or {}).get("elu")
    parts = [f"B {result['elubench_images_per_second']:,.0f} img/s"]
    if result.get("reference_images_per_second"):
        parts.append(
            f"A {result['reference_images_per_second']:,.0f} img/s (B/A {result['speedup']:.2f})"
        )
    parts.append(
        f"{result['peak_fraction']:.0%} of the {result['peak_flops'] / 1e12:.1f} TFLOP/s peak"
    )
    if ratio:
        parts.append(f"ELU/ReLU step time {ratio:.3f}")
    if compile_ and result.get("compile_seconds"):
        parts.append(f"compile + warm-up {max(result['compile_seconds'].values()):.1f} s")
    step.set(headline=", ".join(parts))


def engine_only(step: Step, precision: str, compile_: bool) -> dict:
    """bench's engine (B) without its reference loop, through elubench's public pieces: the
    same model, step, synthetic data and matmul peak. Only where torchvision is missing."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from elubench.data.load import load_data
    from elubench.spec.data_section import Data, Synthetic
    from elubench.spec.loader import load_spec
    from elubench.spec.matrix import RunConfig
    from elubench.tools.bench import BENCH_IMAGES, measure_peak
    from elubench.training.runtime import configure, device_name, resolve_device, synchronize
    from elubench.training.steps import build_for_training, make_step

    options = dict(zip(step.size["bench"][::2], step.size["bench"][1::2]))
    overrides = [f"train.precision={precision}"]
    spec = load_spec(SPECS / "elu-cifar100-11.yaml", overrides, float(options.get("--width", 1)))
    device = resolve_device(step.device)
    configure(device)
    batch = int(options.get("--batch-size", spec.train.batch_size))
    synthetic = Synthetic(
        shape=spec.data.image_shape(),
        classes=spec.data.classes() or 10,
        train_size=BENCH_IMAGES,
        test_size=100,
    )
    data = load_data(
        Data(dataset="synthetic", augment=spec.data.augment, synthetic=synthetic), device=device
    )
    names = ["relu"] if compile_ else ["relu", "elu"]  # as bench's -a in this step

    def engine(name: str):
        cfg = RunConfig.new(
            spec_name=spec.name,
            spec_hash=spec.hash,
            activation=name,
            batchnorm=False,
            init="he",
            seed=0,
            config=name,
        )
        model, optimizer, _, memory_format = build_for_training(spec, cfg, device)
        return make_step(model, optimizer, spec.task, precision, memory_format, compile_)

    def timed(train_step, n: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        for x, y in itertools.islice(itertools.cycle(batches), n):
            loss = train_step(x, y)
        loss.item()  # one sync at the end: the time includes all queued work
        synchronize(device)
        return time.perf_counter() - start

    batches = list(data.epoch_batches(0, 0, batch))
    engines, compile_seconds = {}, {}
    for name in names:
        engines[name] = engine(name)
        compile_seconds[name] = timed(engines[name], int(options["--warmup"]))
    n = int(options["--steps"])
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(int(options["--repeats"])):  # interleaved, as bench does
        for name in names:
            rates[name].append(n * batch / timed(engines[name], n))
    median = {name: statistics.median(r) for name, r in rates.items()}
    counter = FlopCounterMode(display=False)
    with counter:
        engines["relu"](*batches[0])
    flops = counter.get_total_flops() // batch
    peak = measure_peak(device, torch.bfloat16 if precision == "bf16" else torch.float32)
    return {
        "elubench_images_per_second": median["relu"],
        "reference_images_per_second": None,
        "speedup": None,
        "flops_per_image": flops,
        "peak_flops": peak,
        "achieved_flops": flops * median["relu"],
        "peak_fraction": flops * median["relu"] / peak,
        "compile_seconds": compile_seconds if compile_ else None,
        "device_name": device_name(device),
        "dtype": precision,
        "batch_size": batch,
        "model_width": spec.model.width,
        "activation_time_ratio": {name: median["relu"] / median[name] for name in names},
    }


def parallel(step: Step) -> None:
    """The quick-start matrix at --parallel K: the whole command's wall time (what a user
    waits for, start-up included) and the span from the first run's start to the last
    run's end (the matrix's throughput once the workers are up)."""
    spec, data = quickstart(step)
    size = step.size
    extra = size["parallel_extra"] or ["--seeds", size["seeds"]]
    rows = []
    for k in size["parallel"]:
        results = step.work / f"parallel-{k}"
        start = time.perf_counter()
        proc = step.train(
            spec,
            results,
            "--parallel",
            k,
            *extra,
            check=False,  # one layout's failure is recorded; the next one still runs
        )
        wall = time.perf_counter() - start
        runs = records(results)
        ok = proc.returncode == 0 and bool(runs) and all(r["status"] == "ok" for r in runs)
        step.check(
            f"--parallel {k}: every run ok",
            ok,
            f"exit {proc.returncode}, {len(runs)} runs"
            + ("" if proc.returncode == 0 else f": {last_line(proc)}"),
        )
        if not runs:
            continue
        first = min(r["started_at"] for r in runs)
        last = max(r["started_at"] + r["wall_seconds"] for r in runs)
        rows.append(
            {
                "parallel": k,
                "runs": len(runs),
                "wall_seconds": wall,
                "runs_per_minute": 60 * len(runs) / wall,
                "span_seconds": last - first,
                "runs_per_minute_in_span": 60 * len(runs) / max(last - first, 1e-9),
                "all_ok": ok,
            }
        )
        step.set(data=data, layouts=rows)
    step.set(
        headline=f"quick start ({data}), runs/min at --parallel K: "
        + ", ".join(
            f"K={r['parallel']} {r['runs_per_minute']:.0f} ({r['runs']} runs)" for r in rows
        )
    )


def deterministic(step: Step) -> None:
    """The cost of --deterministic: the 11-layer net's training throughput with and without
    it, over the run's second half (from its metrics: cuDNN's autotuning and the first
    steps' allocations fall in the first half) and over the whole run (the record's)."""
    n = step.size["deterministic_iterations"]
    spec = cifar11(step, iterations=n, eval_every=n // 2)
    figures = {}
    for label, extra in (("default", []), ("deterministic", ["--deterministic"])):
        results = step.work / label
        start = time.perf_counter()
        step.train(
            spec,
            results,
            "-a",
            "relu",
            "--batchnorm",
            "off",
            "--seeds",
            "1",
            "--executor",
            "serial",
            *extra,
        )
        (record,) = records(results)
        lines = next(results.rglob("metrics.jsonl")).read_text().splitlines()
        seconds = {line["iteration"]: line["seconds"] for line in map(json.loads, lines)}
        # the line at n holds the training from n/2 to n and that last evaluation
        half = (n - n // 2) * record["batch_size"] / (seconds[n] - seconds[n // 2])
        figures[label] = {
            "command_seconds": time.perf_counter() - start,
            "images_per_second": record["images_per_second"],
            "second_half_images_per_second": half,
            "train_seconds": record["train_seconds"],
            "deterministic": record["deterministic"],
            "status": record["status"],
            "train_loss": record["train_loss"],
        }
        step.set(figures=figures)
    step.check(
        "the records say which",
        figures["deterministic"]["deterministic"] is True
        and figures["default"]["deterministic"] is False,
    )
    default, slow = figures["default"], figures["deterministic"]
    cost = default["second_half_images_per_second"] / slow["second_half_images_per_second"]
    step.set(
        step_time_ratio=cost,
        whole_run_ratio=default["images_per_second"] / slow["images_per_second"],
        headline=f"--deterministic: {cost:.2f}x the step time ({slow['second_half_images_per_second']:,.0f}"
        f" vs {default['second_half_images_per_second']:,.0f} img/s over iterations {n // 2}-{n} "
        "of the 11-layer net)",
    )
