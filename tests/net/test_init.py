import math

import pytest
import torch
from conftest import SPECS, tiny_spec

from elubench.net.build import build_model
from elubench.net.init import init_hash, initialize, linear_layers
from elubench.spec.loader import load_spec, validate_spec

ACTIVATIONS = ["elu", "relu", "lrelu(0.1)", "srelu", "prelu", "prelu(shared)", "gelu", "selu"]


@pytest.mark.parametrize("scheme", ["he", "xavier", "torch-default"])
def test_same_seed_same_weights_for_every_activation_and_bn(scheme):
    spec = validate_spec(tiny_spec())
    nets = [
        build_model(spec, a, bn, seed=3, init=scheme) for a in ACTIVATIONS for bn in (False, True)
    ]
    hashes = {init_hash(net) for net in nets}
    assert len(hashes) == 1
    first = linear_layers(nets[0])
    for net in nets[1:]:
        for a, b in zip(first, linear_layers(net)):
            assert torch.equal(a.weight, b.weight)


def test_different_seeds_differ_and_hash_is_stable():
    spec = validate_spec(tiny_spec())
    a = build_model(spec, "relu", False, seed=0)
    assert init_hash(a) != init_hash(build_model(spec, "relu", False, seed=1))
    assert init_hash(a) == init_hash(build_model(spec, "relu", False, seed=0))
    # stable across processes and releases: a fixed value for a fixed seed
    assert init_hash(a) == INIT_HASH_RELU_SEED_0
    assert init_hash(a) == init_hash(a.to(memory_format=torch.channels_last))


# init_hash of build_model(validate_spec(tiny_spec()), "relu", False, seed=0): a change to the
# draws (generator, seed derivation, scheme) changes it and breaks pairing with older results.
INIT_HASH_RELU_SEED_0 = "c562a4871c6f8466"


def test_what_the_schemes_share():
    """Same draws for every activation, BN setting and scheme; bit-identical weights across
    activations under he (and xavier, torch-default); he-aware scales lrelu/prelu's draws by
    1/sqrt(1 + a^2) and gives the other activations he's weights; xavier = he x a per-layer
    constant."""
    spec = validate_spec(tiny_spec())

    def net(activation, scheme, bn=False):
        return build_model(spec, activation, bn, seed=5, init=scheme)

    he = {a: net(a, "he") for a in ACTIVATIONS}
    assert len({init_hash(n) for n in he.values()} | {init_hash(net("elu", "he", True))}) == 1

    aware_relu, aware_lrelu = net("relu", "he-aware"), net("lrelu(0.1)", "he-aware")
    assert init_hash(aware_relu) == init_hash(he["relu"])
    for a in ("elu", "srelu", "gelu", "selu"):
        assert init_hash(net(a, "he-aware")) == init_hash(he["relu"])
    assert init_hash(aware_lrelu) != init_hash(aware_relu)
    for h, w in zip(linear_layers(he["relu"]), linear_layers(aware_lrelu)):
        torch.testing.assert_close(w.weight, h.weight / math.sqrt(1.01))

    xavier = net("relu", "xavier")
    assert init_hash(xavier) != init_hash(he["relu"])
    for h, x in zip(linear_layers(he["relu"]), linear_layers(xavier)):
        ratio = x.weight / h.weight
        fan_in, fan_out = h.weight[0].numel(), h.weight.shape[0] * h.weight[0, 0].numel()
        torch.testing.assert_close(
            ratio, torch.full_like(ratio, math.sqrt(fan_in / (fan_in + fan_out)))
        )


def test_biases_start_at_zero_under_he():
    spec = validate_spec(tiny_spec())
    net = build_model(spec, "relu", False, seed=0)
    assert all(layer.bias.abs().sum() == 0 for layer in linear_layers(net))


def _std(scheme, activation="relu"):
    spec = load_spec(SPECS / "elu-cifar100-11.yaml")
    net = build_model(spec, activation, False, seed=0, init=scheme)
    return net.body.s2_conv3.weight  # 192 -> 240, 3x3: fan_in 1728, fan_out 2160


def test_scheme_statistics():
    w = _std("he")
    assert w.std().item() == pytest.approx(math.sqrt(2 / 1728), rel=0.02)
    w = _std("he-aware", "lrelu(0.3)")
    assert w.std().item() == pytest.approx(math.sqrt(2 / ((1 + 0.09) * 1728)), rel=0.02)
    w = _std("xavier")
    assert w.std().item() == pytest.approx(math.sqrt(2 / (1728 + 2160)), rel=0.02)
    w = _std("torch-default")
    bound = 1 / math.sqrt(1728)
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound


def test_he_aware_scales_the_same_draws():
    he, aware = _std("he"), _std("he-aware", "prelu")
    torch.testing.assert_close(aware, he / math.sqrt(1 + 0.25**2))


def test_unknown_scheme():
    spec = validate_spec(tiny_spec())
    with pytest.raises(ValueError, match="unknown init scheme"):
        initialize(build_model(spec, "relu", False), "orthogonal", 0)
