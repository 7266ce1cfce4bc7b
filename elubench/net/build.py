"""Build the torch network a spec describes, from the same layout `elubench show` prints."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from elubench.activations.modules import PrivateRandom
from elubench.activations.names import CustomRef, parse_activation
from elubench.activations.registry import Activation
from elubench.core.seeds import derive_seed
from elubench.net.init import initialize
from elubench.net.layers import GlobalAvgPool, SamePad, SpatialPyramidPool, Unflatten
from elubench.spec.layout import Layout, Row, net_layout


class Net(nn.Module):
    """A plain feed-forward net; `hidden` names the activation modules (for bias-shift probes)."""

    def __init__(self, layout: Layout, activation: Activation):
        super().__init__()
        self.layout = layout
        self.activation = activation
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        self.hidden: list[str] = []  # module names of hidden-layer activations, in order
        for row in layout.rows:
            prefix = f"s{row.stack}"
            if row.kind == "conv":
                name = f"{prefix}_conv{row.layer}"
                channels, k, units = row.in_shape[0], row.kernel, _units(row)
                assert k is not None  # net_layout sets it on a conv row
                left, right, top, bottom = row.padding
                if left == right and top == bottom:
                    conv = nn.Conv2d(
                        channels, units, k, row.stride, padding=(top, left), bias=row.bias
                    )
                else:  # even kernels: one more zero on the right/bottom
                    modules[f"{name}_pad"] = SamePad(row.padding)
                    conv = nn.Conv2d(channels, units, k, row.stride, padding=0, bias=row.bias)
                modules[name] = conv
                if row.batchnorm:
                    modules[f"{name}_bn"] = nn.BatchNorm2d(units)
            elif row.kind == "fc":
                name, units = f"{prefix}_fc{row.layer}", _units(row)
                modules[name] = nn.Linear(row.in_shape[0], units, bias=row.bias)
                if row.batchnorm:
                    modules[f"{name}_bn"] = nn.BatchNorm1d(units)
            elif row.kind in ("maxpool", "avgpool"):
                pool = nn.MaxPool2d(2, 2) if row.kind == "maxpool" else nn.AvgPool2d(2, 2)
                modules[f"{prefix}_{row.kind}"] = pool
            elif row.kind == "dropout":
                assert row.rate is not None  # net_layout sets it on a dropout row
                modules[f"{prefix}_dropout"] = nn.Dropout(row.rate)
            elif row.kind == "flatten":
                modules[f"{prefix}_flatten"] = nn.Flatten(1)
            elif row.kind == "spp":
                modules[f"{prefix}_spp"] = SpatialPyramidPool(row.levels)
            elif row.kind == "gap":
                modules[f"{prefix}_gap"] = GlobalAvgPool()
            elif row.kind == "unflatten":
                modules[f"{prefix}_unflatten"] = Unflatten(row.out_shape)
            else:  # pragma: no cover - the layout and the builder are written together
                raise AssertionError(f"unknown layout row {row.kind}")
            if row.kind in ("conv", "fc") and row.activation:
                act_name = f"{name}_act"
                modules[act_name] = activation.create(units)  # the conv's or FC's units
                self.hidden.append(act_name)
        self.body = nn.Sequential(modules)

    def forward(self, x):
        return self.body(x)


def _units(row: Row) -> int:
    """A conv or FC row's units (net_layout sets them on every such row)."""
    assert row.units is not None, row.kind
    return row.units


def build_model(
    spec, activation: Activation | str, batchnorm: bool, *, seed: int = 0, init: str | None = None
) -> Net:
    """The spec's net for one activation and BN setting, initialized for `seed`.

    `init` defaults to the spec's (first) scheme. Shapes were checked when the spec loaded.
    """
    if isinstance(activation, str):
        parsed = parse_activation(activation)
        # a custom activation's name is resolved first (activations.code.resolve_name)
        assert not isinstance(parsed, CustomRef), activation
        activation = parsed
    layout = net_layout(spec, activation, batchnorm)
    net = Net(layout, activation)
    scheme = init or spec.compare.init_list()[0]
    initialize(net, scheme, seed, activation.negative_slope)
    seed_stochastic(net, seed)
    return net


def seed_stochastic(net: Net, seed: int) -> None:
    """Give each stochastic activation a stream of its own, from (seed, its hidden layer): its
    noise is then the same in every run of the seed (a run is reproducible) and draws nothing
    from the global streams that pair the runs (dropout masks; activations.modules)."""
    for index, name in enumerate(net.hidden):
        module = getattr(net.body, name)
        if isinstance(module, PrivateRandom):
            module.seed = derive_seed(seed, "activation", index)


def weight_decay_groups(
    model: nn.Module, weight_decay: float, activation_weight_decay: float = 0.0
) -> list[dict]:
    """Optimizer parameter groups: decay on conv/FC weights and biases; none on BN parameters,
    and `activation_weight_decay` (none by default) on what the activations learn: PReLU's
    slopes, a custom activation's parameters (decay would pull a learned slope toward ReLU, as
    the PReLU paper notes)."""
    hidden = [getattr(model.body, name) for name in getattr(model, "hidden", [])]
    learned = {id(p) for module in hidden for p in module.parameters()}
    learned |= {id(p) for m in model.modules() if isinstance(m, nn.PReLU) for p in m.parameters()}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    activation: list[nn.Parameter] = []
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if id(p) in learned:
                (no_decay if activation_weight_decay == 0 else activation).append(p)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                no_decay.append(p)
            else:
                decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    if activation:
        groups.append({"params": activation, "weight_decay": activation_weight_decay})
    return groups
