"""The activation registry: lower-case names with parameters to module factories.

    elu                 ELU, alpha = 1 (the paper's)
    elu(alpha=0.5)      keyword parameter
    lrelu(0.1)          positional parameter (the first one)
    prelu(shared)       a boolean flag by name

Names may also point at a user's code (docs/custom-activations.md), with parameters in the
same syntax; parsing gives a `CustomRef`, which elubench.activations.code resolves:

    acts.py:isrlu(alpha=0.5)   an attribute of a Python file (relative to the spec's folder)
    mypkg.acts:ISRLU           an attribute of an importable module
    isrlu                      a name a package registers (entry-point group elubench.activations)

Parsing and the registry's metadata are pure Python, so the spec loader and `elubench compare`
never import torch; `Activation.create(channels)` imports it when a module is actually built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

Value = float | bool | str


@dataclass(frozen=True)
class Param:
    name: str
    default: Value
    doc: str
    check: Callable[[Any], bool] = lambda v: True
    rule: str = ""  # what `check` demands, in words

    def coerce(self, raw: Value) -> Value:
        """Convert a parsed value to this parameter's type, or raise ValueError."""
        if self.default is REQUIRED:  # a custom activation's parameter without a default
            return raw
        if isinstance(self.default, bool):
            if isinstance(raw, bool):
                return raw
            raise ValueError("expected true or false")
        if isinstance(self.default, float):
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ValueError("expected a number")
            return float(raw)
        if isinstance(self.default, int):  # custom activations' integer parameters
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != int(raw):
                raise ValueError("expected a whole number")
            return int(raw)
        return str(raw)


class _Required:
    """The default of a parameter that has none (a custom activation's required argument)."""

    def __repr__(self) -> str:
        return "required"


REQUIRED = _Required()


@dataclass(frozen=True)
class ActivationDef:
    name: str
    formula: str
    source: str
    build: Callable[[dict[str, Value], int], Any]  # (params, channels) -> nn.Module
    params: tuple[Param, ...] = ()
    # Slope a of the negative part, for He initialization aware of it:
    # std = sqrt(2 / ((1 + a^2) fan_in)). None: no such slope, plain He (a = 0) is used.
    negative_slope: Callable[[dict[str, Value]], float | None] = lambda p: None
    implemented_by: str = "torch"  # "elubench" when the module is elubench's own code (per device)
    aliases: tuple[str, ...] = ()
    # Learned parameters the module adds to a layer of `channels` units (PReLU's slopes).
    param_count: Callable[[dict[str, Value], int], int] = lambda p, channels: 0
    # Built to write into its input (see IN_PLACE_WHY): `build` then gets inplace=True among
    # its parameters, and the memory estimate counts no separate output for it.
    in_place: bool = False


@dataclass(frozen=True)
class Activation:
    """A parsed activation: a registry entry plus every parameter's value.

    A resolved custom activation (elubench.activations.code) carries its own definition in
    `custom` and, in `ref`, the reference it was resolved from (its text with an absolute path):
    the key a worker resolves it again by. Its `name` is its label in tables."""

    name: str
    params: tuple[tuple[str, Value], ...] = field(default_factory=tuple)
    custom: ActivationDef | None = field(default=None, compare=False, repr=False)
    ref: str | None = None

    @property
    def definition(self) -> ActivationDef:
        return self.custom or REGISTRY[self.name]

    @property
    def kwargs(self) -> dict[str, Value]:
        return dict(self.params)

    def __str__(self) -> str:
        """Canonical text: the name, then only the parameters that differ from their defaults."""
        changed = [
            (k, v) for (k, v), p in zip(self.params, self.definition.params) if v != p.default
        ]
        if not changed:
            return self.name
        return f"{self.name}({','.join(f'{k}={format_value(v)}' for k, v in changed)})"

    @property
    def slug(self) -> str:
        """A file-name-safe form of the canonical text."""
        return activation_slug(str(self))

    @property
    def negative_slope(self) -> float | None:
        return self.definition.negative_slope(self.kwargs)

    def param_count(self, channels: int) -> int:
        return self.definition.param_count(self.kwargs, channels)

    @property
    def in_place(self) -> bool:
        return self.definition.in_place

    def create(self, channels: int):
        """Build the torch module for a layer with `channels` units."""
        extra = {"inplace": True} if self.in_place else {}
        return self.definition.build({**self.kwargs, **extra}, channels)


def activation_slug(text: str) -> str:
    """A file-name-safe form of an activation's canonical text or label (run ids). Built-in
    names are lower case; custom labels keep their case (`ISRLU` and `PELU` must not both
    become `____`)."""
    return re.sub(r"[^A-Za-z0-9.=_-]", "_", text.replace("(", "_").replace(")", ""))


def format_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e16 else f"{value:.1f}"
    return str(value)


# --- module factories (torch is imported only when a module is built) -------------------------


def _torch_module(name: str):
    def build(params: dict[str, Value], channels: int):
        from torch import nn

        return getattr(nn, name)(**params)

    return build


# IN_PLACE_WHY: an activation always follows a conv, an FC layer or BN, none of which needs its
# output for the backward pass. Writing into that output saves allocating (and, on the CPU,
# page-faulting) a new tensor, and torch's in-place ELU computes its gradient from the result,
# alpha + ELU(x), with no second exp. Only for activations whose gradient torch computes from
# the result (relu, elu, lrelu, selu, celu: `in_place=True` below); silu or mish in place would
# need a copy of x.


def _exp_linear(kind: str):
    """ELU, SELU or CELU as elubench's ExpLinear (its own CPU kernel; elubench.activations.kernels)."""

    def build(params: dict[str, Value], channels: int):
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


def _build_lrelu(p, channels):
    from torch import nn

    return nn.LeakyReLU(negative_slope=p["a"], inplace=bool(p.get("inplace")))


def _build_srelu(p, channels):
    from elubench.activations.modules import ShiftedReLU

    return ShiftedReLU(p["floor"])


def _build_prelu(p, channels):
    from torch import nn

    return nn.PReLU(num_parameters=1 if p["shared"] else channels, init=p["init"])


def _positive(v):
    return v > 0


def _slope(v):
    return 0 <= v < 1


# Where ELU, SELU and CELU come from: on the CPU elubench's vectorized kernel or PyTorch's,
# whichever a measurement on this machine found faster (elubench.activations.kernels); PyTorch's on a GPU.
EXP_LINEAR_IMPL = "elubench or torch (CPU, measured), torch (GPU)"

DEFINITIONS = [
    ActivationDef(
        "elu",
        "x if x > 0 else alpha * (exp(x) - 1)",
        "Clevert et al. 2015",
        _exp_linear("elu"),
        (Param("alpha", 1.0, "saturation value for negative inputs", _positive, "> 0"),),
        implemented_by=EXP_LINEAR_IMPL,
        in_place=True,
    ),
    ActivationDef(
        "relu",
        "max(0, x)",
        "Nair & Hinton 2010",
        _torch_module("ReLU"),
        negative_slope=lambda p: 0.0,
        in_place=True,
    ),
    ActivationDef(
        "lrelu",
        "max(a * x, x)",
        "Maas et al. 2013 (ELU paper: a = 0.1)",
        _build_lrelu,
        (Param("a", 0.1, "slope for negative inputs", _slope, "in [0, 1)"),),
        negative_slope=lambda p: cast(float, p["a"]),  # a number (Param.coerce)
        aliases=("leaky_relu", "leakyrelu"),
        in_place=True,
    ),
    ActivationDef(
        "srelu",
        "max(floor, x)",
        "shifted ReLU, Clevert et al. 2015 (not the S-shaped ReLU)",
        _build_srelu,
        (Param("floor", -1.0, "the lower bound", lambda v: v <= 0, "<= 0"),),
        negative_slope=lambda p: 0.0,
        implemented_by="elubench",
    ),
    ActivationDef(
        "prelu",
        "x if x > 0 else a * x, a learned (no weight decay)",
        "He et al. 2015",
        _build_prelu,
        (
            Param("init", 0.25, "initial slope a", _slope, "in [0, 1)"),
            Param("shared", False, "one slope per layer instead of one per channel"),
        ),
        negative_slope=lambda p: cast(float, p["init"]),  # a number (Param.coerce)
        param_count=lambda p, channels: 1 if p["shared"] else channels,
    ),
    ActivationDef(
        "selu",
        "scale * (x if x > 0 else alpha * (exp(x) - 1)), fixed scale/alpha",
        "Klambauer et al. 2017",
        _exp_linear("selu"),
        implemented_by=EXP_LINEAR_IMPL,
        in_place=True,
    ),
    ActivationDef(
        "celu",
        "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
        "Barron 2017",
        _exp_linear("celu"),
        (Param("alpha", 1.0, "saturation value for negative inputs", _positive, "> 0"),),
        implemented_by=EXP_LINEAR_IMPL,
        in_place=True,
    ),
    ActivationDef(
        "gelu",
        "x * Phi(x)",
        "Hendrycks & Gimpel 2016",
        _torch_module("GELU"),
        (
            Param(
                "approximate",
                "none",
                "'none' (exact erf) or 'tanh'",
                lambda v: v in ("none", "tanh"),
                "'none' or 'tanh'",
            ),
        ),
    ),
    ActivationDef(
        "silu",
        "x * sigmoid(x)",
        "Elfwing et al. 2017; Ramachandran et al. 2017",
        _torch_module("SiLU"),
        aliases=("swish",),
    ),
    ActivationDef("mish", "x * tanh(softplus(x))", "Misra 2019", _torch_module("Mish")),
    ActivationDef(
        "softplus",
        "log(1 + exp(beta * x)) / beta",
        "Dugas et al. 2001",
        _torch_module("Softplus"),
        (Param("beta", 1.0, "sharpness", _positive, "> 0"),),
    ),
    ActivationDef("tanh", "tanh(x)", "", _torch_module("Tanh")),
]

REGISTRY: dict[str, ActivationDef] = {d.name: d for d in DEFINITIONS}
ALIASES = {alias: d.name for d in DEFINITIONS for alias in d.aliases}


def known_names() -> str:
    return ", ".join(REGISTRY)


def param_hint(definition: ActivationDef) -> str:
    if not definition.params:
        return f"{definition.name} takes no parameters"
    described = ", ".join(
        f"{p.name}={format_value(p.default)}" + (f" ({p.doc})" if p.doc else "")
        for p in definition.params
    )
    return f"{definition.name} parameters: {described}"


def registry_rows() -> list[dict[str, str]]:
    """The registry as plain rows, for `elubench activations`."""
    rows = []
    for d in DEFINITIONS:
        slope = d.negative_slope({p.name: p.default for p in d.params})
        rows.append(
            {
                "name": d.name,
                "formula": d.formula,
                "parameters": ", ".join(
                    f"{p.name}={format_value(p.default)}" + (f" ({p.rule})" if p.rule else "")
                    for p in d.params
                ),
                "he_aware_slope": "-" if slope is None else format_value(float(slope)),
                "aliases": ", ".join(d.aliases),
                "implemented_by": d.implemented_by,
                "source": d.source,
            }
        )
    return rows
