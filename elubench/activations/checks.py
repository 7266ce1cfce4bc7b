"""The checks a custom activation passes before anything trains (`run`, `show`, `bench`; on the
net's own layer shapes through elubench.net.checks).

A user's function meets the net's tensors only after data is loaded and, on a cluster, after
a queue; a bug found there costs hours. So each custom activation of a matrix is built and
called here first, on the shapes its layers will give it (N x C x H x W, N x C), and a
failure is one ActivationError naming the activation, the check and the value that failed:

- construct    built for every layer's channel count without raising;
- call         called on a random batch of each shape, it returns a tensor of the input's
               shape, dtype and device (and does not raise);
- finite       outputs and gradients (to the input and the parameters) are finite on a grid
               from -50 to 50, in every channel;
- reproducible called twice on one input (a stochastic one's stream reset in between), it
               gives the same output: its randomness, if any, comes from torch's generator,
               which elubench seeds per run and layer (activations.modules.PrivateRandom);
- evaluation   in evaluation mode its output does not depend on torch's random state;
- element-wise changing one input element changes only that output element (with
               `channelwise = True`: only outputs of its sample and channel), the stream
               reset before each call, so that a random one is judged on the same draws;
- gradcheck    torch.autograd.gradcheck passes in float64, at points away from the `kinks` it
               declares (its parameters included);
- no weights   it holds no conv or FC layer: the paired init draws their weights per layer of
               the net, and a hidden one would shift every draw after it.
"""

from __future__ import annotations

import copy

from elubench.activations.registry import Activation
from elubench.core.errors import ActivationError, CheckFailed

BATCH = 2  # images per check batch: enough to see a batch-wise dependence
GRID = 1001  # points of the -50..50 grid, 0.1 apart (0 among them: many kinks are there)
GRADCHECK_CHANNELS = 3


def check_activation(
    activation: Activation, shapes: list[tuple[int, ...]], precision: str = "fp32"
) -> None:
    """Run every check; raise one ActivationError for the first that fails."""
    if activation.custom is None:
        return
    import torch

    try:
        with torch.random.fork_rng(devices=[]):  # the checks' draws leave the runs' RNG alone
            _run_checks(activation, shapes, precision)
    except CheckFailed as failed:
        qualified = getattr(activation.custom, "qualified", "")
        raise ActivationError(
            f"activation {activation} ({qualified}): check '{failed.check}' "
            f"failed: {failed.detail}",
            hint=failed.hint,
        ) from None


def _dims(shape) -> str:
    return "×".join(str(n) for n in shape)


def _run_checks(activation: Activation, shapes, precision: str) -> None:
    import torch

    dtypes = [torch.float32] + ([torch.bfloat16] if precision == "bf16" else [])
    for shape in shapes:
        module = _build(activation, shape[0])
        _no_weights(module)
        for dtype in dtypes:
            x = torch.randn((BATCH, *shape), generator=torch.Generator().manual_seed(0)).to(dtype)
            _call(module, x)
        _finite(module, shape)
        probe = torch.randn((BATCH, *shape), generator=torch.Generator().manual_seed(1))
        _reproducible(module, probe)
        _deterministic_at_evaluation(module, probe)
        _element_wise(
            module,
            torch.randn((BATCH, *shape), generator=torch.Generator().manual_seed(1)),
            bool(getattr(activation.custom, "channelwise", False)),
        )
    kinks = getattr(activation.custom, "kinks", ())
    for rank in sorted({len(shape) for shape in shapes}):
        _gradcheck(_build(activation, GRADCHECK_CHANNELS), rank, kinks)


def _build(activation: Activation, channels: int):
    try:
        return activation.create(channels).train()
    except Exception as exc:
        raise CheckFailed(
            "construct",
            f"building it for {channels} channels raised {exc.__class__.__name__}: {exc}",
        ) from None


def _no_weights(module) -> None:
    from torch import nn

    for name, sub in module.named_modules():
        if isinstance(sub, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            raise CheckFailed(
                "no weights",
                f"it holds a {type(sub).__name__} ({name or 'itself'})",
                hint="an activation acts on each element (or channel); the paired "
                "init draws every conv/FC layer's weights in the net's order",
            )


def _call(module, x):
    """module(x) checked: a tensor of x's shape, dtype and device. Called on a copy, as the
    net's activations may overwrite their input, and with a stochastic module's stream reset,
    so that every call draws the same noise."""
    import torch

    _restart_streams(module)
    try:
        y = module(x.clone())
    except Exception as exc:
        raise CheckFailed(
            "call",
            f"on a {_dims(x.shape)} {_dtype(x)} tensor it raised {exc.__class__.__name__}: {exc}",
        ) from None
    if not isinstance(y, torch.Tensor):
        raise CheckFailed(
            "call", f"on a {_dims(x.shape)} tensor it returned a {type(y).__name__}, not a tensor"
        )
    if y.shape != x.shape:
        raise CheckFailed(
            "call",
            f"it changes the shape: {_dims(x.shape)} in, {_dims(y.shape)} out",
            hint="an activation returns a tensor of its input's shape",
        )
    if y.dtype != x.dtype:
        raise CheckFailed(
            "call",
            f"it changes the dtype: {_dtype(x)} in, {_dtype(y)} out",
            hint="compute in the input's dtype (e.g. torch.tensor(c, dtype=x.dtype))",
        )
    if y.device != x.device:
        raise CheckFailed("call", f"it moves the tensor: {x.device} in, {y.device} out")
    return y


def _restart_streams(module) -> None:
    from elubench.activations.modules import PrivateRandom

    for sub in module.modules():
        if isinstance(sub, PrivateRandom):
            sub.calls = 0


def _first_difference(a, b) -> str:
    import torch

    differ = (a != b) & ~(torch.isnan(a) & torch.isnan(b))
    where = tuple(int(i) for i in differ.nonzero()[0])
    more = int(differ.sum()) - 1
    return f"output element {where}" + (f" and {more} more" if more else "")


def _reproducible(module, x) -> None:
    """The same input twice, the same output: randomness elubench cannot seed would make runs
    irreproducible, and would read as a mixing of elements in the element-wise check."""
    import torch

    with torch.no_grad():
        first, second = _call(module, x), _call(module, x)
    if not torch.allclose(first, second, rtol=0, atol=0, equal_nan=True):
        raise CheckFailed(
            "reproducible",
            f"called twice on the same {_dims(x.shape)} batch it returned different outputs "
            f"({_first_difference(first, second)}): its randomness does not come from torch's "
            "generator, which elubench seeds per run and layer",
            hint="draw noise with torch's default generator (torch.rand_like(x), "
            "torch.empty_like(x).uniform_(lo, hi)); a torch.Generator of its own, numpy or "
            "Python's random cannot be seeded by elubench, so its runs could not be repeated",
        )


def _deterministic_at_evaluation(module, x) -> None:
    """In evaluation mode the output must not follow torch's random state (RReLU uses its mean
    slope there): test errors are then a function of the weights alone."""
    import torch

    module.eval()
    try:
        with torch.no_grad():
            torch.manual_seed(1)
            first = _call(module, x)
            torch.manual_seed(2)
            second = _call(module, x)
    finally:
        module.train()
    if not torch.allclose(first, second, rtol=0, atol=0, equal_nan=True):
        raise CheckFailed(
            "evaluation",
            f"in evaluation mode it gave different outputs for the same {_dims(x.shape)} batch "
            f"under two random states ({_first_difference(first, second)})",
            hint="draw noise only in training (if self.training: ...) and use its expected "
            "value at evaluation, as RReLU uses its mean slope",
        )


def _dtype(x) -> str:
    return str(x.dtype).removeprefix("torch.")


def _element_wise(module, x, channelwise: bool) -> None:
    """Nudge one element at a time; only it (or its sample's channel) may change."""
    import torch

    with torch.no_grad():
        base = _call(module, x)
        for k, flat in enumerate((0, x.numel() // 2 + 1, x.numel() - 1)):
            position = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), x.shape))
            nudged = x.clone()
            # away from zero, keeping the sign: a random activation may draw its noise for
            # the negative elements alone (torch's RReLU on the CPU, in order), so a nudge
            # across zero would move the draws of elements after it without any mixing
            nudged[position] += (0.5 + 0.25 * k) * (1.0 if x[position] >= 0 else -1.0)
            out = _call(module, nudged)
            changed = (out != base) & ~(torch.isnan(out) & torch.isnan(base))
            allowed = torch.zeros_like(changed)
            if channelwise:
                allowed[position[:2]] = True
            else:
                allowed[position] = True
            others = (changed & ~allowed).nonzero()
            if len(others):
                where = tuple(int(i) for i in others[0])
                raise CheckFailed(
                    "element-wise",
                    f"changing input element {position} of a "
                    f"{_dims(x.shape)} batch also changed output element "
                    f"{where}" + (f" and {len(others) - 1} more" if len(others) > 1 else ""),
                    hint="an activation acts on each element alone; declare "
                    "`channelwise = True` on it if it may mix one channel's values",
                )


def _finite(module, shape) -> None:
    """Outputs and gradients finite for inputs from -50 to 50, in every channel."""
    import torch

    grid = torch.arange(-(GRID // 2), GRID // 2 + 1, dtype=torch.float32) / 10  # 0.1 apart, 0 exact
    # every grid value in every channel; a 1x1 map is enough where the function is element-wise
    # (a 1001 x C x H x W grid of a conv layer's full map would take gigabytes)
    spatial = [1] * (len(shape) - 1)
    x = grid.view(GRID, 1, *spatial).expand(GRID, shape[0], *spatial).contiguous()
    x.requires_grad_(True)
    module.zero_grad(set_to_none=True)
    y = _call(module, x.clone())
    bad = ~torch.isfinite(y.detach())
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise CheckFailed(
            "finite",
            f"it returns {y[index].item()} at x = {x[index].item():g}",
            hint="outputs must be finite for every input a layer can give it",
        )
    try:
        y.sum().backward()
    except Exception as exc:
        raise CheckFailed(
            "finite", f"its backward raised {exc.__class__.__name__}: {exc}"
        ) from None
    # None when the output does not depend on the input (backward reached parameters alone):
    # its gradient with respect to x is zero everywhere, which is finite
    grad = x.grad if x.grad is not None else torch.zeros_like(x)
    bad = ~torch.isfinite(grad)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise CheckFailed(
            "finite",
            f"its gradient is {grad[index].item()} at x = {x[index].item():g}",
            hint="a branch torch.where discards still has its gradient computed: "
            "evaluate each branch only where it is finite (e.g. on clamp(x, max=0))",
        )
    for name, p in module.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            raise CheckFailed(
                "finite",
                f"the gradient of its parameter {name!r} is not finite on inputs from -50 to 50",
            )


def _gradcheck(module, rank: int, kinks) -> None:
    """torch.autograd.gradcheck in float64, the module's parameters among the inputs."""
    import torch
    from torch.func import functional_call

    module = copy.deepcopy(module).double()
    names = [name for name, p in module.named_parameters() if p.requires_grad]
    shape = (BATCH, GRADCHECK_CHANNELS) if rank == 1 else (BATCH, GRADCHECK_CHANNELS, 2, 2)
    x = torch.empty(shape, dtype=torch.float64).uniform_(
        -4.0, 4.0, generator=torch.Generator().manual_seed(2)
    )
    for (
        kink
    ) in kinks:  # gradcheck's finite differences straddling a kink would differ from autograd
        x = torch.where((x - kink).abs() < 0.05, x + 0.1, x)
    params = [
        dict(module.named_parameters())[name].detach().clone().requires_grad_(True)
        for name in names
    ]

    def call(inp, *values):
        _restart_streams(module)  # a stochastic module: the same draws at every point
        return functional_call(module, dict(zip(names, values)), (inp.clone(),))

    try:
        ok = torch.autograd.gradcheck(
            call,
            (x.requires_grad_(True), *params),
            eps=1e-6,
            atol=1e-5,
            rtol=1e-3,
            raise_exception=False,
        )
    except Exception as exc:
        raise CheckFailed(
            "gradcheck",
            f"in float64 it raised {exc.__class__.__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
        ) from None
    if not ok:
        raise CheckFailed(
            "gradcheck",
            _mismatch(call, x.detach(), params),
            hint="its backward does not match its forward; if its derivative jumps at "
            "some points, declare them: kinks = (0.0,)",
        )


def _mismatch(call, x, params) -> str:
    """Where autograd and central differences disagree most (the input's own derivative)."""
    import torch

    x = x.clone().requires_grad_(True)
    analytic = torch.autograd.grad(call(x, *params).sum(), x)[0]
    eps = 1e-6
    with torch.no_grad():
        numeric = (call(x + eps, *params) - call(x - eps, *params)) / (2 * eps)
    gap = (analytic - numeric).abs()
    index = tuple(int(i) for i in torch.unravel_index(gap.argmax(), gap.shape))
    if gap[index] <= 1e-5 + 1e-3 * numeric[index].abs():
        return "autograd's and numerical gradients differ (in a parameter's or across elements)"
    return (
        f"at x = {x[index].item():.6g} autograd gives the derivative {analytic[index].item():.6g}, "
        f"central differences {numeric[index].item():.6g}"
    )
