import pytest
from conftest import SPECS, tiny_spec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from elubench.core.errors import SpecError
from elubench.spec.loader import load_spec, validate_spec
from elubench.spec.schema import Spec

PAPER_SPECS = sorted(SPECS.glob("*.yaml"))


def test_every_shipped_spec_loads():
    names = {load_spec(p).name for p in PAPER_SPECS}
    assert {
        "quickstart",
        "elu-cifar100-11",
        "elu-cifar100-18",
        "elu-cifar10-18",
        "elu-imagenet-15",
        "mnist-mlp-8x128",
        "mnist-autoencoder",
        "he-init-30layer",
    } <= names


def test_experiment_c_spec_matches_the_paper():
    spec = load_spec(SPECS / "elu-cifar100-11.yaml")
    assert spec.train.lr_at(0) == 0.01 and spec.train.lr_at(34999) == 0.01
    assert spec.train.lr_at(35000) == 0.005 and spec.train.lr_at(134999) == 0.0005
    assert spec.train.lr_at(164999) == 0.00005
    assert spec.model.dropout_rates() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.0]
    assert spec.compare.activations == ["elu", "relu", "lrelu", "srelu"]
    assert spec.reference.test_error["elu"] == (28.75, 0.24)
    assert spec.task == "classification"


def test_autoencoder_spec_validates():
    spec = load_spec(SPECS / "mnist-autoencoder.yaml")
    assert spec.task == "autoencoder"


def test_step_schedule():
    spec = load_spec(SPECS / "elu-cifar100-18.yaml")
    assert spec.train.lr_at(34999) == 0.01
    assert spec.train.lr_at(35000) == pytest.approx(0.001)
    assert spec.train.lr_at(70000) == pytest.approx(0.0001)


def test_set_overrides_are_typed_by_the_schema(write_spec):
    path = write_spec(tiny_spec())
    spec = load_spec(
        path,
        [
            "train.iterations=2000",
            "compare.activations=[elu, lrelu(0.2)]",
            "model.dropout.1=0.3",
            "compare.batchnorm=[true]",
        ],
    )
    assert spec.train.iterations == 2000
    assert spec.compare.activations == ["elu", "lrelu(a=0.2)"]
    assert spec.model.dropout == [0.0, 0.3, 0.0]
    assert spec.compare.batchnorm == [True]


def test_set_on_a_piecewise_table(write_spec):
    path = write_spec(
        tiny_spec(train={"batch_size": 32, "lr": {0: 0.1, 10: 0.01}, "iterations": 20})
    )
    spec = load_spec(path, ["train.lr.15=0.001"])
    assert spec.train.lr == {0: 0.1, 10: 0.01, 15: 0.001}


def test_width_scales_all_but_the_output_layer(write_spec):
    from elubench.activations.names import parse_activation
    from elubench.spec.layout import net_layout

    spec = load_spec(write_spec(tiny_spec()), width=0.5)
    units = [r.units for r in net_layout(spec, parse_activation("relu"), False).linear_layers]
    assert units == [4, 8, 10]
    assert spec.hash != load_spec(write_spec(tiny_spec())).hash


def test_width_rounds_half_up(write_spec):
    """6, 10 and 14 units at width 0.25 are 1.5, 2.5 and 3.5: half up gives 2, 3, 4 (Python's
    round() gave 2, 2, 4)."""
    from elubench.activations.names import parse_activation
    from elubench.spec.layout import net_layout

    spec = load_spec(
        write_spec(
            tiny_spec(model={"stacks": ["1x6x3", "1x10x3", "1x14x3", "1x10x1"], "pool": "none"})
        ),
        width=0.25,
    )
    units = [r.units for r in net_layout(spec, parse_activation("relu"), False).linear_layers]
    assert units == [2, 3, 4, 10]


# Hashes of unchanged specs as elubench computed them before the width-rounding marker and the
# imagefolder.workers exclusion (commit bb4604c): specs at width 1 without imagefolder keep them,
# so results trained before stay usable.
HASHES_BEFORE = {
    "elu-cifar100-11": "c5df849792019420",
    "digits-bias-shift": "b68bff279417adf9",
    "mnist-mlp-8x128": "5fe48777a49e44b9",
}


@pytest.mark.parametrize("name", sorted(HASHES_BEFORE))
def test_hash_of_width_1_specs_is_unchanged(name):
    spec = load_spec(SPECS / f"{name}.yaml")
    assert spec.model.width == 1
    assert "width_rounding" not in spec.run_defining()["model"]
    assert spec.hash == HASHES_BEFORE[name]


def test_width_scaled_specs_get_a_new_hash(write_spec):
    """Half-up rounding changed the net a width-scaled spec builds: its hash must differ from the
    hash the same spec had under round(), so old runs never join the new ones."""
    import hashlib
    import json

    spec = load_spec(SPECS / "quickstart.yaml", width=0.5)
    defining = spec.run_defining()
    assert defining["model"]["width_rounding"] == "half-up"
    del defining["model"]["width_rounding"]  # the run-defining part as it was before
    old = hashlib.sha256(json.dumps(defining, sort_keys=True, separators=(",", ":")).encode())
    assert spec.hash != old.hexdigest()[:16]
    assert spec.hash != load_spec(SPECS / "quickstart.yaml").hash


def _imagefolder(**folder):
    return tiny_spec(
        data={
            "dataset": "imagefolder",
            "imagefolder": {"root": "/nowhere", "resize": 16, "crop": 8, **folder},
        }
    )


def test_imagefolder_workers_do_not_change_the_hash():
    base = validate_spec(_imagefolder())
    assert "workers" not in base.run_defining()["data"]["imagefolder"]
    assert validate_spec(_imagefolder(workers=0)).hash == base.hash
    assert validate_spec(_imagefolder(workers=16)).hash == base.hash
    assert validate_spec(_imagefolder(root="/elsewhere")).hash != base.hash
    assert validate_spec(_imagefolder(crop=6)).hash != base.hash


def test_spp_with_a_single_pool_value_marks_the_hash():
    """The last conv stack is no longer pooled before SPP: such specs get a new hash; an
    explicit per-stack pool list (obeyed as before) keeps its hash."""
    model = {"stacks": ["1x8x3", "1x8x3", "1x32xFC", "1x10xFC"], "spp": [2, 1]}
    single = validate_spec(tiny_spec(model=model))
    assert single.run_defining()["model"]["spp_input"] == "last-conv-unpooled"
    listed = validate_spec(tiny_spec(model={**model, "pool": ["max2", "max2", "none", "none"]}))
    assert "spp_input" not in listed.run_defining()["model"]


def test_bracket_string_stacks_equal_the_list_form(write_spec):
    listed = load_spec(write_spec(tiny_spec()))
    text = load_spec(
        write_spec(
            tiny_spec(model={"stacks": "[1×8×3] [1x16x3]  [ 1x10x1 ]", "dropout": [0.0, 0.1, 0.0]})
        )
    )
    assert text.model.stacks == listed.model.stacks and text.hash == listed.hash


BRACKETS_TEXT = (
    "name: t\n"
    "data: {dataset: digits}\n"
    "model:\n"
    '  stacks: "[1x8x3] [1x8z3] [1x10x1]"\n'
    "train: {batch_size: 8, lr: 0.1, iterations: 5}\n"
)


def test_bracket_string_stacks_error_is_located(write_spec):
    path = write_spec(BRACKETS_TEXT)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    lines = info.value.render().splitlines()
    assert lines[0] == (
        f"{path}:4: model.stacks: expected 'x' or '×' after the number of units, found 'z'"
    )
    assert lines[1].strip() == "[1x8x3] [1x8z3] [1x10x1]"
    assert lines[2].index("^") == lines[1].index("[") + len("[1x8x3] [1x8")
    assert lines[3].startswith("  hint: write layers x units x receptive field")


def test_bracket_string_stacks_error_from_an_override(write_spec):
    path = write_spec(tiny_spec())
    with pytest.raises(SpecError) as info:
        load_spec(path, ['model.stacks="[1x8x3] [1x8x3, 1x16x] [1x10x1]"'])
    message = info.value.render()
    assert message.startswith("--set model.stacks=")
    assert "model.stacks: expected a receptive field" in message and "hint:" in message


@pytest.mark.parametrize(
    "override, words",
    [
        ("model.dropout.²=0.3", "'²' is not an index"),
        ("train.lr={0: 0.1, '²': 0.01}", "got the key '²'"),
    ],
)
def test_non_ascii_digits_in_overrides_are_spec_errors(write_spec, override, words):
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tiny_spec()), [override])
    assert words in info.value.render()


def test_hash_ignores_the_matrix_extent(write_spec):
    base = load_spec(write_spec(tiny_spec()))
    more = load_spec(write_spec(tiny_spec()), ["compare.seeds=10", "compare.activations=[elu]"])
    assert base.hash == more.hash
    longer = load_spec(write_spec(tiny_spec()), ["train.iterations=21"])
    assert base.hash != longer.hash


def _error(write_spec, content, overrides=()):
    path = write_spec(content)
    with pytest.raises(SpecError) as info:
        load_spec(path, list(overrides))
    return info.value.render()


# Each entry: the spec (dict or YAML text), overrides, and words the message must contain.
BAD = {
    "unknown top key": (tiny_spec(colour="red"), (), ["spec.yaml:", "unknown key 'colour'"]),
    "unknown nested key": (
        tiny_spec(train={"batch_size": 32, "lr": 0.1, "iterations": 5, "itrations": 9}),
        (),
        ["train.itrations", "unknown key", "allowed here:"],
    ),
    "wrong type": (
        tiny_spec(train={"batch_size": "big", "lr": 0.1, "iterations": 5}),
        (),
        ["train.batch_size", "integer"],
    ),
    "negative rate": (
        tiny_spec(train={"batch_size": 32, "lr": -0.1, "iterations": 5}),
        (),
        ["train.lr", "> 0"],
    ),
    "negative rate in a table": (
        tiny_spec(train={"batch_size": 32, "lr": {0: 0.1, 5: -1}, "iterations": 5}),
        (),
        ["train.lr", "iteration 5", "> 0"],
    ),
    "table without 0": (
        tiny_spec(train={"batch_size": 32, "lr": {5: 0.1}, "iterations": 5}),
        (),
        ["from iteration 0"],
    ),
    "dropout out of range": (
        tiny_spec(model={"stacks": ["1x8x3", "1x10x1"], "dropout": [1.0, 0.0]}),
        (),
        ["model.dropout", "[0, 1)"],
    ),
    "dropout after output": (
        tiny_spec(model={"stacks": ["1x8x3", "1x10x1"], "dropout": [0.0, 0.5]}),
        (),
        ["model.stacks[1]", "dropout after the output layer"],
    ),
    "dropout list length": (
        tiny_spec(model={"stacks": ["1x8x3", "1x10x1"], "dropout": [0.0]}),
        (),
        ["dropout lists 1 rates for 2 stacks"],
    ),
    "wrong output units": (
        tiny_spec(model={"stacks": ["1x8x3", "1x7x1"]}),
        (),
        ["model.stacks[1]", "7 units", "digits has 10 classes"],
    ),
    "map shrinks below 1x1": (
        tiny_spec(
            model={
                "stacks": ["1x8x3", "1x8x3", "1x8x3", "1x8x3", "1x10x1"],
                "pool": ["max2", "max2", "max2", "max2", "none"],
            }
        ),
        (),
        ["model.stacks[3]", "below 1x1"],
    ),
    "conv after fc": (
        tiny_spec(model={"stacks": ["1x8xFC", "1x10x1"]}),
        (),
        ["model.stacks[1]", "cannot follow a fully connected"],
    ),
    "bad notation": (
        tiny_spec(model={"stacks": ["1x8y3", "1x10x1"]}),
        (),
        ["model.stacks[0]", "expected 'x' or '×'", "^"],
    ),
    "unknown activation": (
        tiny_spec(compare={"activations": ["elu", "swishy"]}),
        (),
        ["compare.activations", "unknown activation 'swishy'", "known activations"],
    ),
    "duplicate activation": (
        tiny_spec(compare={"activations": ["lrelu", "lrelu(0.1)"]}),
        (),
        ["listed twice"],
    ),
    "both iterations and epochs": (
        tiny_spec(train={"batch_size": 8, "lr": 0.1, "iterations": 5, "epochs": 2}),
        (),
        ["exactly one of train.iterations and train.epochs"],
    ),
    "baseline not in matrix": (
        tiny_spec(compare={"activations": ["elu", "relu"], "baseline": "gelu"}),
        (),
        ["baseline 'gelu' is not in the matrix", "relu+bn"],
    ),
    "unknown dataset": (tiny_spec(data={"dataset": "svhn"}), (), ["data.dataset", "'digits'"]),
    "crop larger than image": (
        tiny_spec(data={"dataset": "digits", "augment": {"crop": 12}}),
        (),
        ["crop 12 is larger"],
    ),
    "missing section": (
        {"name": "x", "data": {"dataset": "digits"}, "train": {"iterations": 1}},
        (),
        ["missing required key 'model'"],
    ),
    "bad name": (tiny_spec(name="a b/c"), (), ["name", "pattern"]),
    "not yaml": ("name: x\ndata: [1, 2\n", (), ["spec.yaml:", "not valid YAML"]),
    "not a mapping": ("- 1\n- 2\n", (), ["a spec is a mapping"]),
    "empty": ("", (), ["empty"]),
    "duplicate key": ("name: a\nname: b\n", (), ["spec.yaml:2", "appears twice"]),
    "bad override syntax": (
        tiny_spec(),
        ["train.iterations"],
        ["cannot read the override", "key.path=value"],
    ),
    "override unknown key": (
        tiny_spec(),
        ["train.iteratons=5"],
        ["--set train.iteratons=5", "unknown key"],
    ),
    "override wrong type": (
        tiny_spec(),
        ["train.iterations=many"],
        ["--set train.iterations=many", "integer"],
    ),
    "override into a value": (tiny_spec(), ["train.batch_size.x=1"], ["single value"]),
    "autoencoder output size": (
        tiny_spec(task="autoencoder", model={"stacks": ["1x32xFC", "1x10xFC"]}),
        (),
        ["reconstruct all 64 input values", "1x64xFC"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_specs_give_one_located_message(write_spec, case):
    content, overrides, words = BAD[case]
    message = _error(write_spec, content, overrides)
    for word in words:
        assert word in message, f"{word!r} not in:\n{message}"
    assert "Traceback" not in message


def test_error_names_the_line(write_spec):
    text = (
        "name: t\n"
        "data: {dataset: digits}\n"
        "model:\n"
        "  stacks: [1x8x3, 1x10x1]\n"
        "train:\n"
        "  batch_size: 8\n"
        "  lr: 0.1\n"
        "  iterations: -3\n"
    )
    message = _error(write_spec, text)
    assert "spec.yaml:8" in message and "train.iterations" in message


def test_missing_file():
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec("does/not/exist.yaml")


def test_validate_accepts_a_dict_directly():
    spec = validate_spec(tiny_spec())
    assert spec.compare.seed_list() == [0, 1]
    assert spec.compare.labels() == ["elu", "elu+bn", "relu", "relu+bn"]
    assert spec.compare.baseline_label() == "relu"


# Property: whatever mapping a user writes, the loader answers with a spec or a SpecError.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["1x8x3", "1×10×FC", "elu", "relu(", "max2"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "name",
        "data",
        "model",
        "train",
        "compare",
        "reference",
        "task",
        "source",
        "dataset",
        "stacks",
        "dropout",
        "pool",
        "lr",
        "iterations",
        "epochs",
        "activations",
        "seeds",
        "batchnorm",
        "augment",
        "crop",
        "x",
    ]
)


@st.composite
def _mappings(draw):
    """Near-valid specs with random damage: a valid base with some keys replaced or added."""
    spec = tiny_spec()
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(["top", "data", "model", "train", "compare"]))
        target = spec if section == "top" else spec.setdefault(section, {})
        if not isinstance(target, dict):
            continue
        target[draw(_keys)] = draw(_values)
    return spec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mappings())
def test_only_spec_errors_come_out_of_the_loader(raw):
    """A near-valid spec with random damage is a Spec or one located SpecError, nothing else."""
    try:
        spec = validate_spec(raw)
    except SpecError as exc:
        assert exc.message and "<spec>" in str(exc)
    else:
        assert isinstance(spec, Spec)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), _values, max_size=6))
def test_arbitrary_mappings_give_spec_errors(raw):
    """A mapping of random keys is never a spec: the loader refuses it in one located message."""
    assume(not {"name", "data", "model", "train"} <= set(raw))  # every section: could be one
    with pytest.raises(SpecError) as refused:
        validate_spec(raw)
    assert refused.value.message and "<spec>" in str(refused.value)
