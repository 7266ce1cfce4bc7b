"""One training run: paired init, the SGD loop, evaluations, checkpoints and the record.

The hot loop never waits for the device: the loss of each step goes into a device-side window
that is read once every `sync_every` steps (for divergence checks and progress) and at
evaluations. Data batches come from `data.epoch_batches`, already on the device.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

from elubench.activations import parse_activation
from elubench.errors import StoreError
from elubench.grid import RunConfig
from elubench.init import derive_seed, init_hash
from elubench.models import Net, build_model, weight_decay_groups
from elubench.runtime import device_name, synchronize, versions
from elubench.store import RunDir, write_bytes_atomic


class Stopped(Exception):
    """The run was asked to stop (Ctrl-C); its checkpoint is saved."""


@dataclass
class RunOptions:
    device: torch.device
    checkpoint_seconds: float = 300.0  # at most this long between checkpoints (at evaluations)
    compile: bool = False
    sync_every: int = 100              # steps between host reads of the loss window
    should_stop: Callable[[], bool] = lambda: False
    progress: Callable[[dict], None] | None = None


@dataclass
class _State:
    """What a checkpoint must carry besides the model and optimizer to resume exactly."""

    iteration: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    wall_before: float = 0.0          # wall time of earlier attempts (resumed runs)
    images: int = 0
    window_loss_sum: float = 0.0      # training loss since the last evaluation
    window_loss_steps: int = 0
    resumed_at: list[int] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _loss(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor, task: str, reduction="mean"):
    out = out.float()
    if task == "autoencoder":
        per_image = F.mse_loss(out, x.float(), reduction="none").flatten(1).mean(1)
        return per_image.mean() if reduction == "mean" else per_image.sum()
    return F.cross_entropy(out, y, reduction=reduction)


@torch.no_grad()
def evaluate(model, data, task: str, batch_size: int, precision: str, memory_format) -> dict:
    """Test error and loss over the whole test set; one host sync at the end."""
    model.eval()
    device = next(model.parameters()).device
    errors = torch.zeros((), dtype=torch.long, device=device)
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    for x, y in data.test_batches(batch_size):
        x = x.contiguous(memory_format=memory_format)
        with _autocast(device, precision):
            out = model(x)
        loss_sum += _loss(out, x, y, task, reduction="sum")
        if task == "classification":
            errors += (out.argmax(1) != y).sum()
    n = data.test_size
    loss = loss_sum.item() / n
    if task == "autoencoder":
        return {"test_errors": None, "test_error": loss, "test_loss": loss, "test_size": n}
    count = int(errors.item())
    return {"test_errors": count, "test_error": count / n, "test_loss": loss, "test_size": n}


@torch.no_grad()
def activation_stats(model: Net, probe: torch.Tensor, precision: str, memory_format) -> dict:
    """Per hidden layer: the mean and the median over units of each unit's mean activation on
    the probe images (the ELU paper's Figure 2, "bias shift")."""
    model.eval()
    means: list[torch.Tensor] = []

    def hook(module, inputs, output):
        dims = (0, 2, 3) if output.dim() == 4 else (0,)
        means.append(output.float().mean(dim=dims))

    handles = [getattr(model.body, name).register_forward_hook(hook) for name in model.hidden]
    try:
        with _autocast(probe.device, precision):
            model(probe.contiguous(memory_format=memory_format))
    finally:
        for handle in handles:
            handle.remove()
    summary = torch.stack([torch.stack([m.mean(), m.median()]) for m in means]).tolist()
    return {name.removesuffix("_act"): {"mean": mean, "median": median}
            for name, (mean, median) in zip(model.hidden, summary)}


def prelu_slopes(model: Net) -> dict:
    """Learned PReLU slopes per layer (mean, min, max over channels)."""
    out = {}
    for name, module in model.body.named_children():
        if isinstance(module, torch.nn.PReLU):
            w = module.weight.detach().float()
            out[name.removesuffix("_act")] = {"mean": w.mean().item(), "min": w.min().item(),
                                              "max": w.max().item()}
    return out


def _save_checkpoint(run_dir: RunDir, cfg: RunConfig, model, optimizer, state: _State, device,
                     wall_so_far: float):
    payload = {"run_id": cfg.run_id, "spec_hash": cfg.spec_hash, "model": model.state_dict(),
               "optimizer": optimizer.state_dict(), "state": {**asdict(state), "wall_before": wall_so_far},
               "rng_cpu": torch.get_rng_state(),
               "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(run_dir.checkpoint_path, buffer.getvalue())


def _load_checkpoint(run_dir: RunDir, cfg: RunConfig, model, optimizer, device) -> _State:
    path = run_dir.checkpoint_path
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        if payload["run_id"] != cfg.run_id or payload["spec_hash"] != cfg.spec_hash:
            raise ValueError("it belongs to another run or spec")
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["rng_cpu"].cpu())
        if payload["rng_cuda"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(payload["rng_cuda"].cpu(), device)
        return _State(**payload["state"])
    except Exception as exc:  # a checkpoint elubench cannot use is the user's to resolve
        raise StoreError(f"cannot resume from this checkpoint ({exc.__class__.__name__}: {exc})",
                         where=str(path),
                         hint="delete it to train this run from the start, or run with --force") \
            from None


def train_run(spec, cfg: RunConfig, data, run_dir: RunDir, options: RunOptions) -> dict:
    """Train one run to its end (or divergence) and return its record (not yet written)."""
    device = options.device
    task, train = spec.task, spec.train
    wall_start = time.perf_counter()

    model, optimizer, start_hash, memory_format = build_for_training(spec, cfg, device)
    step = make_step(model, optimizer, task, train.precision, memory_format, options.compile)

    batch_size = min(train.batch_size, data.train_size)
    steps_per_epoch = data.steps_per_epoch(batch_size)
    total = train.iterations or train.epochs * steps_per_epoch
    eval_every = train.eval_interval(total)
    eval_batch = eval_batch_size(batch_size)
    probe = data.probe(min(train.probe_size, data.train_size))

    torch.manual_seed(derive_seed(cfg.seed, "torch"))  # dropout draws: the same for every activation
    if run_dir.checkpoint_path.exists():
        state = _load_checkpoint(run_dir, cfg, model, optimizer, device)
        state.resumed_at.append(state.iteration)
        run_dir.truncate_metrics(state.iteration)
    else:
        state = _State()
        run_dir.truncate_metrics(-1)

    def eval_point() -> dict:
        """Evaluate on the test set and the probe, append a metrics line and return it."""
        synchronize(device)
        t0 = time.perf_counter()
        result = evaluate(model, data, task, eval_batch, train.precision, memory_format)
        stats = activation_stats(model, probe, train.precision, memory_format)
        model.train()
        state.eval_seconds += time.perf_counter() - t0
        train_loss = (state.window_loss_sum / state.window_loss_steps
                      if state.window_loss_steps else None)
        line = {"iteration": state.iteration, "epoch": state.iteration / steps_per_epoch,
                "lr": train.lr_at(max(state.iteration - 1, 0)), "train_loss": train_loss, **result,
                "activations": stats, "prelu": prelu_slopes(model),
                "seconds": state.train_seconds + state.eval_seconds}
        run_dir.append_metrics(line)
        return line

    last = eval_point() if state.iteration == 0 else _last_line(run_dir)
    last_checkpoint = time.perf_counter()
    window = _LossWindow(options.sync_every, device)
    lr = None
    diverged: str | None = None
    if options.progress:
        options.progress({"event": "start", "total": total, "iteration": state.iteration})
    model.train()
    t_window = time.perf_counter()

    while state.iteration < total and diverged is None:
        epoch, offset = divmod(state.iteration, steps_per_epoch)
        batches = data.epoch_batches(epoch, cfg.seed, batch_size)
        for x, y in itertools.islice(batches, offset, None):
            rate = train.lr_at(state.iteration)
            if rate != lr:
                lr = rate
                for group in optimizer.param_groups:
                    group["lr"] = rate
            window.add(step(x, y))
            state.iteration += 1
            state.images += batch_size

            at_eval = state.iteration % eval_every == 0 or state.iteration == total
            stop = options.should_stop()
            if window.full or at_eval or stop:
                losses = window.read()  # the one host sync of the window
                now = time.perf_counter()
                state.train_seconds += now - t_window
                bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
                if bad is not None:
                    first_bad = state.iteration - len(losses) + bad + 1
                    diverged = f"non-finite training loss ({losses[bad]}) at iteration {first_bad}"
                    state.iteration = first_bad
                    break
                state.window_loss_sum += sum(losses)
                state.window_loss_steps += len(losses)
                if options.progress:
                    options.progress({"event": "progress", "iteration": state.iteration, "total": total,
                                      "loss": sum(losses) / len(losses), "test_error": last["test_error"],
                                      "images_per_second": len(losses) * batch_size / max(now - t_window, 1e-9)})
                if at_eval:
                    last = eval_point()
                    state.window_loss_sum, state.window_loss_steps = 0.0, 0
                    if options.progress:
                        options.progress({"event": "eval", "iteration": state.iteration, "total": total,
                                          "test_error": last["test_error"]})
                    if time.perf_counter() - last_checkpoint >= options.checkpoint_seconds \
                            and state.iteration < total:
                        _save_checkpoint(run_dir, cfg, model, optimizer, state, device,
                                         state.wall_before + time.perf_counter() - wall_start)
                        last_checkpoint = time.perf_counter()
                if stop and state.iteration < total:
                    _save_checkpoint(run_dir, cfg, model, optimizer, state, device,
                                     state.wall_before + time.perf_counter() - wall_start)
                    raise Stopped(f"{cfg.run_id} stopped at iteration {state.iteration}; "
                                  "its checkpoint is saved")
                t_window = time.perf_counter()
            if state.iteration >= total:
                break

    wall = state.wall_before + time.perf_counter() - wall_start
    record = {
        **cfg.to_dict(), "status": "diverged" if diverged else "ok", "reason": diverged,
        "task": task, "test_errors": None, "test_size": data.test_size, "test_error": None,
        "test_loss": None, "train_loss": None,
        "iterations": state.iteration, "total_iterations": total, "epochs": state.iteration / steps_per_epoch,
        "batch_size": batch_size, "wall_seconds": wall, "train_seconds": state.train_seconds,
        "eval_seconds": state.eval_seconds,
        "images_per_second": state.images / state.train_seconds if state.train_seconds else None,
        "init_hash": start_hash, "prelu_slopes": prelu_slopes(model),
        "device": str(device), "device_name": device_name(device), "precision": train.precision,
        "compiled": options.compile, "threads": torch.get_num_threads(), "host": socket.gethostname(),
        "versions": versions(), "data": data.info, "resumed_at": state.resumed_at,
        "started_at": state.started_at, "finished_at": time.time(),
    }
    if not diverged:
        record.update({k: last[k] for k in ("test_errors", "test_error", "test_loss")})
        record["train_loss"] = last["train_loss"]
        record["activation_stats"] = last["activations"]
    return record


class _LossWindow:
    """The losses of the steps since the last read, kept on the device so that a step never
    waits for the host; read (one sync) every `size` steps and at evaluations."""

    def __init__(self, size: int, device: torch.device):
        self.values = torch.zeros(size, device=device)
        self.filled = 0

    def add(self, loss: torch.Tensor) -> None:
        self.values[self.filled] = loss
        self.filled += 1

    @property
    def full(self) -> bool:
        return self.filled == len(self.values)

    def read(self) -> list[float]:
        out = self.values[:self.filled].tolist()
        self.filled = 0
        return out


def make_step(model, optimizer, task: str, precision: str, memory_format, compile: bool = False):
    """One SGD step as a function of a batch; returns the detached loss (no host sync)."""
    forward = _compiled(model) if compile else model
    device = next(model.parameters()).device

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=memory_format)
        with _autocast(device, precision):
            out = forward(x)
        loss = _loss(out, x, y, task)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def build_for_training(spec, cfg: RunConfig, device: torch.device):
    """The run's model (paired init, on the device, channels_last for conv nets), its optimizer,
    the init hash, and the memory format its inputs should have."""
    model = build_model(spec, parse_activation(cfg.activation), cfg.batchnorm, seed=cfg.seed,
                        init=cfg.init)
    start_hash = init_hash(model)
    has_conv = any(row.kind == "conv" for row in model.plan.rows)
    memory_format = torch.channels_last if has_conv else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    opt = spec.train.optimizer
    optimizer = torch.optim.SGD(weight_decay_groups(model, opt.weight_decay), lr=spec.train.lr_at(0),
                                momentum=opt.momentum, nesterov=opt.nesterov, **_fast_sgd(device))
    return model, optimizer, start_hash, memory_format


def eval_batch_size(batch_size: int) -> int:
    """Evaluation batches: larger than training's (no gradients kept), bounded for memory."""
    return min(max(2 * batch_size, 256), 1000)


def _last_line(run_dir: RunDir) -> dict:
    rows = run_dir.metrics()
    return rows[-1] if rows else {"test_error": None}


def _fast_sgd(device: torch.device) -> dict:
    """The fastest SGD implementation for the device (same arithmetic as the plain loop)."""
    if device.type == "cuda":
        return {"fused": True}
    return {"foreach": True}


def _compiled(model):
    """torch.compile with settings that keep the science: dropout draws from torch's own
    generator as in eager mode (so a seed gives the same masks compiled or not), a recompile
    limit above the number of variants in a matrix, and a persistent cache under the user's
    cache folder so later runs and later sessions reuse compiled graphs."""
    import os

    import torch._dynamo
    import torch._inductor.config

    from elubench.data import default_cache_dir

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(default_cache_dir() / "inductor"))
    torch._inductor.config.fallback_random = True
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    return torch.compile(model)
