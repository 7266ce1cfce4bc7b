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

from elubench.activations.factories import (
    build_lrelu,
    build_prelu,
    build_rrelu,
    build_srelu,
    exp_linear,
    torch_module,
)

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
    # Built to write into its input (IN_PLACE_WHY, in .factories): `build` then gets inplace=True among
    # its parameters, and the memory estimate counts no separate output for it.
    in_place: bool = False
    # Random in training mode (RReLU): `create` wraps it so that its noise comes from a
    # generator of its own, seeded per run and layer (activations.modules.PrivateRandom).
    stochastic: bool = False
    # What the parameters demand of each other, as an error text ("" when they agree).
    joint_check: Callable[[dict[str, Value]], str] = lambda p: ""


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

    @property
    def stochastic(self) -> bool:
        return self.definition.stochastic

    def create(self, channels: int):
        """Build the torch module for a layer with `channels` units (a stochastic one wrapped
        to draw from its own stream; the net seeds it per layer)."""
        extra = {"inplace": True} if self.in_place else {}
        module = self.definition.build({**self.kwargs, **extra}, channels)
        if self.stochastic:
            from elubench.activations.modules import PrivateRandom

            return PrivateRandom(module)
        return module


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
        exp_linear("elu"),
        (Param("alpha", 1.0, "saturation value for negative inputs", _positive, "> 0"),),
        implemented_by=EXP_LINEAR_IMPL,
        in_place=True,
    ),
    ActivationDef(
        "relu",
        "max(0, x)",
        "Nair & Hinton 2010",
        torch_module("ReLU"),
        negative_slope=lambda p: 0.0,
        in_place=True,
    ),
    ActivationDef(
        "lrelu",
        "max(a * x, x)",
        "Maas et al. 2013 (ELU paper: a = 0.1)",
        build_lrelu,
        (Param("a", 0.1, "slope for negative inputs", _slope, "in [0, 1)"),),
        negative_slope=lambda p: cast(float, p["a"]),  # a number (Param.coerce)
        aliases=("leaky_relu", "leakyrelu"),
        in_place=True,
    ),
    ActivationDef(
        "rrelu",
        "x if x > 0 else a * x, a ~ U(lower, upper) per element in training, (lower + upper) / 2 at evaluation",
        "Xu et al. 2015",
        build_rrelu,
        (
            Param("lower", 1 / 8, "lower bound of the random slope", _slope, "in [0, 1)"),
            Param("upper", 1 / 3, "upper bound of the random slope", _slope, "in [0, 1)"),
        ),
        # the slope it has at evaluation, and on average in training
        negative_slope=lambda p: (cast(float, p["lower"]) + cast(float, p["upper"])) / 2,
        stochastic=True,
        joint_check=lambda p: (
            "" if cast(float, p["lower"]) <= cast(float, p["upper"]) else "lower must be <= upper"
        ),
    ),
    ActivationDef(
        "srelu",
        "max(floor, x)",
        "shifted ReLU, Clevert et al. 2015 (not the S-shaped ReLU)",
        build_srelu,
        (Param("floor", -1.0, "the lower bound", lambda v: v <= 0, "<= 0"),),
        negative_slope=lambda p: 0.0,
        implemented_by="elubench",
    ),
    ActivationDef(
        "prelu",
        "x if x > 0 else a * x, a learned (no weight decay)",
        "He et al. 2015",
        build_prelu,
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
        exp_linear("selu"),
        implemented_by=EXP_LINEAR_IMPL,
        in_place=True,
    ),
    ActivationDef(
        "celu",
        "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
        "Barron 2017",
        exp_linear("celu"),
        (Param("alpha", 1.0, "saturation value for negative inputs", _positive, "> 0"),),
        implemented_by=EXP_LINEAR_IMPL,
        in_place=True,
    ),
    ActivationDef(
        "gelu",
        "x * Phi(x)",
        "Hendrycks & Gimpel 2016",
        torch_module("GELU"),
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
        torch_module("SiLU"),
        aliases=("swish",),
    ),
    ActivationDef("mish", "x * tanh(softplus(x))", "Misra 2019", torch_module("Mish")),
    ActivationDef(
        "softplus",
        "log(1 + exp(beta * x)) / beta",
        "Dugas et al. 2001",
        torch_module("Softplus"),
        (Param("beta", 1.0, "sharpness", _positive, "> 0"),),
    ),
    ActivationDef("tanh", "tanh(x)", "", torch_module("Tanh")),
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


def _shown(value: Value) -> str:
    """A value for reading: 1/3 as 0.3333 (canonical text keeps every digit)."""
    text = format_value(value)
    return f"{value:.4g}" if isinstance(value, float) and len(text) > 8 else text


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
                    f"{p.name}={_shown(p.default)}" + (f" ({p.rule})" if p.rule else "")
                    for p in d.params
                ),
                "he_aware_slope": "-" if slope is None else _shown(float(slope)),
                "aliases": ", ".join(d.aliases),
                "implemented_by": d.implemented_by,
                "source": d.source,
            }
        )
    return rows
