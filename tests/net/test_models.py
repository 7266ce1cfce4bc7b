"""The builder against independent oracles: torch's own parameter count and flop counter."""

import pytest
import torch
from conftest import SPECS, tiny_spec
from torch.utils.flop_counter import FlopCounterMode

from elubench.activations.names import parse_activation
from elubench.net.build import Net, build_model
from elubench.spec.layout import net_layout
from elubench.spec.loader import load_spec, validate_spec


def test_paper_parameter_counts():
    """The issue's figures: conv weights and biases, no BN, no PReLU."""
    relu = parse_activation("relu")
    c11 = load_spec(SPECS / "elu-cifar100-11.yaml")
    c18 = load_spec(SPECS / "elu-cifar100-18.yaml")
    assert net_layout(c11, relu, False).total_params == 1_669_028
    assert net_layout(c18, relu, False).total_params == 39_330_404


def test_hand_computed_count_of_the_11_layer_net():
    """(in*k*k + 1) * out per conv layer, summed by hand from the paper's notation."""
    layers = [
        (3, 192, 5),
        (192, 192, 1),
        (192, 240, 3),
        (240, 240, 1),
        (240, 260, 2),
        (260, 260, 1),
        (260, 280, 2),
        (280, 280, 1),
        (280, 300, 2),
        (300, 300, 1),
        (300, 100, 1),
    ]
    by_hand = sum((cin * k * k + 1) * cout for cin, cout, k in layers)
    spec = load_spec(SPECS / "elu-cifar100-11.yaml")
    assert net_layout(spec, parse_activation("elu"), False).total_params == by_hand


def _meta_net(spec, activation, bn):
    plan = net_layout(spec, activation, bn)
    with torch.device("meta"):
        return plan, Net(plan, activation)


CASES = [
    (p.name, a, bn)
    for p in sorted(SPECS.glob("*.yaml"))
    for a, bn in [("relu", False), ("prelu", True), ("prelu(shared)", False)]
]


@pytest.mark.parametrize("spec_file, activation, bn", CASES)
def test_plan_counts_equal_torch_counts(spec_file, activation, bn):
    """Independent check: torch's numel over the built module's parameters (built on the meta
    device, so even the 165M-parameter ImageNet net costs no memory)."""
    spec = load_spec(SPECS / spec_file)
    plan, net = _meta_net(spec, parse_activation(activation), bn)
    assert plan.total_params == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("spec_file", [p.name for p in sorted(SPECS.glob("*.yaml"))])
def test_plan_flops_and_shape_equal_torch_flop_counter(spec_file):
    spec = load_spec(SPECS / spec_file)
    relu = parse_activation("relu")
    plan, net = _meta_net(spec, relu, True)
    x = torch.empty(2, *plan.input_shape, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        out = net.eval()(x)
    assert counter.get_total_flops() == 2 * plan.forward_flops
    assert tuple(out.shape[1:]) == plan.rows[-1].out_shape


def test_rules_in_the_11_layer_plan():
    spec = load_spec(SPECS / "elu-cifar100-11.yaml")
    rows = net_layout(spec, parse_activation("elu"), True).rows
    pools = [r for r in rows if r.kind == "maxpool"]
    assert [r.out_shape[1] for r in pools] == [16, 8, 4, 2, 1]  # five pools, then 1x1 maps
    assert [r.rate for r in rows if r.kind == "dropout"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    output = [r for r in rows if r.kind == "conv"][-1]
    assert output.is_output and output.activation is None and not output.batchnorm and output.bias
    hidden = [r for r in rows if r.kind == "conv"][:-1]
    assert all(r.batchnorm and not r.bias and r.activation == "elu" for r in hidden)


def test_even_kernels_keep_the_size_and_pad_right():
    spec = validate_spec(tiny_spec(model={"stacks": ["1x4x2", "1x10x1"], "pool": "none"}))
    net = build_model(spec, "relu", False)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 7, 7] = 1.0  # only the bottom-right pixel: it must reach the output through padding
    conv = net.body.s1_conv1
    torch.nn.init.ones_(conv.weight)
    torch.nn.init.zeros_(conv.bias)
    pad_out = conv(net.body.s1_conv1_pad(x))
    assert pad_out.shape[-2:] == (8, 8)
    assert pad_out[0, 0, 7, 7] == 1.0 and pad_out[0, 0, 6, 6] == 1.0


def test_spp_and_stride():
    spec = load_spec(SPECS / "elu-imagenet-15.yaml")
    rows = net_layout(spec, parse_activation("elu"), False).rows
    assert rows[0].stride == 2 and rows[0].out_shape == (96, 112, 112)
    index = next(i for i, r in enumerate(rows) if r.kind == "spp")
    spp = rows[index]
    # SPP-net: the last conv stack's maps go into SPP unpooled (docs/notation.md, rules 3 and 5)
    assert rows[index - 1].kind == "conv" and rows[index - 1].out_shape == (1024, 14, 14)
    assert spp.in_shape == (1024, 14, 14)
    assert spp.out_shape == (1024 * (16 + 4 + 1),) == (21504,)
    assert [r.out_shape[1:] for r in rows if r.kind == "maxpool"] == [(56, 56), (28, 28), (14, 14)]


@pytest.mark.parametrize(
    "pool, pooled",
    [
        ("max2", [4]),
        ("avg2", [4]),
        ("none", []),
        (["max2", "max2", "none", "none"], [4, 2]),
        (["none", "max2", "none", "none"], [4]),
    ],
)
def test_spp_replaces_the_last_conv_stacks_pool_unless_listed(pool, pooled):
    """A single pool value: no pool after the last conv stack when SPP follows it; an explicit
    per-stack list is obeyed as written."""
    spec = validate_spec(
        tiny_spec(
            model={"stacks": ["1x8x3", "1x8x3", "1x32xFC", "1x10xFC"], "pool": pool, "spp": [2, 1]}
        )
    )
    rows = net_layout(spec, parse_activation("relu"), False).rows
    assert [r.out_shape[1] for r in rows if r.kind.endswith("pool")] == pooled
    spp = next(r for r in rows if r.kind == "spp")
    assert spp.in_shape == (8, *[pooled[-1] if pooled else 8] * 2) and spp.out_shape == (8 * 5,)
    out = build_model(spec, "relu", False)(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10)


def test_flatten_without_spp_still_pools_the_last_conv_stack():
    spec = validate_spec(tiny_spec(model={"stacks": ["1x8x3", "1x8x3", "1x10xFC"]}))
    rows = net_layout(spec, parse_activation("relu"), False).rows
    assert [r.out_shape[1] for r in rows if r.kind == "maxpool"] == [4, 2]
    assert next(r for r in rows if r.kind == "flatten").out_shape == (8 * 2 * 2,)


def test_conv_output_on_a_large_map_gets_global_average_pooling():
    spec = validate_spec(tiny_spec(model={"stacks": ["1x8x3", "1x10x1"], "pool": "none"}))
    rows = net_layout(spec, parse_activation("relu"), False).rows
    assert rows[-1].kind == "gap"
    out = build_model(spec, "relu", False)(torch.randn(3, 1, 8, 8))
    assert out.shape == (3, 10)


def test_autoencoder_reconstructs_the_input_shape():
    spec = validate_spec(tiny_spec(task="autoencoder", model={"stacks": ["1x16xFC", "1x64xFC"]}))
    out = build_model(spec, "elu", False)(torch.randn(5, 1, 8, 8))
    assert out.shape == (5, 1, 8, 8)


def test_output_layer_has_no_activation_bn_or_dropout():
    spec = validate_spec(tiny_spec())
    net = build_model(spec, "prelu", True)
    names = list(dict(net.body.named_children()))
    assert names[-2:] == ["s3_conv3", "s3_gap"]  # the output conv on a 2x2 map, then GAP
    assert not any(n.startswith("s3_conv3_") for n in names)
    assert net.hidden == ["s1_conv1_act", "s2_conv2_act"]


def test_channels_last_forward_matches():
    spec = validate_spec(tiny_spec())
    net = build_model(spec, "elu", True).eval()
    x = torch.randn(4, 1, 8, 8)
    expected = net(x)
    net = net.to(memory_format=torch.channels_last)
    torch.testing.assert_close(
        net(x.contiguous(memory_format=torch.channels_last)), expected, rtol=1e-5, atol=1e-5
    )
