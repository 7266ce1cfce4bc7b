"""The torch modules elubench implements for activations (everything else comes from torch.nn):
shifted ReLU, the exponential linear family with its own CPU kernel, and a user's function
wrapped as a module."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from elubench.activations.kernels import ExpLinearCPU, exp_linear_kernel


class ShiftedReLU(nn.Module):
    """SReLU of the ELU paper: max(floor, x), floor = -1. Not the S-shaped ReLU.

    torch.threshold(x, floor, floor) is exactly max(floor, x), in one kernel each way (its
    backward is one threshold_backward); clamp_min's backward takes two, and relu(x + 1) - 1
    three passes over memory.
    """

    def __init__(self, floor: float = -1.0):
        super().__init__()
        self.floor = float(floor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.threshold(x, self.floor, self.floor)

    def extra_repr(self) -> str:
        return f"floor={self.floor}"


# The exponential linear family: scale * (x if x > 0 else alpha * (exp(input_scale * x) - 1)).
# ELU is (alpha, 1, 1); SELU (1.6733, 1.0507, 1); CELU(a) (a, 1, 1/a). PyTorch's CPU kernels
# for these evaluate expm1, which some builds and CPUs do one element at a time (issue 17
# measured 14.5x ReLU's cost for F.elu). `ExpLinear` computes the same function from vectorized
# ops where that is faster (elubench.activations.kernels measures it once per machine), taking its
# gradient from the saved output (aten's fused elu_backward with is_result=True: no second
# exp), and keeps PyTorch's kernel on GPUs (memory-bound and fast) and under torch.compile
# (which generates its own).
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


class ExpLinear(nn.Module):
    """ELU, SELU and CELU (see above): elubench's vectorized kernel on the CPU, PyTorch's
    elsewhere. `implementation(device)` says which trained a run (recorded in run.json)."""

    def __init__(
        self,
        alpha: float = 1.0,
        scale: float = 1.0,
        input_scale: float = 1.0,
        inplace: bool = False,
        name: str = "elu",
    ):
        super().__init__()
        self.alpha, self.scale, self.input_scale = float(alpha), float(scale), float(input_scale)
        self.inplace, self.name = inplace, name

    @staticmethod
    def implementation(device: torch.device) -> str:
        """ "elubench" or "torch": measured once per machine on the CPU, "torch" elsewhere
        (elubench.activations.kernels; $ELUBENCH_ACTIVATION_KERNELS overrides)."""
        return exp_linear_kernel(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() or self.implementation(x.device) == "torch":
            return (
                torch.ops.aten.elu_(x, self.alpha, self.scale, self.input_scale)
                if self.inplace
                else torch.ops.aten.elu(x, self.alpha, self.scale, self.input_scale)
            )
        return ExpLinearCPU.apply(x, self.alpha, self.scale, self.input_scale, self.inplace)

    def extra_repr(self) -> str:
        return (
            f"{self.name}: alpha={self.alpha:g}, scale={self.scale:g}, "
            f"input_scale={self.input_scale:g}, inplace={self.inplace}"
        )


class FunctionActivation(nn.Module):
    """A user's activation given as a plain function of a tensor (docs/custom-activations.md):
    `fn(x, **params)`. It holds no parameters of its own; `name` is its label in tables."""

    def __init__(self, fn, params: dict, name: str):
        super().__init__()
        self.fn, self.params, self.name = fn, dict(params), name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, **self.params)

    def extra_repr(self) -> str:
        return ", ".join([self.name, *(f"{k}={v!r}" for k, v in self.params.items())])


class PrivateRandom(nn.Module):
    """A stochastic activation (RReLU, a user's noisy one) made to draw from a stream of its own.

    The paired protocol gives every activation of a seed the same initial weights, batches,
    augmentation and dropout masks; the masks come from torch's global generator. A module
    that drew its noise from that generator would shift every draw after it, and its runs
    would see other masks than ELU's. So each training-mode call runs the wrapped module with
    torch's generators (the CPU's and the input's device's) seeded from (`seed`, the call's
    number) and puts them back afterwards: the noise is the layer's own, the global streams
    are untouched, and a run is reproducible (the same seed, the same noise). The call counter
    travels in the checkpoint (`get_extra_state`), so a resumed run draws what the uninterrupted
    one would have. It is a Python int: counting needs no device sync. At evaluation the module
    runs as it is (an activation must then be deterministic; elubench.activations.checks).

    `seed` is set per hidden layer when the net is built (elubench.net.build).
    """

    def __init__(self, inner: nn.Module, seed: int = 0):
        super().__init__()
        self.inner = inner
        self.seed = int(seed)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.inner(x)
        from elubench.core.seeds import derive_seed

        kind = x.device.type
        devices = [] if kind == "cpu" else [x.device]
        with torch.random.fork_rng(devices=devices, device_type=None if kind == "cpu" else kind):
            seed = derive_seed(self.seed, self.calls)
            torch.default_generator.manual_seed(seed)
            if kind == "cuda":  # this device's generator only: others may serve other runs
                torch.cuda.default_generators[_cuda_index(x.device)].manual_seed(seed)
            elif kind == "mps":
                torch.mps.manual_seed(seed)
            y = self.inner(x)
        self.calls += 1
        return y

    def get_extra_state(self) -> dict:
        return {"calls": self.calls}

    def set_extra_state(self, state: dict) -> None:
        self.calls = int(state["calls"])

    def extra_repr(self) -> str:
        return f"own random stream: seed={self.seed}, calls={self.calls}"


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()
