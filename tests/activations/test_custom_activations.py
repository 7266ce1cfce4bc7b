"""Custom activations (issue 10): names that point at code, their code identity in the spec
hash, binding their parameters, the checks before training, paired init and weight decay.
Training them end to end (serial, workers, Ray, a package's entry point) is test_custom_runs."""

from __future__ import annotations

import math
import shutil
import textwrap

import pytest
import torch
import yaml
from conftest import BAD_ACTIVATIONS, SPECS, tiny_spec

from elubench.activations.checks import check_activation
from elubench.activations.code import resolve_name
from elubench.activations.names import CustomRef, parse_activation
from elubench.activations.registry import Activation
from elubench.core.errors import ActivationError, ElubenchError, SpecError
from elubench.net.checks import hidden_shapes
from elubench.spec.loader import load_spec

EXAMPLE = SPECS / "examples" / "activations.py"


def write_spec(folder, activations, source=None, name="acts.py", **changes):
    """A tiny spec in `folder` listing `activations`, beside a file `name` holding `source`."""
    folder.mkdir(parents=True, exist_ok=True)
    if source is not None:
        (folder / name).write_text(textwrap.dedent(source))
    spec = tiny_spec(
        compare={"activations": activations, "batchnorm": [False], "seeds": 1}, **changes
    )
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def example_spec(folder, activations, **changes):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE, folder / "activations.py")
    return write_spec(folder, activations, **changes)


# --- names that point at code (pure parsing) ---------------------------------------------------


def test_names_that_point_at_code_parse_without_importing_anything():
    ref = parse_activation(" acts.py:isrlu( alpha = 0.50 ) ")
    assert (
        isinstance(ref, CustomRef) and ref.kind == "file" and str(ref) == "acts.py:isrlu(alpha=0.5)"
    )
    assert parse_activation("sub/dir/acts.py:PISRLU(0.5,shared)").args == (
        (None, 0.5),
        (None, "shared"),
    )
    module = parse_activation("mypkg.acts:ISRLU")
    assert (
        module.kind == "module" and str(module) == "mypkg.acts:ISRLU" and module.param_count(8) == 0
    )
    # built-ins and their canonical text and run-id slugs are unchanged
    assert str(parse_activation("lrelu(0.2)")) == "lrelu(a=0.2)"
    assert parse_activation("lrelu(a=0.2)").slug == "lrelu_a=0.2"


@pytest.mark.parametrize(
    "text, words",
    [
        ("acts.py:1x", "not a Python attribute name"),
        ("dir/acts.txt:f", "neither a .py file nor a module name"),
        ("acts.py:f(alpha=1, 2)", "a positional parameter after a named one"),
        ("acts.py:f(alpha=1, alpha=2)", "given twice"),
        ("acts.py:f(alpha=inf)", "must be finite"),
        ("nosuchname", "unknown activation 'nosuchname'"),
    ],
)
def test_a_malformed_reference_is_one_message(text, words):
    with pytest.raises(ActivationError, match=words.replace("(", r"\(")):
        parse_activation(text)


# --- locating: absolute files, code identity, the spec hash --------------------------------------

BUILTIN_HASHES = {  # main before custom activations: existing results folders stay valid
    "digits-bias-shift.yaml": "b68bff279417adf9",
    "elu-cifar10-18.yaml": "9d75ad9150fbb967",
    "elu-cifar100-11.yaml": "c5df849792019420",
    "elu-cifar100-18.yaml": "dce0eac9fb236dd9",
    "elu-imagenet-15.yaml": "7f9acbd9aee2a8da",
    "he-init-30layer.yaml": "21949ef89d808dfe",
    "mnist-autoencoder.yaml": "e163c340a2806543",
    "mnist-mlp-8x128.yaml": "5fe48777a49e44b9",
    "quickstart.yaml": "de67e40fd5cbbe8f",
}


@pytest.mark.parametrize("name", sorted(BUILTIN_HASHES))
def test_specs_of_built_in_activations_keep_their_hash(name):
    spec = load_spec(SPECS / name)
    assert spec.activation_code == {} and spec.hash == BUILTIN_HASHES[name]


def test_the_spec_hash_covers_the_code_and_not_its_folder(tmp_path):
    first = load_spec(example_spec(tmp_path / "a", ["activations.py:isrlu", "elu"]))
    target = str((tmp_path / "a" / "activations.py").resolve()) + ":isrlu"
    assert first.compare.activations == [target, "elu"]
    assert first.activation_code[target].startswith("sha256:")
    builtin_only = load_spec(write_spec(tmp_path / "b", ["elu"]))
    assert first.hash != builtin_only.hash
    # the same file in another folder (another checkout): the same spec
    assert (
        load_spec(example_spec(tmp_path / "c", ["activations.py:isrlu", "elu"])).hash == first.hash
    )
    # one changed byte of the code: another version of the spec
    with open(tmp_path / "a" / "activations.py", "a") as handle:
        handle.write("\n# changed\n")
    assert load_spec(tmp_path / "a" / "spec.yaml").hash != first.hash
    # the hash's own input says which code it covers, by file name
    assert first.run_defining()["activation_code"] == [
        f"activations.py:isrlu {first.activation_code[target]}"
    ]


def test_the_activation_weight_decay_setting_enters_the_hash_only_when_set(tmp_path):
    plain = load_spec(write_spec(tmp_path / "a", ["elu"]))
    train = {**tiny_spec()["train"], "optimizer": {"activation_weight_decay": 0.0001}}
    decayed = load_spec(write_spec(tmp_path / "b", ["elu"], train=train))
    assert decayed.train.optimizer.activation_weight_decay == 0.0001 and decayed.hash != plain.hash


def test_a_file_that_cannot_be_read_is_named_where_the_spec_lists_it(tmp_path):
    path = write_spec(tmp_path, ["elu", "missing.py:f"])
    with pytest.raises(SpecError) as info:
        load_spec(path)
    text = info.value.render()
    assert "compare.activations[1]" in text and "no such file" in text and "spec.yaml:" in text
    assert str(tmp_path.resolve() / "missing.py") in text


# --- resolving: the object, its parameters, its label -------------------------------------------


def test_a_function_and_a_module_class_resolve_like_built_ins(tmp_path):
    spec = load_spec(
        example_spec(tmp_path, ["activations.py:isrlu", "activations.py:PISRLU(init=0.5)"])
    )
    isrlu = resolve_name(spec.compare.activations[0], spec)
    assert (
        str(isrlu) == "isrlu" and isrlu.params == (("alpha", 1.0),) and isrlu.negative_slope is None
    )
    assert (
        str(resolve_name(spec.compare.activations[0].replace("isrlu", "isrlu(0.5)"), spec))
        == "isrlu(alpha=0.5)"
    )
    pisrlu = resolve_name(spec.compare.activations[1], spec)
    assert str(pisrlu) == "pisrlu(init=0.5)"  # the class's `name`, then the changed parameters
    module = pisrlu.create(7)  # the constructor asks for `channels`: one alpha per channel
    assert module.alpha.shape == (7,) and torch.all(module.alpha == 0.5)
    assert pisrlu.param_count(7) == 7
    from elubench.spec.layout import net_layout

    counted = net_layout(spec, pisrlu, False)
    builtin = net_layout(spec, parse_activation("elu"), False)
    assert counted.total_params - builtin.total_params == 8 + 16  # the hidden layers' channels


def test_the_example_isrlu_is_the_published_function(tmp_path):
    """Against the formula of Carlile et al. 2017 in float64 NumPy-free arithmetic, and
    autograd against central differences (torch.autograd.gradcheck)."""
    spec = load_spec(example_spec(tmp_path, ["activations.py:isrlu(alpha=3)"]))
    module = resolve_name(spec.compare.activations[0], spec).create(1)
    xs = [-50.0, -3.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 7.0]
    out = module(torch.tensor(xs, dtype=torch.float64)).tolist()
    for x, y in zip(xs, out):
        expected = x if x >= 0 else x / math.sqrt(1 + 3 * x * x)
        assert y == pytest.approx(expected, rel=1e-12, abs=1e-15)
    x = torch.linspace(-6, 6, 41, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(module, (x,))


def test_init_is_paired_for_custom_activations(tmp_path):
    """Same seed, same initial weights as every other activation; he-aware follows a
    declared negative_slope, as it does lrelu's."""
    from elubench.net.build import build_model
    from elubench.net.init import init_hash

    source = EXAMPLE.read_text() + textwrap.dedent("""
        def leaky(x, a: float = 0.1):
            return torch.nn.functional.leaky_relu(x, a)
        leaky.negative_slope = 0.1
        leaky.kinks = (0.0,)
    """)
    path = write_spec(
        tmp_path, ["acts.py:isrlu", "acts.py:PISRLU", "acts.py:leaky", "elu", "lrelu"], source
    )
    spec = load_spec(path)
    isrlu, pisrlu, leaky = (resolve_name(n, spec) for n in spec.compare.activations[:3])
    for init in ("he", "xavier", "torch-default"):
        hashes = {
            init_hash(build_model(spec, a, bn, seed=3, init=init))
            for a in (isrlu, pisrlu, leaky, parse_activation("elu"))
            for bn in (False, True)
        }
        assert len(hashes) == 1, init
    aware = {
        a: init_hash(build_model(spec, a, False, seed=3, init="he-aware"))
        for a in (isrlu, leaky, parse_activation("elu"), parse_activation("lrelu"))
    }
    assert aware[isrlu] == aware[parse_activation("elu")]  # no slope declared: plain He
    assert aware[leaky] == aware[parse_activation("lrelu")]  # slope 0.1 declared, as lrelu's
    assert aware[leaky] != aware[isrlu]
    assert init_hash(build_model(spec, isrlu, False, seed=4)) != aware[isrlu]


def test_learned_activation_parameters_get_no_weight_decay_unless_the_spec_says(tmp_path):
    from elubench.net.build import build_model, weight_decay_groups

    spec = load_spec(example_spec(tmp_path, ["activations.py:PISRLU"]))
    model = build_model(spec, resolve_name(spec.compare.activations[0], spec), True, seed=0)
    alphas = {id(p) for name, p in model.named_parameters() if name.endswith(".alpha")}
    assert len(alphas) == 2
    decay, no_decay = weight_decay_groups(model, 5e-4)
    assert alphas <= {id(p) for p in no_decay["params"]} and no_decay["weight_decay"] == 0.0
    assert not alphas & {id(p) for p in decay["params"]}
    groups = weight_decay_groups(model, 5e-4, 1e-3)
    assert {id(p) for p in groups[-1]["params"]} == alphas and groups[-1]["weight_decay"] == 1e-3
    bn = {id(p) for name, p in model.named_parameters() if "_bn." in name}
    assert bn <= {id(p) for p in groups[1]["params"]} and groups[1]["weight_decay"] == 0.0


# --- the checks before anything trains -----------------------------------------------------------

BAD = BAD_ACTIVATIONS


@pytest.mark.parametrize(
    "name, check, words",
    [
        ("shrinks", "call", "changes the shape: 2×8×8×8 in, 2×1×8×8 out"),
        ("mixes", "element-wise", "also changed output element"),
        ("nan", "finite", "returns nan at x = -50"),
        ("raises", "call", "RuntimeError: boom"),
        ("widens", "call", "changes the dtype: float32 in, float64 out"),
        ("wrong_backward", "gradcheck", "autograd gives the derivative"),
        ("grad_nan", "finite", "its gradient is nan at x = -50"),
        ("HasLinear", "no weights", "holds a Linear"),
    ],
)
def test_each_failed_check_is_one_message_naming_activation_check_and_value(
    tmp_path, name, check, words
):
    spec = load_spec(write_spec(tmp_path, [f"acts.py:{name}"], BAD))
    activation = resolve_name(spec.compare.activations[0], spec)
    with pytest.raises(ActivationError) as info:
        check_activation(activation, hidden_shapes(spec, activation))
    message = info.value.message
    assert message.startswith(f"activation {activation} (") and f"check '{check}' failed" in message
    assert words in message, message


def test_declared_channelwise_and_kinks_pass_and_the_good_examples_pass(tmp_path):
    spec = load_spec(write_spec(tmp_path, ["acts.py:Normalizes", "acts.py:kinked"], BAD))
    for name in spec.compare.activations:
        activation = resolve_name(name, spec)
        check_activation(activation, hidden_shapes(spec, activation))
    spec = load_spec(
        example_spec(tmp_path / "ex", ["activations.py:isrlu(alpha=2)", "activations.py:PISRLU"])
    )
    for name in spec.compare.activations:
        activation = resolve_name(name, spec)
        check_activation(activation, hidden_shapes(spec, activation))


def test_an_output_that_ignores_its_input_is_checked_without_a_traceback(tmp_path):
    """Its gradient with respect to the input is None (zero everywhere): finite, and every other
    check still runs (it had raised a TypeError inside the finite check)."""
    source = (
        "import torch\nfrom torch import nn\n"
        "class Flat(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.p = nn.Parameter(torch.tensor(0.5))\n"
        "    def forward(self, x):\n        return torch.zeros_like(x) + self.p\n"
    )
    spec = load_spec(write_spec(tmp_path, ["acts.py:Flat"], source))
    activation = resolve_name(spec.compare.activations[0], spec)
    try:
        check_activation(activation, hidden_shapes(spec, activation))
    except ActivationError as exc:  # a check may refuse it, but in its own words
        assert "check '" in exc.message and "TypeError" not in exc.message


@pytest.mark.parametrize(
    "name, words",
    [
        ("acts.py:not_callable", "is not callable (it is a int)"),
        ("acts.py:nothere", "has no attribute 'nothere'"),
        ("acts.py:raises(alpha=1)", "no parameter 'alpha'"),
        ("acts.py:HasLinear(channels=3)", "no parameter 'channels'"),
        ("no_such_module_xyz:f", "no module named 'no_such_module_xyz'"),
    ],
)
def test_what_cannot_be_resolved_is_one_message(tmp_path, name, words):
    with pytest.raises(ElubenchError, match=words.replace("(", r"\(").replace(")", r"\)")):
        spec = load_spec(write_spec(tmp_path, [name], BAD))
        resolve_name(spec.compare.activations[0], spec)


def test_a_name_clash_names_both(tmp_path):
    source = (
        "import torch\ndef elu(x):\n    return x\ndef f(x):\n    return x\nf.name = 'g'\n"
        "def g(x):\n    return x\n"
    )
    spec = load_spec(write_spec(tmp_path, ["acts.py:elu"], source))
    with pytest.raises(
        ActivationError, match="name clash: '.*/acts.py:elu' is named 'elu', as is the built-in elu"
    ):
        resolve_name(spec.compare.activations[0], spec)
    from elubench.spec.matrix import expand

    spec = load_spec(write_spec(tmp_path, ["acts.py:f", "acts.py:g"], source))
    with pytest.raises(ActivationError) as info:
        expand(spec)
    assert (
        "name clash" in info.value.message
        and ":f'" in info.value.message
        and ":g'" in info.value.message
    )


def test_a_resolved_custom_activation_is_an_activation(tmp_path):
    spec = load_spec(example_spec(tmp_path, ["activations.py:isrlu"]))
    activation = resolve_name(spec.compare.activations[0], spec)
    assert isinstance(activation, Activation) and activation.ref == spec.compare.activations[0]
    assert activation.slug == "isrlu" and activation.definition.formula.startswith("x if x >= 0")


def test_the_checks_meet_a_paper_nets_shapes_without_a_grid_of_its_full_maps(tmp_path, monkeypatch):
    """Every hidden layer's shape of the 18-layer CIFAR net is checked, and no call gets a
    tensor of the -50..50 grid times a full map (1001 x 192 x 32 x 32: 0.8 GB, 24 s; now
    the whole check takes about 0.6 s)."""
    from elubench.activations import checks as activation_checks
    from elubench.activations.code import with_names
    from elubench.net.checks import check_matrix
    from elubench.spec.matrix import expand

    spec = load_spec(SPECS / "elu-cifar100-18.yaml")
    spec, names = with_names(spec, [f"{EXAMPLE}:PISRLU", f"{EXAMPLE}:isrlu"], tmp_path, "-a")
    sizes = []
    call = activation_checks._call
    monkeypatch.setattr(
        activation_checks, "_call", lambda module, x: sizes.append(x.shape) or call(module, x)
    )
    check_matrix(spec, expand(spec, activations=names, seeds=1))
    shapes = hidden_shapes(spec, resolve_name(names[0], spec))
    assert len(shapes) > 5 and {(2, *shape) for shape in shapes} <= set(sizes)  # every layer's
    bound = max(
        max(2 * math.prod(shape) for shape in shapes),  # a batch of 2
        max(activation_checks.GRID * shape[0] for shape in shapes),
    )  # the grid per channel
    assert max(math.prod(size) for size in sizes) <= bound
