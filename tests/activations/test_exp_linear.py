"""elubench's CPU kernel for ELU, SELU and CELU against the float64 formula, torch.autograd's
gradcheck and PyTorch's own kernels (issue 17).

Tolerance: exp(x) - 1 computed as exp(x) minus 1 loses *relative* precision for x near 0 (the
difference of two numbers close to 1), not absolute precision: its absolute error stays within
a few float32 ulps of 1 (about 2.4e-7), times alpha and scale. PyTorch's kernel (expm1) has the
same absolute error against float64. So both are checked against the float64 formula with an
absolute tolerance of 1e-6 * alpha * scale (plus 1e-6 relative, for large positive x)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.nn import functional as F

from elubench.activations.modules import SELU_ALPHA, SELU_SCALE, ExpLinear
from elubench.activations.names import parse_activation

EDGES = [
    0.0,
    -0.0,
    1e-30,
    -1e-30,
    1e-8,
    -1e-8,
    1e-3,
    -1e-3,
    0.5,
    -0.5,
    1.0,
    -1.0,
    20.0,
    -20.0,
    50.0,
    -50.0,
    -100.0,
    -1e4,
    88.0,
    1e30,
    -1e30,
    math.inf,
    -math.inf,
    math.nan,
]


@pytest.fixture(autouse=True)
def elubench_kernel(monkeypatch):
    """These tests check elubench's kernel, whichever this machine's measurement chose."""
    monkeypatch.setenv("ELUBENCH_ACTIVATION_KERNELS", "elubench")


# (name, elubench module, PyTorch's function, float64 formula)
CASES = {
    "elu": (ExpLinear(1.0), F.elu, lambda x: torch.where(x > 0, x, torch.expm1(x))),
    "elu(alpha=0.5)": (
        ExpLinear(0.5),
        lambda x: F.elu(x, 0.5),
        lambda x: torch.where(x > 0, x, 0.5 * torch.expm1(x)),
    ),
    "selu": (
        ExpLinear(SELU_ALPHA, SELU_SCALE),
        F.selu,
        lambda x: SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(x)),
    ),
    "celu(alpha=2)": (
        ExpLinear(2.0, 1.0, 0.5),
        lambda x: F.celu(x, 2.0),
        lambda x: torch.where(x > 0, x, 2.0 * torch.expm1(x / 2.0)),
    ),
}


def _inputs():
    torch.manual_seed(0)
    random = torch.randn(20_000) * 4
    return torch.cat([random, torch.tensor(EDGES)])


def _tolerance(module: ExpLinear) -> dict:
    return {"atol": 1e-6 * module.alpha * module.scale, "rtol": 1e-6, "equal_nan": True}


@pytest.mark.parametrize("name", CASES)
def test_forward_matches_the_float64_formula_as_closely_as_pytorch(name):
    module, torch_fn, formula = CASES[name]
    x = _inputs()
    exact = formula(x.double())
    ours = module(x.clone()).double()
    theirs = torch_fn(x).double()
    torch.testing.assert_close(ours, exact, **_tolerance(module))
    torch.testing.assert_close(theirs, exact, **_tolerance(module))
    torch.testing.assert_close(ours, theirs, **_tolerance(module))
    assert torch.equal(torch.isnan(ours), torch.isnan(exact))


@pytest.mark.parametrize("name", CASES)
def test_gradient_matches_pytorch_on_random_and_edge_inputs(name):
    module, torch_fn, _ = CASES[name]
    x = _inputs()
    ours_in, theirs_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    grad = torch.randn_like(x)
    module(ours_in * 1.0).backward(grad)  # * 1.0: the in-place kernel needs a non-leaf input
    torch_fn(theirs_in).backward(grad)
    torch.testing.assert_close(ours_in.grad, theirs_in.grad, **_tolerance(module))


@pytest.mark.parametrize("name", CASES)
def test_gradcheck_in_float64_away_from_the_kink(name):
    module, _, _ = CASES[name]
    torch.manual_seed(1)
    x = torch.randn(64, dtype=torch.float64) * 3
    x = torch.where(x.abs() < 1e-2, torch.full_like(x, 0.5), x).requires_grad_()
    for inplace in (False, True):
        layer = ExpLinear(module.alpha, module.scale, module.input_scale, inplace=inplace)
        assert torch.autograd.gradcheck(lambda t, layer=layer: layer(t * 1.0), (x,))


def test_in_place_equals_out_of_place_after_a_conv():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    x = torch.randn(4, 3, 8, 8)
    results = []
    for inplace in (False, True):
        conv.zero_grad()
        out = ExpLinear(1.0, inplace=inplace)(conv(x))
        out.square().sum().backward()
        results.append((out.detach(), conv.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=0, atol=0)


def test_channels_last_and_bf16_keep_working():
    x = torch.randn(4, 8, 6, 6).contiguous(memory_format=torch.channels_last)
    out = ExpLinear(1.0)(x.clone())
    assert out.is_contiguous(memory_format=torch.channels_last)
    half = ExpLinear(1.0)(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), F.elu(x), atol=2e-2, rtol=2e-2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv = torch.nn.Conv2d(8, 8, 1)
        y = ExpLinear(1.0, inplace=True)(conv(x))
    y.float().sum().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()


def test_the_registry_builds_it_and_says_where_it_runs():
    for name in ("elu", "selu", "celu(alpha=2)"):
        module = parse_activation(name).create(8)
        assert isinstance(module, ExpLinear) and module.inplace
        assert module.implementation("cpu") in ("elubench", "torch")
        assert module.implementation("cuda") == "torch"
    from elubench.activations.registry import registry_rows

    rows = {row["name"]: row for row in registry_rows()}
    assert rows["elu"]["implemented_by"] == "elubench or torch (CPU, measured), torch (GPU)"
    assert rows["relu"]["implemented_by"] == "torch"


def test_under_compile_it_is_pytorchs_kernel():
    torch.manual_seed(3)
    x = torch.randn(2, 4, 5, 5)
    compiled = torch.compile(ExpLinear(1.0))
    torch.testing.assert_close(compiled(x.clone()), F.elu(x), atol=1e-6, rtol=1e-6)


def test_either_kernel_on_request(monkeypatch):
    monkeypatch.setenv("ELUBENCH_ACTIVATION_KERNELS", "torch")
    module = ExpLinear(1.0)
    assert module.implementation("cpu") == "torch"
    x = torch.randn(100)
    torch.testing.assert_close(module(x.clone()), F.elu(x), rtol=0, atol=0)  # bit for bit
    monkeypatch.setenv("ELUBENCH_ACTIVATION_KERNELS", "elubench")
    assert module.implementation("cpu") == "elubench" and module.implementation("cuda") == "torch"


def test_the_machine_choice_is_measured_once_and_cached(monkeypatch, tmp_path):
    from elubench.activations import kernels

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("ELUBENCH_ACTIVATION_KERNELS", raising=False)
    kernels._cpu_choice.cache_clear()
    calls = []
    real = kernels.measure
    monkeypatch.setattr(kernels, "measure", lambda: calls.append(1) or real(rounds=2, calls=3))
    try:
        first = kernels.exp_linear_kernel("cpu")
        kernels._cpu_choice.cache_clear()  # a new process reads the cache instead of measuring
        assert kernels.exp_linear_kernel("cpu") == first and len(calls) == 1
        saved = json.loads((tmp_path / "elubench" / "cache" / "kernels.json").read_text())
        (entry,) = saved.values()
        assert entry["choice"] == first and entry["torch_us"] > 0 and entry["elubench_us"] > 0
        assert first == ("elubench" if entry["elubench_us"] <= 0.9 * entry["torch_us"] else "torch")
    finally:
        kernels._cpu_choice.cache_clear()
