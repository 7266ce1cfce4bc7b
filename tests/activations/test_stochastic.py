"""Stochastic activations (issue 28): RReLU built in, a user's noisy activation detected, each
drawing from a stream of its own so that the paired protocol holds (same initial weights,
batches and dropout masks as ELU at a seed) and a run is reproducible; the checks tell a random
activation from one that mixes elements. End to end through the CLI: test_stochastic_runs."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import SPECS, tiny_spec
from test_custom_activations import write_spec
from torch.nn import functional as F

from elubench.activations.checks import check_activation
from elubench.activations.code import resolve_name
from elubench.activations.modules import PrivateRandom
from elubench.activations.names import parse_activation
from elubench.activations.registry import REGISTRY, registry_rows
from elubench.core.errors import ActivationError
from elubench.net.build import build_model
from elubench.net.checks import hidden_shapes
from elubench.net.init import init_hash
from elubench.spec.loader import load_spec, validate_spec

X = torch.randn(4, 6, 5, 5, generator=torch.Generator().manual_seed(3))


def _rrelu(text="rrelu"):
    module = parse_activation(text).create(6)
    assert isinstance(module, PrivateRandom)
    return module


# --- rrelu, the built-in -------------------------------------------------------------------------


def test_rrelu_is_listed_with_the_papers_bounds_and_its_mean_slope():
    row = next(r for r in registry_rows() if r["name"] == "rrelu")
    assert row["parameters"] == "lower=0.125 (in [0, 1)), upper=0.3333 (in [0, 1))"
    assert row["he_aware_slope"] == "0.2292"
    assert parse_activation("rrelu").negative_slope == pytest.approx((1 / 8 + 1 / 3) / 2)
    assert REGISTRY["rrelu"].stochastic and not REGISTRY["rrelu"].in_place
    assert str(parse_activation("rrelu(0.1,0.2)")) == "rrelu(lower=0.1,upper=0.2)"


def test_rrelu_bounds_that_cross_are_one_message():
    with pytest.raises(ActivationError, match="lower must be <= upper"):
        parse_activation("rrelu(lower=0.3,upper=0.2)")


def test_rrelu_at_evaluation_is_leaky_relu_with_the_mean_slope():
    module = _rrelu("rrelu(0.1,0.3)").eval()
    torch.testing.assert_close(module(X), F.leaky_relu(X, 0.2), rtol=0, atol=0)


def test_rrelu_in_training_draws_each_negative_slope_within_its_bounds():
    y = _rrelu("rrelu(0.1,0.3)").train()(X)
    negative = X < 0
    slopes = y[negative] / X[negative]
    assert torch.equal(y[~negative], X[~negative])
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03


# --- a stream of its own -------------------------------------------------------------------------


def test_its_draws_leave_the_global_random_state_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    _rrelu()(X)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_same_seed_and_call_draw_the_same_noise_and_each_call_new_noise():
    a, b = _rrelu(), _rrelu()
    a.seed = b.seed = 17
    first = a(X)
    torch.manual_seed(123)  # the global state does not matter
    assert torch.equal(b(X), first)
    assert not torch.equal(a(X), first)  # the second call: new draws
    b.seed = 18
    assert not torch.equal(b(X), a(X))


def test_the_call_count_travels_in_the_state_dict_so_a_resumed_run_draws_the_same():
    a = _rrelu()
    a.seed = 5
    for _ in range(3):
        a(X)
    saved = a.state_dict()
    fourth = a(X)
    b = _rrelu()
    b.seed = 5
    b.load_state_dict(saved)
    assert b.calls == 3 and torch.equal(b(X), fourth)


def test_evaluation_draws_nothing_and_does_not_count():
    module = _rrelu().eval()
    assert torch.equal(module(X), module(X)) and module.calls == 0


DROPOUT = {"stacks": ["1x8x3", "1x16x3", "1x10x1"], "dropout": [0.0, 0.3, 0.0]}


def _dropout_spec(tmp_path=None, names=("rrelu",)):
    if tmp_path is None:
        return validate_spec(tiny_spec(model=DROPOUT))
    return load_spec(write_spec(tmp_path, list(names), model=DROPOUT))


def test_rrelu_and_elu_nets_start_alike_and_see_the_same_dropout_masks(tmp_path):
    """The pairing: bit-identical initial weights, and after a training step's forward the
    global stream (which draws the dropout masks) where ELU's net left it."""
    names = ("rrelu", "elu", "torch.nn:RReLU")
    spec = _dropout_spec(tmp_path, names)
    states, hashes = [], []
    for name in names:
        activation = resolve_name(name, spec)
        net = build_model(spec, activation, batchnorm=False, seed=4).train()
        hashes.append(init_hash(net))
        torch.manual_seed(99)
        net(torch.randn(8, *spec.data.input_shape()))
        states.append(torch.get_rng_state())
    assert len(set(hashes)) == 1
    assert all(torch.equal(state, states[0]) for state in states)


def test_each_hidden_layer_and_seed_has_a_stream_of_its_own():
    spec = _dropout_spec()
    seeds = {}
    for seed in (0, 1):
        net = build_model(spec, "rrelu", batchnorm=False, seed=seed)
        seeds[seed] = [getattr(net.body, name).seed for name in net.hidden]
    assert len(set(seeds[0])) == len(seeds[0]) == 2
    assert not set(seeds[0]) & set(seeds[1])
    again = build_model(spec, "rrelu", batchnorm=False, seed=0)
    assert [getattr(again.body, name).seed for name in again.hidden] == seeds[0]


# --- a user's stochastic activation: detected, checked -------------------------------------------

NOISY = """
import torch
from torch import nn

class Noisy(nn.Module):
    '''x times noise around 1 in training, x at evaluation'''
    def forward(self, x):
        if self.training:
            return x * torch.empty_like(x).uniform_(0.9, 1.1)
        return x

class OwnGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.draw = torch.Generator().manual_seed(0)
    def forward(self, x):
        if self.training:
            return x * torch.rand(x.shape, generator=self.draw).to(x)
        return x

class NoisyMixer(nn.Module):
    def forward(self, x):
        if self.training:
            return x - x.mean() * torch.rand_like(x)
        return x

class NoisyAtEvaluation(nn.Module):
    def forward(self, x):
        return x * torch.empty_like(x).uniform_(0.9, 1.1)

class Declared(nn.Module):
    stochastic = True
    def forward(self, x):
        return torch.relu(x)

def plain(x):
    return torch.relu(x)
"""


def _resolved(tmp_path, name):
    spec = load_spec(write_spec(tmp_path, [f"acts.py:{name}"], NOISY))
    activation = resolve_name(spec.compare.activations[0], spec)
    return activation, spec


@pytest.mark.parametrize(
    "name, stochastic",
    [("Noisy", True), ("Declared", True), ("plain", False), ("NoisyAtEvaluation", True)],
)
def test_a_custom_activation_that_draws_from_torch_is_found_stochastic(tmp_path, name, stochastic):
    activation, _ = _resolved(tmp_path, name)
    assert activation.stochastic is stochastic
    assert isinstance(activation.create(3), PrivateRandom) is stochastic


def test_a_random_element_wise_activation_passes_the_checks(tmp_path):
    for name in ("Noisy", "Declared"):
        activation, spec = _resolved(tmp_path / name, name)
        check_activation(activation, hidden_shapes(spec, activation))
    spec = load_spec(write_spec(tmp_path / "torch", ["torch.nn:RReLU"]))
    activation = resolve_name("torch.nn:RReLU", spec)
    assert str(activation) == "torch.nn.RReLU" and activation.stochastic  # not the built-in's label
    check_activation(activation, hidden_shapes(spec, activation))


@pytest.mark.parametrize(
    "name, check, words",
    [
        ("NoisyMixer", "element-wise", "also changed output element"),
        ("OwnGenerator", "reproducible", "does not come from torch's generator"),
        ("NoisyAtEvaluation", "evaluation", "in evaluation mode it gave different outputs"),
    ],
)
def test_what_is_wrong_with_a_random_activation_is_named(tmp_path, name, check, words):
    activation, spec = _resolved(tmp_path, name)
    with pytest.raises(ActivationError) as info:
        check_activation(activation, hidden_shapes(spec, activation))
    assert f"check '{check}' failed" in info.value.message and words in info.value.message


def test_a_library_class_named_like_a_built_in_is_labelled_by_its_module_path(tmp_path):
    spec = load_spec(write_spec(tmp_path, ["torch.nn:ELU"]))
    assert str(resolve_name("torch.nn:ELU", spec)) == "torch.nn.ELU"


def test_torch_rrelu_passes_on_the_quick_starts_shapes(tmp_path):
    """Where it had failed 'element-wise' (issue 28): on the CPU torch's RReLU draws slopes
    for the negative elements in order, so a nudge across zero moved later elements' draws."""
    spec = yaml.safe_load((SPECS / "quickstart.yaml").read_text())
    spec["compare"]["activations"] = ["torch.nn:RReLU", "relu"]
    (tmp_path / "quickstart.yaml").write_text(yaml.safe_dump(spec))
    spec = load_spec(tmp_path / "quickstart.yaml")
    activation = resolve_name("torch.nn:RReLU", spec)
    check_activation(activation, hidden_shapes(spec, activation))
