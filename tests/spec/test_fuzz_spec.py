"""Fuzzing the spec layer: the notation parser, validate_spec on a valid spec with values
replaced by junk, and load_spec on generated YAML. Whatever the input, the outcome is a value
or elubench's own error with a message; any other exception is a bug.

Deterministic by default (the same examples every run, so the suite never flakes); set
ELUBENCH_FUZZ=random (and ELUBENCH_FUZZ_EXAMPLES=N to scale the counts) to explore new ones.
The whole file runs in about 20-30 s on a 2-core machine.
"""

from __future__ import annotations

import copy
import math
import os

import pytest
import yaml
from conftest import tiny_spec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from elubench.core.errors import ElubenchError

SCALE = float(os.environ.get("ELUBENCH_FUZZ_EXAMPLES", "1"))
FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=os.environ.get("ELUBENCH_FUZZ") != "random",
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def examples(n: int):
    return settings(FUZZ, max_examples=max(1, int(n * SCALE)))


def expect_own_error(call, *args, **kwargs):
    """Call; return the value, or None when it raised an ElubenchError with a message."""
    try:
        return call(*args, **kwargs)
    except ElubenchError as exc:
        assert exc.render().strip(), f"{type(exc).__name__} without a message"
        assert len(exc.render()) < 20_000, "an error message that quotes a whole input"
        return None


# --- the notation --------------------------------------------------------------------------------

NOTATION_PIECES = [
    "1",
    "8",
    "3",
    "0",
    "x",
    "X",
    "×",
    "FC",
    "fc",
    ",",
    " ",
    "[",
    "]",
    "²",
    "٣",
    "５",
    "-",
    "1000",
    "1001",
    "65536",
    "65537",
    "1024",
    "1025",
    "99999999999",
    "9" * 400,
    "0" * 40 + "7",
    "\t",
    "\n",
    "x x",
]
notation_text = st.one_of(
    st.lists(st.sampled_from(NOTATION_PIECES), max_size=25).map("".join), st.text(max_size=40)
)


def _check_layers(layers):
    from elubench.core.limits import MAX_COUNT, MAX_KERNEL, MAX_UNITS

    for layer in layers:
        assert 1 <= layer.count <= MAX_COUNT and 1 <= layer.units <= MAX_UNITS
        assert layer.kernel is None or 1 <= layer.kernel <= MAX_KERNEL


@examples(2500)
@given(notation_text)
def test_parse_stack_fuzz(text):
    from elubench.spec.notation import format_stack, parse_stack

    layers = expect_own_error(parse_stack, text)
    if layers is not None:
        _check_layers(layers)
        assert parse_stack(format_stack(layers)) == layers


@examples(1500)
@given(notation_text)
def test_parse_architecture_fuzz(text):
    from elubench.spec.notation import parse_architecture

    stacks = expect_own_error(parse_architecture, text)
    for layers in stacks or []:
        _check_layers(layers)


# --- validate_spec on a valid spec with junk in it -----------------------------------------------


def _junk(children):
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-10, max_value=10),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from(
            [
                0,
                1,
                2,
                3,
                2**31,
                2**31 - 1,
                10**9,
                10**9 + 1,
                65536,
                10**30,
                10**31,
                10**5000,
                -(10**5000),
                1e12,
            ]
        ),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([math.inf, -math.inf, math.nan, 1e-3, 1e308, 5e-324, 0.5, 64.0, 64.5]),
        st.text(max_size=12),
        st.sampled_from(
            [
                "1x8x3",
                "1x65536x3",
                "9" * 5000,
                "1e-3",
                ".inf",
                "relu",
                "elu(2)",
                "lrelu(0.1)",
                "prelu(shared)",
                "[1x8x3] [1x10x1]",
                "max2",
                "none",
                "digits",
                "synthetic",
                "imagefolder",
                "he",
                "x" * 3000,
            ]
        ),
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.integers(-3, 10**12)), children, max_size=3
        ),
    )


junk = st.recursive(st.none() | st.integers() | st.text(max_size=5), _junk, max_leaves=12)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


BASES = [
    tiny_spec(),
    tiny_spec(
        data={
            "dataset": "synthetic",
            "synthetic": {"shape": [3, 16, 16], "classes": 10, "train_size": 100, "test_size": 50},
        },
        model={
            "stacks": ["1x8x3", "1x10x1"],
            "spp": [2, 1],
            "stride": [2, 1],
            "pool": ["max2", "none"],
            "width": 0.5,
            "dropout": 0.1,
        },
    ),
    tiny_spec(
        train={
            "batch_size": 8,
            "lr": {0: 0.1, 10: 0.01},
            "epochs": 2,
            "optimizer": {"momentum": 0.5},
        },
        compare={
            "activations": ["prelu", "lrelu(0.2)"],
            "batchnorm": [True],
            "seeds": [0, 5],
            "init": ["he", "xavier"],
        },
        reference={"test_error": {"relu": [1.0, 0.5]}, "note": "n"},
    ),
]
KEYS = [
    "width",
    "seeds",
    "iterations",
    "epochs",
    "batch_size",
    "stacks",
    "crop",
    "pad",
    "shape",
    "extra",
    "synthetic",
    "imagefolder",
    "lr",
    "every",
    "initial",
    "0",
    "99999999999999",
]


@st.composite
def mutated_specs(draw):
    spec = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(spec))
        path = draw(st.sampled_from(paths[1:]))
        node = spec
        for part in path[:-1]:
            node = node[part]
        if draw(st.booleans()) and isinstance(node, dict):  # a new or replaced key
            node[draw(st.sampled_from(KEYS + [path[-1]]))] = draw(junk)
        else:
            node[path[-1]] = draw(junk)
    return spec


def _use(spec):
    """What commands do with a spec that validated: none of it may fail with a traceback."""
    from elubench.net.memory import estimate_run
    from elubench.spec.layout import net_layout
    from elubench.spec.matrix import expand

    assert spec.hash and spec.to_yaml()
    for activation in spec.compare.parsed_activations()[:2]:
        for bn in spec.compare.batchnorm:
            net_layout(spec, activation, bn)
            estimate = estimate_run(spec, activation, bn)
            assert estimate.cpu_total > 0 and estimate.device_total > 0
    assert expand(spec)


@examples(1500)
@given(mutated_specs())
def test_validate_spec_fuzz(raw):
    from elubench.spec.loader import validate_spec

    spec = expect_own_error(validate_spec, raw)
    if spec is not None:
        expect_own_error(_use, spec)


@examples(300)
@given(mutated_specs())
def test_load_spec_fuzz_on_dumped_specs(tmp_path_factory, raw):
    from elubench.spec.loader import load_spec

    try:
        text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        assume(False)
    path = tmp_path_factory.getbasetemp() / "dumped.yaml"
    path.write_text(text, encoding="utf-8")
    spec = expect_own_error(load_spec, path)
    if spec is not None:
        expect_own_error(_use, spec)


# --- load_spec on generated YAML text ------------------------------------------------------------

YAML_PIECES = [
    "name: tiny\n",
    "data: {dataset: digits}\n",
    "model:\n",
    "  stacks: [1x8x3, 1x10x1]\n",
    "train: {lr: 0.1, iterations: 3}\n",
    "train:\n  lr: 1e-3\n  iterations: 5\n",
    "compare: {seeds: 2}\n",
    "a: &a [1, 2]\n",
    "b: *a\n",
    "c: [*a, *a, *a]\n",
    "d: &d {x: *a, y: *a}\n",
    "<<: *d\n",
    "? [1, 2]\n: v\n",
    "- 1\n",
    "- - 2\n",
    "x: !!int '12x'\n",
    "x: !!python/object:os.system x\n",
    "x: !!binary AAA\n",
    "x: 2024-13-45\n",
    "x: 0x_\n",
    "x: 0b_\n",
    "x: ._\n",
    "x: 1_000e3\n",
    "x: 1:2:3\n",
    "x: " + "9" * 40 + "\n",
    "x: 0x" + "f" * 35 + "\n",
    "x: 1e99999\n",
    "x: .nan\n",
    "x: -.inf\n",
    "x: ~\n",
    "x: [" * 3,
    "]" * 3,
    "{",
    "}",
    ",",
    ": ",
    "'",
    '"',
    "&b ",
    "*b ",
    "*nope\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! tag:x\n",
    "\t",
    "\x00",
    "  ",
    "\n",
    "#c\n",
    "name: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
    "e: &e [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
]
yaml_text = st.one_of(
    st.lists(st.sampled_from(YAML_PIECES), max_size=12).map("".join), st.text(max_size=60)
)


@examples(2000)
@given(yaml_text)
def test_load_spec_fuzz_on_yaml_text(tmp_path_factory, text):
    from elubench.spec.loader import load_spec

    path = tmp_path_factory.getbasetemp() / "fuzz.yaml"
    try:
        path.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        assume(False)
    spec = expect_own_error(load_spec, path)
    if spec is not None:
        expect_own_error(_use, spec)


@examples(800)
@given(
    st.one_of(
        st.sampled_from(
            [
                "train.lr",
                "train.iterations",
                "model.width",
                "compare.seeds",
                "model.stacks",
                "model.stacks.0",
                "compare.seeds.0",
                "a.b.c",
                "train.lr.5",
                "data.synthetic.shape.1",
                "9" * 50,
                "x" * 40,
            ]
        ),
        st.text(max_size=10),
    ),
    st.one_of(st.sampled_from([p.strip() for p in YAML_PIECES]), st.text(max_size=20)),
)
def test_overrides_fuzz(tmp_path_factory, key, value):
    from elubench.spec.loader import load_spec

    path = tmp_path_factory.getbasetemp() / "base.yaml"
    if not path.exists():
        path.write_text(yaml.safe_dump(tiny_spec(), sort_keys=False))
    spec = expect_own_error(load_spec, path, [f"{key}={value}"])
    if spec is not None:
        expect_own_error(_use, spec)


@pytest.mark.parametrize("width", [1e-9, 0.5, 64.0, 1e12, math.inf, math.nan, -1.0])
def test_width_flag_fuzz_corners(tmp_path, width):
    from elubench.spec.loader import load_spec

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(), sort_keys=False))
    spec = expect_own_error(load_spec, path, [], width)
    if spec is not None:
        expect_own_error(_use, spec)
