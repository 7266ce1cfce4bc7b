"""The net's layout: every layer of a spec's net with its shapes, parameters and FLOPs.

Pure Python, so `elubench show` and the spec loader check shapes without importing torch.
`elubench.net.build.build_model` builds the torch modules from this same layout, so what `show`
prints is what trains. The rules (docs/notation.md):

- conv layers keep the spatial size ("same" padding; even kernels pad one more right/bottom);
  a stack's first layer may have a stride (`stride`), giving ceil(size / stride);
- BN, when on, sits between the linear map and the activation; the linear map then has no bias;
- after each conv stack but the last: 2x2/2 pooling while the map is at least 2x2
  (or an explicit per-stack list, obeyed as written); with `spp` and a single `pool` value,
  the last conv stack (the one the FC stacks follow) is not pooled either: SPP replaces
  that pool, as in SPP-net;
- dropout after each stack (never after the output layer);
- before the first FC layer: flatten, or spatial pyramid pooling (`spp`);
- the last layer gives the outputs: no activation, BN or dropout; a conv output on a map
  larger than 1x1 is followed by global average pooling.

FLOPs count 2 per multiply-accumulate of conv and FC layers (as torch.utils.flop_counter does);
activations, BN and pooling are not counted.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, asdict, dataclass, field

from elubench.activations.names import CustomRef
from elubench.activations.registry import Activation
from elubench.core.errors import LayoutError
from elubench.core.limits import MAX_LAYERS, MAX_UNITS


@dataclass
class Row:
    """One row of the layout: a layer (conv, fc) or a step between layers. Past the first three
    fields, every field is given by name."""

    stack: int  # 1-based stack number
    kind: str  # conv, fc, maxpool, avgpool, dropout, flatten, spp, gap, unflatten
    out_shape: tuple[int, ...]  # per image
    _: KW_ONLY
    layer: int | None = None  # 1-based number of the conv/FC layer
    units: int | None = None
    kernel: int | None = None
    in_shape: tuple[int, ...] = ()
    bias: bool = False
    batchnorm: bool = False
    activation: str | None = None
    is_output: bool = False
    stride: int = 1
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # conv: left, right, top, bottom
    rate: float | None = None  # dropout
    levels: tuple[int, ...] = ()  # spp
    params: int = 0
    flops: int = 0

    @property
    def description(self) -> str:
        if self.kind in ("conv", "fc"):
            parts = [self.kind]
            if self.batchnorm:
                parts.append("bn")
            if self.activation:
                parts.append(self.activation)
            return " + ".join(parts) + (" (output)" if self.is_output else "")
        if self.kind == "dropout":
            return f"dropout {self.rate:g}"
        if self.kind == "spp":
            return f"spp {list(self.levels)}"
        if self.kind in ("maxpool", "avgpool"):
            return f"{self.kind[:3]}pool 2×2"
        return self.kind


@dataclass
class Layout:
    input_shape: tuple[int, int, int]
    rows: list[Row] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def forward_flops(self) -> int:
        return sum(r.flops for r in self.rows)

    @property
    def linear_layers(self) -> list[Row]:
        return [r for r in self.rows if r.kind in ("conv", "fc")]

    def hidden_shapes(self) -> list[tuple[int, ...]]:
        """The per-image output shape of every hidden conv/FC layer, in forward order: the
        inputs the activation meets (BN changes no shape)."""
        return [tuple(r.out_shape) for r in self.rows if r.kind in ("conv", "fc") and r.activation]

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "total_params": self.total_params,
            "forward_flops": self.forward_flops,
            "layers": [
                {
                    **asdict(r),
                    "type": r.description,
                    "in_shape": list(r.in_shape),
                    "out_shape": list(r.out_shape),
                    "levels": list(r.levels),
                    "padding": list(r.padding),
                }
                for r in self.rows
            ],
        }


def _prod(shape) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


def scaled_units(units: int, width: float) -> int:
    """A hidden layer's units under `model.width`: rounded half up, at least 1."""
    return max(1, math.floor(units * width + 0.5))


def net_layout(spec, activation: Activation | CustomRef, batchnorm: bool) -> Layout:
    """Lay out the spec's net for one activation and BN setting; raise LayoutError if impossible."""
    model, data = spec.model, spec.data
    stacks = model.layers()
    n_stacks = len(stacks)
    rates = model.dropout_rates()
    if len(rates) != n_stacks:
        raise LayoutError(
            f"dropout lists {len(rates)} rates for {n_stacks} stacks",
            None,
            "give one rate per stack, or a single number for all but the last",
        )
    if rates[-1] != 0:
        raise LayoutError(
            f"dropout after the output layer (rate {rates[-1]}) would drop outputs",
            n_stacks - 1,
            "set the last stack's dropout to 0",
        )
    pools = model.pool if isinstance(model.pool, list) else None
    if pools is not None and len(pools) != n_stacks:
        raise LayoutError(
            f"pool lists {len(pools)} entries for {n_stacks} stacks",
            None,
            "give one of max2, avg2, none per stack, or a single value",
        )

    strides = model.stride or [1] * n_stacks
    if len(strides) != n_stacks:
        raise LayoutError(
            f"stride lists {len(strides)} entries for {n_stacks} stacks",
            None,
            "give one stride per stack (it applies to the stack's first layer)",
        )

    # SPP pools the last conv stack's maps itself (SPP-net): no 2x2 pool before it, unless an
    # explicit per-stack list says otherwise.
    conv_stacks = [s for s, stack in enumerate(stacks) if any(not layer.is_fc for layer in stack)]
    spp_input = conv_stacks[-1] if model.spp and pools is None and conv_stacks else None

    layout = Layout(tuple(data.input_shape()))
    shape: tuple[int, ...] = layout.input_shape
    flat = False
    layer_number = 0
    total_layers = sum(layer.count for stack in stacks for layer in stack)
    if total_layers > MAX_LAYERS:
        raise LayoutError(
            f"the net has {total_layers:,} layers; at most {MAX_LAYERS:,}",
            None,
            "a typo in a layer count? (the paper's deepest net has 30)",
        )

    for s, stack in enumerate(stacks):
        for position, layer in enumerate(stack):
            for repeat in range(layer.count):
                stride = strides[s] if position == 0 and repeat == 0 else 1
                layer_number += 1
                is_output = layer_number == total_layers
                units = layer.units if is_output else scaled_units(layer.units, model.width)
                if units > MAX_UNITS:
                    raise LayoutError(
                        f"{layer.units:,} units × width {model.width:g} = {units:,} "
                        f"units; a layer may have at most {MAX_UNITS:,}",
                        s,
                        "use a smaller model.width (or --width)",
                    )
                use_bn = batchnorm and not is_output
                act = None if is_output else str(activation)
                extra = (2 * units if use_bn else 0) + (
                    0 if is_output else activation.param_count(units)
                )
                # what a conv and an FC row share: where it is, its units, BN, activation
                linear = dict(stack=s + 1, layer=layer_number, units=units, bias=not use_bn,
                              batchnorm=use_bn, activation=act, is_output=is_output)  # fmt: skip
                if layer.is_fc:
                    if stride != 1:
                        raise LayoutError("a stride only applies to a conv layer", s)
                    if not flat:
                        if model.spp:
                            if len(shape) != 3:
                                raise LayoutError("spp needs an image map before it", s)
                            c = shape[0]
                            layout.rows.append(
                                Row(
                                    s + 1,
                                    "spp",
                                    (c * sum(n * n for n in model.spp),),
                                    in_shape=shape,
                                    levels=tuple(model.spp),
                                )
                            )
                            shape = layout.rows[-1].out_shape
                        elif len(shape) == 3:
                            shape = (_prod(shape),)
                            layout.rows.append(Row(s + 1, "flatten", shape))
                        flat = True
                    fan_in = shape[0]
                    out: tuple[int, ...] = (units,)
                    weights = fan_in * units
                    layout.rows.append(
                        Row(kind="fc", out_shape=out, kernel=None, in_shape=shape, flops=2 * weights,
                            params=weights + (0 if use_bn else units) + extra, **linear)
                    )  # fmt: skip
                else:
                    if flat:
                        raise LayoutError(
                            "a conv layer cannot follow a fully connected layer",
                            s,
                            "put every FC stack after the conv stacks",
                        )
                    c, h, w = shape
                    k = layer.kernel
                    if k > 2 * max(h, w) + 1:  # wider, and its outer weights never see a pixel
                        raise LayoutError(
                            f"a {k}×{k} receptive field on a {h}×{w} map: at most "
                            f"{2 * max(h, w) + 1} (twice the side plus one) on this "
                            "map; the wider kernel's outer weights see only padding",
                            s,
                            "use a smaller receptive field, or pool less before it",
                        )
                    oh, ow = -(-h // stride), -(-w // stride)  # "same": ceil(size / stride)
                    pad_h = max((oh - 1) * stride + k - h, 0)
                    pad_w = max((ow - 1) * stride + k - w, 0)
                    out = (units, oh, ow)
                    weights = c * k * k * units
                    layout.rows.append(
                        Row(kind="conv", out_shape=out, kernel=k, in_shape=shape, stride=stride,
                            padding=(pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2),
                            params=weights + (0 if use_bn else units) + extra,
                            flops=2 * weights * oh * ow, **linear)
                    )  # fmt: skip
                shape = out

        last_stack = s == n_stacks - 1
        pool = (
            pools[s]
            if pools is not None
            else ("none" if last_stack or s == spp_input else model.pool)
        )
        if pool != "none":
            if flat:
                if pools is not None:
                    raise LayoutError(
                        f"pool {pool} after a fully connected stack", s, "use none for FC stacks"
                    )
            elif pools is not None and last_stack:
                raise LayoutError(
                    "pooling after the output layer", s, "use none for the last stack"
                )
            elif shape[1] >= 2 and shape[2] >= 2:
                shape = (shape[0], shape[1] // 2, shape[2] // 2)
                layout.rows.append(Row(s + 1, "maxpool" if pool == "max2" else "avgpool", shape))
            elif pools is not None:
                raise LayoutError(
                    f"pooling a {shape[1]}x{shape[2]} map would shrink it below 1x1",
                    s,
                    "use none for this stack, or fewer pooling stacks",
                )
        if rates[s] > 0:
            layout.rows.append(Row(s + 1, "dropout", shape, rate=rates[s]))

    if model.spp and not flat:
        raise LayoutError(
            "spp is set but the net has no FC layer to feed",
            None,
            "remove spp, or end the net with FC stacks",
        )
    out_units = shape[0]
    if spec.task == "autoencoder":
        need = _prod(layout.input_shape)
        if not flat:
            raise LayoutError("an autoencoder's output layer must be FC (xFC)", n_stacks - 1)
        if out_units != need:
            raise LayoutError(
                f"the output layer has {out_units} units but an autoencoder must "
                f"reconstruct all {need} input values "
                f"({'x'.join(map(str, layout.input_shape))})",
                n_stacks - 1,
                f"make the last layer 1x{need}xFC",
            )
        layout.rows.append(Row(n_stacks, "unflatten", layout.input_shape))
    else:
        if len(shape) == 3:  # a conv output: average a larger map, flatten a 1x1 one
            kind = "gap" if shape[1] > 1 or shape[2] > 1 else "flatten"
            shape = (shape[0],)
            layout.rows.append(Row(n_stacks, kind, shape))
        classes = data.classes()
        if classes is not None and out_units != classes:
            raise LayoutError(
                f"the output layer has {out_units} units but {data.dataset} has {classes} classes",
                n_stacks - 1,
                f"make the last layer's units {classes}",
            )
    return layout
