"""A custom activation's object (a function of a tensor, or an nn.Module subclass) made into
an `Activation`: its parameters bound as built-ins' are, its label, what it declares, and the
module factory a layer gets (see elubench.activations.code for finding the object)."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import cast

from elubench.activations.names import CustomRef
from elubench.activations.registry import (
    ALIASES,
    REGISTRY,
    REQUIRED,
    Activation,
    ActivationDef,
    Param,
    Value,
)
from elubench.core.errors import ActivationError

_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class CustomDef(ActivationDef):
    """A custom activation's definition: what it is built from and what a run records of it."""

    qualified: str = ""  # /abs/acts.py:isrlu, mypkg.acts:ISRLU, isrlu = mypkg.acts:isrlu
    code: str = ""  # its identity (sha256:..., or name==version)
    channelwise: bool = False  # declared: changing an element may change its channel's outputs
    kinks: tuple[float, ...] = ()  # declared points where its derivative jumps
    # `stochastic` (ActivationDef): declared (`stochastic = True`) or seen (draws_from_torch)


def _default_label(ref: CustomRef, attr: str) -> str:
    """The attribute's name; for a library's class or function whose name is a built-in's
    (torch.nn:RReLU, torch.nn:ELU) its module path, torch.nn.RReLU: a library's object
    cannot be given a `name`, and the built-in's label stays the built-in's."""
    builtin = ALIASES.get(attr.lower(), attr.lower())
    if ref.kind == "module" and builtin in REGISTRY:
        return ref.target.replace(":", ".")
    return attr


def _signature(obj, skip: int) -> list[inspect.Parameter]:
    try:
        params = list(inspect.signature(obj).parameters.values())[skip:]
    except (TypeError, ValueError):  # a builtin without a signature: no parameters to bind
        return []
    return [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def bind(ref: CustomRef, obj, qualified: str, code: str, default_label: str) -> Activation:
    from torch import nn

    text = str(ref)
    if isinstance(obj, nn.Module):
        raise ActivationError(
            f"{text!r} is an nn.Module instance; name its class, so that each "
            "layer gets a module of its own"
        )
    if isinstance(obj, type):
        if not issubclass(obj, nn.Module):
            raise ActivationError(
                f"{text!r} is a class but not a torch.nn.Module subclass",
                hint="write an nn.Module subclass or a function of a tensor",
            )
        signature = _signature(obj.__init__, 1)
        wants_channels = any(p.name == "channels" for p in signature)
        signature = [p for p in signature if p.name != "channels"]
    elif callable(obj):
        signature, wants_channels = _signature(obj, 1), False
    else:
        raise ActivationError(
            f"{text!r} is not callable (it is a {type(obj).__name__})",
            hint="point at a function of a tensor or an nn.Module subclass",
        )
    params = _params(text, signature)
    values = _values(text, ref.args, params)
    label = getattr(obj, "name", None)
    label = label if isinstance(label, str) else _default_label(ref, default_label)
    if not _LABEL.match(label):
        raise ActivationError(
            f"{text!r}: its name {label!r} cannot label a table column",
            hint="a name is a letter or _ then letters, digits, _ . or - (at most 40 characters)",
        )
    builtin = ALIASES.get(label.lower(), label.lower())
    if builtin in REGISTRY:
        raise ActivationError(
            f"activation name clash: {text!r} is named {label!r}, as is the "
            f"built-in {builtin} ({REGISTRY[builtin].formula})",
            hint=f'give the object a `name` attribute of its own, e.g. name = "my_{label.lower()}"',
        )
    from elubench.activations.modules import FunctionActivation

    def build(given: dict, channels: int):
        if isinstance(obj, type):
            return obj(**given, **({"channels": channels} if wants_channels else {}))
        return FunctionActivation(obj, given, label)

    kwargs = dict(values)
    try:
        probe = build(kwargs, 3)
    except Exception as exc:
        raise ActivationError(
            f"activation {text}: check 'construct' failed: "
            f"{obj.__name__ if hasattr(obj, '__name__') else obj}"
            f"({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) raised "
            f"{exc.__class__.__name__}: {exc}"
        ) from None
    declares = probe if isinstance(obj, type) else obj
    slope, channelwise, kinks = _declared(text, declares)
    stochastic = getattr(declares, "stochastic", False) is True or draws_from_torch(probe)
    counts: dict[int, int] = {}

    def param_count(given: dict, channels: int) -> int:
        if channels not in counts:
            counts[channels] = sum(p.numel() for p in build(given, channels).parameters())
        return counts[channels]

    # its own docstring's first line (getdoc would give a class without one nn.Module's)
    doc = inspect.cleandoc(obj.__doc__ or "").splitlines()
    definition = CustomDef(
        label,
        doc[0] if doc else "",
        f"{qualified} ({code})",
        build,
        tuple(params),
        negative_slope=lambda p: slope,
        implemented_by="your code",
        param_count=param_count,
        qualified=qualified,
        code=code,
        channelwise=channelwise,
        kinks=kinks,
        stochastic=stochastic,
    )
    return Activation(label, tuple(values), custom=definition, ref=text)


def draws_from_torch(module) -> bool:
    """Whether the module's training-mode output follows torch's global random state (RReLU,
    a noisy activation): called twice on one input under two seeds, it answers differently.
    Such a module is given a stream of its own (activations.modules.PrivateRandom). A call that
    raises says nothing here; the checks report it."""
    import torch

    module.train()
    for shape in ((2, 3, 4, 4), (2, 3)):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        outputs = []
        try:
            with torch.random.fork_rng(devices=[]):  # the probe leaves the runs' RNG alone
                for seed in (1, 2):
                    torch.manual_seed(seed)
                    outputs.append(module(x.clone()))
        except Exception:
            continue
        first, second = outputs
        if not (isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor)):
            return False
        if first.shape != second.shape or first.dtype != second.dtype:
            return False  # not an activation's output; the checks say what is wrong
        return not torch.allclose(first, second, rtol=0, atol=0, equal_nan=True)
    return False


def _params(text: str, signature: list[inspect.Parameter]) -> list[Param]:
    params = []
    for p in signature:
        default = REQUIRED if p.default is p.empty else p.default
        if default is not REQUIRED and not isinstance(default, (bool, int, float, str)):
            continue  # not settable from a name; Python's own default applies
        # REQUIRED stands in for a missing default (Param.coerce passes any value for it and
        # _values refuses a parameter still at it): a sentinel, not a Value
        params.append(Param(p.name, cast(Value, default), ""))
    return params


def _values(text: str, args, params: list[Param]) -> list[tuple[str, Value]]:
    """Every parameter's value: the defaults, then the arguments given (as built-ins do)."""
    by_name = {p.name: p for p in params}
    values = {p.name: p.default for p in params}
    hint = (
        (
            "parameters: "
            + ", ".join(
                f"{p.name}" + ("" if p.default is REQUIRED else f"={p.default!r}") for p in params
            )
        )
        if params
        else "it takes no parameters"
    )
    for position, (key, value) in enumerate(args):
        if (
            key is None
            and isinstance(value, str)
            and value in by_name
            and isinstance(by_name[value].default, bool)
        ):
            key, value = value, True  # a flag by name
        elif key is None:
            if position >= len(params):
                raise ActivationError(f"{text!r}: more parameters than it takes", hint=hint)
            key = params[position].name
        if key not in by_name:
            raise ActivationError(f"{text!r}: no parameter {key!r}", hint=hint)
        try:
            values[key] = by_name[key].coerce(value)
        except ValueError as exc:
            raise ActivationError(f"{text!r}: parameter {key!r}: {exc}", hint=hint) from None
    missing = [name for name, value in values.items() if value is REQUIRED]
    if missing:
        raise ActivationError(
            f"{text!r}: parameter {missing[0]!r} has no default; give it",
            hint=f"e.g. {text.partition('(')[0]}({missing[0]}=...)",
        )
    return list(values.items())


def _declared(text: str, obj) -> tuple[float | None, bool, tuple[float, ...]]:
    """What the object declares: `negative_slope` (he-aware init), `channelwise`, `kinks`."""
    slope = getattr(obj, "negative_slope", None)
    if slope is not None and (
        isinstance(slope, bool)
        or not isinstance(slope, (int, float))
        or slope != slope
        or abs(slope) == float("inf")
    ):
        raise ActivationError(f"{text!r}: negative_slope must be a finite number, got {slope!r}")
    kinks = getattr(obj, "kinks", ())
    try:
        kinks = tuple(float(k) for k in kinks)
    except (TypeError, ValueError):
        raise ActivationError(
            f"{text!r}: kinks must be a sequence of numbers, got {kinks!r}"
        ) from None
    return (
        (None if slope is None else float(slope)),
        bool(getattr(obj, "channelwise", False)),
        kinks,
    )


def check_labels(pairs: list[tuple[str, str]]) -> None:
    """No two activations of one matrix share a label (case aside: run folders may be on a
    file system that ignores case). `pairs`: (label, reference as written)."""
    seen: dict[str, str] = {}
    for label, text in pairs:
        other = seen.setdefault(label.lower(), text)
        if other != text:
            raise ActivationError(
                f"activation name clash: {other!r} and {text!r} are both named {label!r} in tables",
                hint="give one a `name` attribute of its own, or list it once",
            )


def source_record(activation: Activation) -> dict | None:
    """What a run records of a custom activation: its reference, qualified name, parameters
    and code identity (None for a built-in)."""
    definition = activation.custom
    if not isinstance(definition, CustomDef):
        return None
    return {
        "reference": activation.ref,
        "qualified_name": definition.qualified,
        "parameters": dict(activation.params),
        "code": definition.code,
    }
