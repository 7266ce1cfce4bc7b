import pytest
import torch

from elubench.activations.names import parse_activation
from elubench.activations.registry import REGISTRY, registry_rows
from elubench.core.errors import ActivationError
from elubench.net.build import weight_decay_groups


def test_names_with_parameters():
    assert str(parse_activation("elu")) == "elu"
    assert parse_activation("elu(alpha=0.5)").kwargs == {"alpha": 0.5}
    assert str(parse_activation("elu(alpha=0.5)")) == "elu(alpha=0.5)"
    assert parse_activation("lrelu(0.3)").kwargs == {"a": 0.3}
    # the paper's slope is the default, so the canonical text drops it
    assert str(parse_activation("lrelu(0.1)")) == "lrelu"
    assert parse_activation("prelu(shared)").kwargs == {"init": 0.25, "shared": True}
    assert parse_activation("PReLU(init=0.1, shared=false)").kwargs == {
        "init": 0.1,
        "shared": False,
    }
    assert str(parse_activation("leaky_relu(0.2)")) == "lrelu(a=0.2)"
    assert parse_activation("lrelu(a=0.2)").slug == "lrelu_a=0.2"
    assert parse_activation("gelu(approximate=tanh)").kwargs == {"approximate": "tanh"}


@pytest.mark.parametrize(
    "text, words",
    [
        ("swishy", "unknown activation 'swishy'"),
        ("lrelu(1.5)", "must be in [0, 1)"),
        ("elu(beta=2)", "has no parameter 'beta'"),
        ("relu(0.1)", "takes no parameter"),
        ("elu(alpha=x)", "expected a number"),
        ("elu(alpha=-1)", "must be > 0"),
        ("elu(1, 2)", "got more"),
        ("gelu(approximate=fast)", "'none' or 'tanh'"),
        ("elu(", "cannot read activation"),
    ],
)
def test_bad_names(text, words):
    with pytest.raises(ActivationError) as info:
        parse_activation(text)
    assert words in info.value.render()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ActivationError) as info:
        parse_activation("swishy")
    for name in (
        "elu",
        "relu",
        "lrelu",
        "srelu",
        "prelu",
        "selu",
        "celu",
        "gelu",
        "silu",
        "mish",
        "softplus",
        "tanh",
    ):
        assert name in info.value.hint


def test_registry_rows_cover_everything():
    rows = registry_rows()
    assert [r["name"] for r in rows] == list(REGISTRY)
    assert {r["name"] for r in rows if r["implemented_by"] == "elubench"} == {"srelu"}


# Independent oracles: the papers' formulas, written out here.
FORMULAS = {
    "elu": lambda x: torch.where(x > 0, x, 1.0 * (torch.exp(x) - 1)),
    "elu(alpha=0.5)": lambda x: torch.where(x > 0, x, 0.5 * (torch.exp(x) - 1)),
    "relu": lambda x: torch.maximum(x, torch.zeros_like(x)),
    "lrelu": lambda x: torch.maximum(0.1 * x, x),
    "lrelu(0.3)": lambda x: torch.maximum(0.3 * x, x),
    "srelu": lambda x: torch.maximum(torch.full_like(x, -1.0), x),
    "prelu": lambda x: torch.where(x > 0, x, 0.25 * x),
    "celu": lambda x: torch.clamp(x, min=0) + torch.clamp(torch.exp(x) - 1, max=0),
    "silu": lambda x: x / (1 + torch.exp(-x)),
    "softplus": lambda x: torch.log1p(torch.exp(x)),
    "tanh": torch.tanh,
    "mish": lambda x: x * torch.tanh(torch.log1p(torch.exp(x))),
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / 2**0.5)),
    "selu": lambda x: (
        1.0507009873554805 * torch.where(x > 0, x, 1.6732632423543772 * (torch.exp(x) - 1))
    ),
}


def _inputs():
    # away from the kinks at 0 and -1, where one-sided derivatives differ
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    x = x[(x.abs() > 1e-3) & ((x + 1).abs() > 1e-3)]
    return x.reshape(1, -1, 1, 1).repeat(2, 1, 1, 1)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_against_formula(name):
    x = _inputs()
    module = parse_activation(name).create(x.shape[1]).double()
    torch.testing.assert_close(module(x.clone()), FORMULAS[name](x), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_gradcheck(name):
    x = _inputs().requires_grad_(True)
    module = parse_activation(name).create(x.shape[1]).double()
    # through a copy: most activations work in place, as they do after a conv in the net
    assert torch.autograd.gradcheck(lambda t: module(t * 1.0), (x,), eps=1e-6, atol=1e-5)


def test_elu_derivative_is_elu_plus_alpha_for_negative_inputs():
    x = torch.linspace(-3, -0.01, 50, dtype=torch.float64, requires_grad=True)
    y = parse_activation("elu").create(1)(x * 1.0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, y.detach() + 1.0)


def test_srelu_gradient_is_one_above_the_floor_and_zero_below():
    x = torch.tensor([-2.0, -0.5, 0.5], requires_grad=True)
    parse_activation("srelu").create(1)(x * 1.0).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0]


def test_prelu_channelwise_and_shared():
    assert parse_activation("prelu").create(16).weight.shape == (16,)
    assert parse_activation("prelu(shared)").create(16).weight.shape == (1,)
    assert parse_activation("prelu").create(16).weight.detach().eq(0.25).all()


def test_prelu_slopes_and_bn_take_no_weight_decay():
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        parse_activation("prelu").create(4),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    decay, no_decay = weight_decay_groups(model, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0

    def ids(group):
        return {id(p) for p in group["params"]}

    assert ids(no_decay) == {id(model[1].weight), id(model[1].bias), id(model[2].weight)}
    assert ids(decay) == {
        id(model[0].weight),
        id(model[0].bias),
        id(model[4].weight),
        id(model[4].bias),
    }
