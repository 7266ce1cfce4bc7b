"""An activation's name as written, parsed: a built-in with its parameters (`Activation`), or a
name that points at a user's code (`CustomRef`, not resolved: nothing is imported), and the names
installed packages register (entry-point metadata only). Pure Python.

    elu                 ELU, alpha = 1 (the paper's)
    elu(alpha=0.5)      keyword parameter
    lrelu(0.1)          positional parameter (the first one)
    prelu(shared)       a boolean flag by name
    acts.py:isrlu(alpha=0.5)   an attribute of a Python file (relative to the spec's folder)
    mypkg.acts:ISRLU           an attribute of an importable module
    isrlu                      a name a package registers (entry-point group elubench.activations)
"""

from __future__ import annotations

import importlib.metadata
import math
import re
import sys
from dataclasses import dataclass
from pathlib import PurePath

from elubench.activations.registry import (
    ALIASES,
    REGISTRY,
    Activation,
    Value,
    format_value,
    known_names,
    param_hint,
)
from elubench.core.errors import ActivationError

GROUP = "elubench.activations"

# --- registered names (entry points; pure metadata, nothing imported) ---------------------------

_ENTRY_POINTS: dict[tuple, dict] = {}


def registered() -> dict[str, list]:
    """Every name installed packages register, to its entry points (several when packages
    clash). Read again whenever sys.path changes (a package installed into a folder on it)."""
    key = tuple(sys.path)
    if key not in _ENTRY_POINTS:
        found: dict[str, list] = {}
        for ep in importlib.metadata.entry_points(group=GROUP):
            if all(
                other.value != ep.value or distribution(other) != distribution(ep)
                for other in found.get(ep.name, [])
            ):
                found.setdefault(ep.name, []).append(ep)
        _ENTRY_POINTS.clear()
        _ENTRY_POINTS[key] = found
    return _ENTRY_POINTS[key]


def distribution(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else "an unknown package"


def entry_point(name: str):
    eps = registered().get(name, [])
    if not eps:
        raise ActivationError(
            f"no installed package registers the activation {name!r}",
            hint="install the package that provides it (`elubench activations` "
            "lists the registered ones)",
        )
    if len(eps) > 1:
        raise ActivationError(
            f"activation name clash: {name!r} is registered by "
            + " and by ".join(f"{distribution(ep)} ({ep.value})" for ep in eps),
            hint="uninstall one, or name the code itself: " + " or ".join(ep.value for ep in eps),
        )
    return eps[0]


_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")


def _parse_value(text: str) -> Value:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return float(text)
    except ValueError:
        return text


def parse_activation(text: str) -> Activation | CustomRef:
    """Parse `name`, `name(value)`, `name(key=value, ...)` or `name(flag)` into an Activation,
    or a name that points at code (`file.py:attr`, `pkg.module:attr`, a registered name) into
    a CustomRef. Pure Python: a registered name is looked up in the installed packages'
    metadata, nothing is imported."""
    if not isinstance(text, str):
        raise ActivationError(f"an activation must be a name such as 'elu', got {text!r}")
    ref = _REF.match(text)
    if ref and ":" in ref.group(1):
        return _parse_ref(text, ref.group(1).strip(), ref.group(2))
    match = _NAME.match(text)
    if not match:
        raise ActivationError(
            f"cannot read activation {text!r}",
            hint="write a name with optional parameters: elu, lrelu(0.1), "
            "elu(alpha=0.5), prelu(shared); or code: file.py:attr, "
            "pkg.module:attr",
        )
    name = match.group(1).lower()
    name = ALIASES.get(name, name)
    if name not in REGISTRY:
        if match.group(1) in registered():
            return _parse_ref(text, match.group(1), match.group(2))
        raise ActivationError(
            f"unknown activation {match.group(1)!r}",
            hint=f"known activations: {known_names()} "
            "(`elubench activations` lists them with their parameters); "
            "your own code: file.py:attr or pkg.module:attr",
        )
    definition = REGISTRY[name]
    values: dict[str, Value] = {p.name: p.default for p in definition.params}
    by_name = {p.name: p for p in definition.params}
    args = match.group(2)
    given: set[str] = set()
    if args is not None and args.strip():
        for position, arg in enumerate(a.strip() for a in args.split(",")):
            if "=" in arg:
                key, raw = (s.strip() for s in arg.split("=", 1))
                value = _parse_value(raw)
            elif arg in by_name and isinstance(by_name[arg].default, bool):
                key, value = arg, True  # a flag by name: prelu(shared)
            else:
                if position >= len(definition.params):
                    raise ActivationError(
                        f"{text!r}: {name} takes {len(definition.params) or 'no'} parameter(s), "
                        f"got more",
                        hint=param_hint(definition),
                    )
                key, value = definition.params[position].name, _parse_value(arg)
            if key not in by_name:
                raise ActivationError(
                    f"{text!r}: {name} has no parameter {key!r}", hint=param_hint(definition)
                )
            if key in given:
                raise ActivationError(f"{text!r}: parameter {key!r} given twice")
            given.add(key)
            param = by_name[key]
            try:
                value = param.coerce(value)
                ok = param.check(value) and not (
                    isinstance(value, float) and not math.isfinite(value)
                )
            except ValueError as exc:
                raise ActivationError(
                    f"{text!r}: parameter {key!r}: {exc}", hint=param_hint(definition)
                ) from None
            if not ok:
                raise ActivationError(
                    f"{text!r}: parameter {key!r} must be {param.rule}, got {value!r}",
                    hint=param_hint(definition),
                )
            values[key] = value
    problem = definition.joint_check(values)
    if problem:
        raise ActivationError(f"{text!r}: {problem}", hint=param_hint(definition))
    return Activation(name, tuple((p.name, values[p.name]) for p in definition.params))


@dataclass(frozen=True)
class CustomRef:
    """A name that points at code, parsed but not resolved (nothing imported): `target` is
    `file.py:attr`, `pkg.module:attr` or a registered name; `args` the parameters as written,
    (None, value) for a positional one. The canonical text is `target(args)`, parameters in the
    order given; elubench.activations.code binds them to the code's own parameters.

    Plan-only uses (shapes, a memory estimate) may take a CustomRef for an Activation: the
    learned parameters it adds are unknown until it is resolved, and counted as none."""

    target: str
    args: tuple[tuple[str | None, Value], ...] = ()
    negative_slope = None
    custom = None
    in_place = False
    stochastic = False  # known once resolved

    @property
    def kind(self) -> str:
        """file, module or registered."""
        if ":" not in self.target:
            return "registered"
        return "file" if self.target.rpartition(":")[0].endswith(".py") else "module"

    @property
    def name(self) -> str:
        return self.target

    def __str__(self) -> str:
        if not self.args:
            return self.target
        return f"{self.target}({','.join(format_value(v) if k is None else f'{k}={format_value(v)}' for k, v in self.args)})"

    def param_count(self, channels: int) -> int:
        return 0


_REF = re.compile(r"^\s*([^(),]+?)\s*(?:\((.*)\))?\s*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_REF_HINT = (
    "write file.py:attr (a file, relative to the spec's folder or absolute) or "
    "pkg.module:attr (an importable module), with optional parameters: "
    "acts.py:isrlu(alpha=0.5)"
)


def _parse_ref(text: str, target: str, args: str | None) -> CustomRef:
    where, _, attr = target.rpartition(":")
    if ":" in target:
        if not _IDENT.match(attr):
            raise ActivationError(
                f"{text!r}: {attr!r} is not a Python attribute name", hint=_REF_HINT
            )
        if not where.strip() or not (where.endswith(".py") or _MODULE.match(where)):
            raise ActivationError(
                f"{text!r}: {where!r} is neither a .py file nor a module name", hint=_REF_HINT
            )
    parsed: list[tuple[str | None, Value]] = []
    keys: set[str] = set()
    if args is not None and args.strip():
        for arg in (a.strip() for a in args.split(",")):
            if "=" in arg:
                key, raw = (s.strip() for s in arg.split("=", 1))
                if not _IDENT.match(key):
                    raise ActivationError(
                        f"{text!r}: {key!r} is not a parameter name", hint=_REF_HINT
                    )
                if key in keys:
                    raise ActivationError(f"{text!r}: parameter {key!r} given twice")
                keys.add(key)
                value = _parse_value(raw)
                if isinstance(value, float) and not math.isfinite(value):
                    raise ActivationError(f"{text!r}: parameter {key!r} must be finite, got {raw}")
                parsed.append((key, value))
            elif keys:
                raise ActivationError(
                    f"{text!r}: a positional parameter after a named one",
                    hint="give positional parameters first, as in Python",
                )
            elif not arg:
                raise ActivationError(f"{text!r}: an empty parameter", hint=_REF_HINT)
            else:
                parsed.append((None, _parse_value(arg)))
    return CustomRef(target, tuple(parsed))


def hash_key(target: str) -> str:
    """A target as the spec hash sees it: a file by its name, not its folder (the same code
    in another checkout is the same spec)."""
    where, _, attr = target.rpartition(":")
    return f"{PurePath(where).name}:{attr}" if where.endswith(".py") else target
