"""The torch modules behind the built-in activations (elubench.activations.registry): one
factory per kind, `(params, channels) -> nn.Module`. torch is imported only when a module is
built, so the registry's metadata stays pure Python."""

from __future__ import annotations

from typing import Any

Params = dict[str, Any]


def torch_module(name: str):
    def build(params: Params, channels: int):
        from torch import nn

        return getattr(nn, name)(**params)

    return build


# IN_PLACE_WHY: an activation always follows a conv, an FC layer or BN, none of which needs its
# output for the backward pass. Writing into that output saves allocating (and, on the CPU,
# page-faulting) a new tensor, and torch's in-place ELU computes its gradient from the result,
# alpha + ELU(x), with no second exp. Only for activations whose gradient torch computes from
# the result (relu, elu, lrelu, selu, celu: `in_place=True` in the registry); silu or mish in place would
# need a copy of x.


def exp_linear(kind: str):
    """ELU, SELU or CELU as elubench's ExpLinear (its own CPU kernel; elubench.activations.kernels)."""

    def build(params: Params, channels: int):
        from elubench.activations.modules import SELU_ALPHA, SELU_SCALE, ExpLinear

        if kind == "selu":
            return ExpLinear(
                SELU_ALPHA, SELU_SCALE, 1.0, inplace=bool(params.get("inplace")), name=kind
            )
        alpha = float(params["alpha"])
        return ExpLinear(
            alpha,
            1.0,
            1.0 / alpha if kind == "celu" else 1.0,
            inplace=bool(params.get("inplace")),
            name=kind,
        )

    return build


def build_lrelu(p, channels):
    from torch import nn

    return nn.LeakyReLU(negative_slope=p["a"], inplace=bool(p.get("inplace")))


def build_rrelu(p, channels):
    from torch import nn

    return nn.RReLU(p["lower"], p["upper"])


def build_srelu(p, channels):
    from elubench.activations.modules import ShiftedReLU

    return ShiftedReLU(p["floor"])


def build_prelu(p, channels):
    from torch import nn

    return nn.PReLU(num_parameters=1 if p["shared"] else channels, init=p["init"])
