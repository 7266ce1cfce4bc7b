"""A custom activation checked on the shapes of the spec's own net, before anything trains
(`run` for the whole matrix, `show` and `bench` for the activations they lay out): the checks
are elubench.activations.checks, the shapes the net's layout."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from elubench.activations.checks import check_activation
from elubench.activations.code import activation_for, resolve_name, with_names
from elubench.activations.registry import Activation
from elubench.spec.layout import net_layout

if TYPE_CHECKING:
    from elubench.activations.names import CustomRef
    from elubench.spec.matrix import RunConfig
    from elubench.spec.schema import Spec


def hidden_shapes(spec: Spec, activation: Activation | CustomRef) -> list[tuple[int, ...]]:
    """The per-image shapes the activation meets, each once: every hidden conv/FC layer's output."""
    return list(dict.fromkeys(net_layout(spec, activation, False).hidden_shapes()))


def check_matrix(spec: Spec, configs: Iterable[RunConfig]) -> None:
    """Check every custom activation among `configs` (spec.matrix.RunConfig) on the spec's shapes."""
    seen: dict[str, Activation] = {}
    for cfg in configs:
        if cfg.activation_ref is not None and cfg.activation_ref not in seen:
            seen[cfg.activation_ref] = activation_for(cfg, spec)
    for activation in seen.values():
        check_activation(activation, hidden_shapes(spec, activation), spec.train.precision)


def checked_activation(
    spec: Spec, text: str | None, base_dir: Path, flag: str
) -> tuple[Spec, Activation]:
    """(spec, Activation) for the one activation `show` lays out: `text` (a file read from the
    spec's folder) or the spec's first; a custom one resolved and checked on the spec's shapes."""
    spec, [name] = with_names(spec, [text or spec.compare.activations[0]], base_dir, flag)
    activation = resolve_name(name, spec)
    check_activation(activation, hidden_shapes(spec, activation), spec.train.precision)
    return spec, activation
