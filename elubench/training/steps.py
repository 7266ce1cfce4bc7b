"""The pieces a training step and an evaluation are made of, shared by the trainer, the dry
run's timing and `bench`: the model built for training (paired init, on the device,
channels_last) with its optimizer, one SGD step as a function of a batch (no host sync),
evaluations over the test set, the bias-shift probe, learned slopes and parameters, and the
device-side window of losses."""

from __future__ import annotations

import contextlib

import torch
from torch.nn import functional as F

from elubench.activations.code import activation_for
from elubench.net.build import Net, build_model, weight_decay_groups
from elubench.net.init import init_hash
from elubench.spec.matrix import RunConfig
from elubench.training.runtime import compiled


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def loss_of(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor, task: str, reduction="mean"):
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
        with autocast(device, precision):
            out = model(x)
        loss_sum += loss_of(out, x, y, task, reduction="sum")
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
        with autocast(probe.device, precision):
            model(probe.contiguous(memory_format=memory_format))
    finally:
        for handle in handles:
            handle.remove()
    summary = torch.stack([torch.stack([m.mean(), m.median()]) for m in means]).tolist()
    return {
        name.removesuffix("_act"): {"mean": mean, "median": median}
        for name, (mean, median) in zip(model.hidden, summary)
    }


def prelu_slopes(model: Net) -> dict:
    """Learned PReLU slopes per layer (mean, min, max over channels)."""
    out = {}
    for name, module in model.body.named_children():
        if isinstance(module, torch.nn.PReLU):
            w = module.weight.detach().float()
            out[name.removesuffix("_act")] = {
                "mean": w.mean().item(),
                "min": w.min().item(),
                "max": w.max().item(),
            }
    return out


def activation_params(model: Net) -> dict | None:
    """A custom activation's learned parameters per layer and name, `s1_conv1.alpha` (mean,
    min, max over their elements), as prelu_slopes has PReLU's; None for a built-in."""
    if model.activation.custom is None:
        return None
    out = {}
    for name in model.hidden:
        for param_name, p in getattr(model.body, name).named_parameters():
            w = p.detach().float()
            out[f"{name.removesuffix('_act')}.{param_name}"] = {
                "mean": w.mean().item(),
                "min": w.min().item(),
                "max": w.max().item(),
            }
    return out


class LossWindow:
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
        out = self.values[: self.filled].tolist()
        self.filled = 0
        return out


def make_step(model, optimizer, task: str, precision: str, memory_format, compile: bool = False):
    """One SGD step as a function of a batch; returns the detached loss (no host sync)."""
    forward = compiled(model) if compile else model
    device = next(model.parameters()).device

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=memory_format)
        with autocast(device, precision):
            out = forward(x)
        loss = loss_of(out, x, y, task)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def build_for_training(spec, cfg: RunConfig, device: torch.device):
    """The run's model (paired init, on the device, channels_last for conv nets), its optimizer,
    the init hash, and the memory format its inputs should have."""
    model = build_model(
        spec, activation_for(cfg, spec), cfg.batchnorm, seed=cfg.seed, init=cfg.init
    )
    start_hash = init_hash(model)
    has_conv = any(row.kind == "conv" for row in model.layout.rows)
    memory_format = torch.channels_last if has_conv else torch.contiguous_format
    # torch's stubs for Module.to lack the memory_format keyword beside a device, which it
    # accepts at run time (it hands both to every tensor's own `to`): one move, one copy
    model = model.to(device=device, memory_format=memory_format)  # type: ignore[call-overload]
    opt = spec.train.optimizer
    groups = weight_decay_groups(model, opt.weight_decay, opt.activation_weight_decay or 0.0)
    optimizer = torch.optim.SGD(
        groups,
        lr=spec.train.lr_at(0),
        momentum=opt.momentum,
        nesterov=opt.nesterov,
        **_fast_sgd(device),
    )
    return model, optimizer, start_hash, memory_format


def activation_implementation(model: Net, device: torch.device, compiled: bool = False) -> str:
    """Whose kernel computed the net's activation: "elubench" (layers.ExpLinear on the CPU),
    "torch", or "torch (compiled)"."""
    if compiled:
        return "torch (compiled)"
    if not model.hidden:
        return "torch"
    module = getattr(model.body, model.hidden[0])
    return module.implementation(device) if hasattr(module, "implementation") else "torch"


def eval_batch_size(batch_size: int) -> int:
    """Evaluation batches: larger than training's (no gradients kept), bounded for memory."""
    return min(max(2 * batch_size, 256), 1000)


def _fast_sgd(device: torch.device) -> dict:
    """The fastest SGD implementation for the device (same arithmetic as the plain loop)."""
    if device.type == "cuda":
        return {"fused": True}
    return {"foreach": True}
