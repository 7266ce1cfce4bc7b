"""The bad-input corpus: every mistake a user can make ends in one clear message naming what
and where, exit code 2, no traceback, and nothing already recorded is changed."""

import hashlib
import json

import pytest
import yaml
from conftest import BAD_ACTIVATIONS, TEN, make_results, tiny_spec


def _snapshot(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def world(tmp_path):
    """A results tree with recorded runs (of spec `tiny` and of `demo`), and a spec file."""
    results = tmp_path / "results"
    make_results(results, TEN)  # spec "demo"
    make_results(
        results / "only-tiny",
        {"elu": [3, 4], "relu": [5, 6]},
        spec_name="tiny",
        spec_hash="not-this-one",
    )
    (results / "only-tiny" / "tiny" / "spec.json").write_text(
        json.dumps({"spec_hash": "not-this-one"})
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(), sort_keys=False))
    return tmp_path, results, spec


def _two_experiments(tmp_path, a: dict, b: dict):
    """A results folder with two experiments, a and b, from their error counts."""
    root = tmp_path / "two"
    make_results(root, a, spec_name="a")
    make_results(root, b, spec_name="b")
    return root


def _spec_file(tmp_path, content):
    path = tmp_path / "bad.yaml"
    path.write_text(
        content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    )
    return path


def _damaged_mnist(t):
    """A data folder whose MNIST training labels are one byte short of the real file's size."""
    raw = t / "damaged" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "train-labels-idx1-ubyte").write_bytes(bytes(60_007))
    return t / "damaged"


_MNIST = tiny_spec(name="m", data={"dataset": "mnist"}, model={"stacks": ["1x8x3", "1x10x1"]})


# A user's activations file (issue 10): each function fails one check before anything trains.
_ACTS = BAD_ACTIVATIONS


def _custom(t, name, command="show"):
    """A spec beside acts.py that lists `name`, and the arguments of `command` on it."""
    (t / "acts.py").write_text(_ACTS)
    spec = _spec_file(t, tiny_spec(compare={"activations": [name, "relu"], "batchnorm": [False]}))
    return (
        [command, spec]
        if command == "show"
        else [command, spec, "--results", t / "results", "--device", "cpu"]
    )


# Nine levels of nine aliases: 9**9 strings once expanded (tests/test_hostile_specs.py)
_LAUGHS = (
    "\n".join(
        ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [
            f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]"
            for previous, name in zip("abcdefgh", "bcdefghi")
        ]
    )
    + "\n"
)


def _sequential(t, s, **changes):
    """A results folder whose sequential.json fixed another design for spec `s` (alpha 0.01);
    `changes` edit the stored file's fields (a string: written as is)."""
    from elubench.execution.sequential import sequential_plan
    from elubench.spec.loader import load_spec
    from elubench.spec.matrix import select

    if not s.exists():  # the corpus's own check builds every case's arguments only
        return t / "seq"
    spec = load_spec(s, ["compare.until_decided=true"])
    folder = t / "seq" / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps({"spec_name": spec.name, "spec_hash": spec.hash}))
    plan = sequential_plan(spec, select(spec)).model_dump(mode="json")
    (folder / "sequential.json").write_text(json.dumps({**plan, "alpha": 0.01, **changes}))
    return t / "seq"


def _corrupt_design(t):
    root = make_results(t / "design", {"relu": [60, 61], "elu": [50, 52]})
    (root / "demo" / "sequential.json").write_text("{half")
    return root


_UNTIL = ["--until-decided", "--device", "cpu"]

# fmt: off
# (a table: one case a line or two reads better than the formatter's one value a line)
CASES = {
    # spec files
    "malformed yaml": (lambda t, r, s: ["show", _spec_file(t, "name: [x\n")], "not valid YAML"),
    "empty spec": (lambda t, r, s: ["show", _spec_file(t, "")], "empty"),
    "spec is a directory": (lambda t, r, s: ["show", t], "cannot read the spec"),
    "no such spec": (lambda t, r, s: ["run", t / "nope.yaml"], "no such spec file"),
    "duplicate key": (lambda t, r, s: ["show", _spec_file(t, "name: a\nname: b\n")], "appears twice"),
    "wrong type": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(train={"iterations": "ten"}))],
                   "train.iterations"),
    "unknown top key": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(extra=1))], "unknown key 'extra'"),
    "unknown nested key": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(
        data={"dataset": "digits", "preproces": "none"}))], "unknown key 'preproces'"),
    "bad notation": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(
        model={"stacks": ["1x8z3", "1x10x1"]}))], "expected 'x' or '×'"),
    "map below 1x1": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(
        model={"stacks": ["1x8x3"] * 4 + ["1x10x1"], "pool": ["max2"] * 4 + ["none"]}))], "below 1x1"),
    "output units": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(
        model={"stacks": ["1x8x3", "1x9x1"]}))], "10 classes"),
    "dropout range": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(
        model={"stacks": ["1x8x3", "1x10x1"], "dropout": [1.5, 0.0]}))], "[0, 1)"),
    "negative lr": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(
        train={"lr": -1, "iterations": 3}))], "> 0"),
    "unknown activation in spec": (lambda t, r, s: ["show", _spec_file(t, tiny_spec(
        compare={"activations": ["relu", "swish2"]}))], "unknown activation 'swish2'"),
    "bad activation parameter": (lambda t, r, s: ["show", s, "-a", "lrelu(2)"], "must be in [0, 1)"),
    # custom activations (issue 10): found when the spec is read, checked before anything trains
    "custom module missing": (lambda t, r, s: _custom(t, "no_such_module_xyz:f"),
                              "no module named 'no_such_module_xyz'"),
    "custom attribute missing": (lambda t, r, s: _custom(t, "acts.py:nothere"), "has no attribute 'nothere'"),
    "custom not callable": (lambda t, r, s: _custom(t, "acts.py:not_callable"), "is not callable"),
    "custom changes the shape": (lambda t, r, s: _custom(t, "acts.py:shrinks", "run"),
                                 "check 'call' failed: it changes the shape"),
    "custom not element-wise": (lambda t, r, s: _custom(t, "acts.py:mixes", "run"),
                                "check 'element-wise' failed"),
    "custom returns NaN": (lambda t, r, s: _custom(t, "acts.py:nan"), "check 'finite' failed: it returns nan"),
    "custom raises": (lambda t, r, s: _custom(t, "acts.py:raises"), "RuntimeError: boom"),
    "custom file missing": (lambda t, r, s: _custom(t, "../elsewhere/acts.py:f"), "no such file"),
    "custom file is a folder": (lambda t, r, s: _custom(t, "sub.py:f") if (t / "sub.py").mkdir() is None
                                else None, "is a folder, not a Python file"),
    "custom name clash": (lambda t, r, s: _custom(t, "acts.py:elu"), "activation name clash"),
    "custom flag on run": (lambda t, r, s: ["run", s, "--results", r, "-a", "relu,acts.py:f"], "--activations"),
    "custom fails a check on bench": (lambda t, r, s: _custom(t, "acts.py:nan")[:1] and
                                      ["bench", t / "bad.yaml", "-a", "acts.py:nan"], "check 'finite' failed"),
    # hostile specs (issue 15; tests/test_hostile_specs.py has the timings and the memory bounds)
    "billion laughs": (lambda t, r, s: ["show", _spec_file(t, _LAUGHS)], "more than 10,000 values"),
    "10,000 nested brackets": (lambda t, r, s: ["show", _spec_file(t, "name: " + "[" * 10000 + "]" * 10000)],
                               "nests deeper than 32"),
    "5,000-digit integer": (lambda t, r, s: ["show", _spec_file(t, "name: " + "9" * 5000)], "5000 digits"),
    "units past the limit": (lambda t, r, s: ["run", _spec_file(t, tiny_spec(model={"stacks": [
        "1x100000000x3", "1x10x1"]})), "--results", r, "--dry-run"], "at most 65,536"),
    "infinite width": (lambda t, r, s: ["show", s, "--width", "inf"], "finite number"),
    "seeds flag past the limit": (lambda t, r, s: ["run", s, "--results", r, "--seeds", "1000000000"],
                                  "--seeds"),
    "run cannot fit in memory": (lambda t, r, s: ["run", _spec_file(t, tiny_spec(  # petabytes
        data={"dataset": "synthetic", "synthetic": {"train_size": 100000}}, model={"stacks": [
            "1x65536x3", "1x10x1"]}, train={"batch_size": 65536, "lr": 0.1, "iterations": 2})),
        "--results", r, "--device", "cpu"], "one run needs about"),
    # command-line overrides and flags
    "unknown activation flag": (lambda t, r, s: ["run", s, "--results", r, "-a", "relu,nope"],
                                "unknown activation 'nope'"),
    "bad override": (lambda t, r, s: ["run", s, "--results", r, "--set", "train.iterations"],
                     "cannot read the override"),
    "override unknown key": (lambda t, r, s: ["run", s, "--results", r, "--set", "train.iters=3"],
                             "unknown key 'iters'"),
    "override wrong type": (lambda t, r, s: ["run", s, "--results", r, "--set", "train.batch_size=big"],
                            "--set train.batch_size=big"),
    "width zero": (lambda t, r, s: ["show", s, "--width", "0"], "greater than 0"),
    "bad batchnorm flag": (lambda t, r, s: ["run", s, "--results", r, "--batchnorm", "maybe"],
                           "use on, off or both"),
    "unknown device": (lambda t, r, s: ["run", s, "--results", r, "--device", "tpu"], "unknown device"),
    "cluster flag without its executor": (lambda t, r, s: ["run", s, "--results", r, "--ray-address",
                                                           "auto"], "--ray-address applies to --executor ray"),
    "zero threads": (lambda t, r, s: ["run", s, "--results", r, "--threads", "0"], "--threads"),
    "missing cuda": (lambda t, r, s: ["run", s, "--results", r, "--device", "cuda"], "CUDA is not available"),
    "bad precision": (lambda t, r, s: ["run", s, "--results", r, "--precision", "fp8"], "train.precision"),
    # data
    "missing dataset": (lambda t, r, s: ["run", _spec_file(t, tiny_spec(
        name="m", data={"dataset": "mnist"}, model={"stacks": ["1x8x3", "1x10x1"]})),
        "--results", r, "--data-dir", t / "empty", "--device", "cpu"], "--download"),
    "damaged dataset": (lambda t, r, s: ["run", _spec_file(t, _MNIST), "--results", r, "--data-dir",
                                         _damaged_mnist(t), "--device", "cpu"], "60,007 bytes"),
    "data missing dataset": (lambda t, r, s: ["data", _spec_file(t, _MNIST), "--data-dir", t / "empty"],
                             "mnist was not found"),
    "data damaged dataset": (lambda t, r, s: ["data", _spec_file(t, _MNIST), "--data-dir",
                                              _damaged_mnist(t), "--json"], "is damaged"),
    "data no such spec": (lambda t, r, s: ["data", t / "nope.yaml"], "no such spec file"),
    "export nothing to export to": (lambda t, r, s: ["export", r], "nothing to export to"),
    "export into the results": (lambda t, r, s: ["export", t, "--tensorboard", t / "tb"],
                                "would write into the results folder"),
    "signal missing dataset": (lambda t, r, s: ["signal", _spec_file(t, _MNIST), "--data-dir", t / "empty",
                                                "--out", r], "mnist was not found"),
    "signal damaged dataset": (lambda t, r, s: ["signal", _spec_file(t, _MNIST), "--data-dir",
                                                _damaged_mnist(t), "--out", r], "60,007 bytes"),
    "signal custom raises": (lambda t, r, s: ["signal", _custom(t, "acts.py:raises")[1], "--out", r],
                             "RuntimeError: boom"),
    "signal unknown activation": (lambda t, r, s: ["signal", s, "-a", "nosuch", "--out", r], "nosuch"),
    "imagefolder missing root": (lambda t, r, s: ["run", _spec_file(t, tiny_spec(
        name="i", data={"dataset": "imagefolder", "imagefolder": {"root": str(t / "no-images"), "crop": 8,
                                                                  "resize": 8, "classes": 10}})),
        "--results", r, "--device", "cpu"], "no-images"),
    # results folders
    "unwritable results": (lambda t, r, s: ["run", s, "--results", r / "demo" / "runs" / "elu-nobn-he-s000" /
                                            "run.json" / "x", "--device", "cpu"], "cannot write results"),
    "spec changed under results": (lambda t, r, s: ["run", s, "--results", r / "only-tiny", "--device", "cpu"],
                                   "refusing to mix"),
    "out is a folder": (lambda t, r, s: ["compare", r, "--spec", "demo", "--out", t], "--out names the file"),
    "negative checkpoint interval": (lambda t, r, s: ["run", s, "--results", r, "--checkpoint-every", "-5"],
                                     "--checkpoint-every"),
    "nan checkpoint interval": (lambda t, r, s: ["run", s, "--results", r, "--checkpoint-every", "nan"],
                                "--checkpoint-every"),
    "compare empty folder": (lambda t, r, s: ["compare", t / "empty-results"], "no run records"),
    "compare missing folder": (lambda t, r, s: ["compare", t / "missing"], "no such results folder"),
    "compare across one experiment": (lambda t, r, s: ["compare", make_results(t / "one", TEN), "--across"],
                                      "needs two or more; there is one here"),
    "compare no shared configuration": (lambda t, r, s: ["compare", _two_experiments(
        t, {"elu": [1, 2, 3], "relu": [2, 3, 4]}, {"selu": [1, 2, 3], "tanh": [2, 3, 4]})],
        "share no configuration"),
    "compare baseline absent from one experiment": (lambda t, r, s: ["compare", _two_experiments(
        t, {"elu": [1, 2, 3], "relu": [2, 3, 4]}, {"elu": [1, 2, 3], "selu": [2, 3, 4]}), "--baseline", "relu"],
        "experiment b: baseline 'relu' is not in the data of b"),
    "compare unknown baseline": (lambda t, r, s: ["compare", r, "--spec", "demo", "--baseline", "tanh"],
                                 "baseline 'tanh'"),
    "compare unknown format": (lambda t, r, s: ["compare", r, "--spec", "demo", "--format", "docx"],
                               "unknown format"),
    "compare bad alpha": (lambda t, r, s: ["compare", r, "--spec", "demo", "--alpha", "2"], "alpha"),
    "report nothing to write": (lambda t, r, s: ["report", r, "--no-markdown"], "nothing to write"),
    "report unknown figure format": (lambda t, r, s: ["report", r, "--spec", "demo", "--figure-format",
                                                      "png,tiff"], "unknown figure format 'tiff'"),
    # the sequential design (run --until-decided, issue 24)
    "until-decided with --seeds": (lambda t, r, s: ["run", s, "--results", t / "r1", *_UNTIL, "--seeds", "3"],
                                   "--seeds does not go with --until-decided"),
    "until-decided with --shard": (lambda t, r, s: ["run", s, "--results", t / "r1", *_UNTIL, "--shard", "1/2"],
                                   "--shard does not go with --until-decided"),
    "until-decided with --force": (lambda t, r, s: ["run", s, "--results", t / "r1", *_UNTIL, "--force"],
                                   "--force does not go with --until-decided"),
    "until-decided too few seeds": (lambda t, r, s: ["run", s, "--results", t / "r1", *_UNTIL, "--max-seeds", "4"],
                                    "with at most 4 seeds no outcome can decide any of the 2 activation"),
    "until-decided zero seeds": (lambda t, r, s: ["run", s, "--results", t / "r1", *_UNTIL, "--max-seeds", "0"],
                                 "--max-seeds"),
    "until-decided nothing to compare": (lambda t, r, s: ["run", s, "--results", t / "r1", *_UNTIL, "-a", "relu",
                                                          "--batchnorm", "off"], "nothing to compare"),
    "until-decided short seed list": (lambda t, r, s: ["run", _spec_file(t, tiny_spec(compare={
        "activations": ["elu", "relu"], "seeds": [3, 5, 7], "until_decided": True}))],
        "until_decided trains up to max_seeds (20) seeds, but seeds lists 3"),
    "until-decided another design": (lambda t, r, s: ["run", s, "--results", _sequential(t, s), *_UNTIL],
                                     "differs from this one (alpha: 0.01 -> 0.05)"),
    "until-decided bad effects": (lambda t, r, s: ["run", s, "--results", t / "r1", *_UNTIL, "--dry-run",
                                                   "--effects", "0,big"], "cannot read effect sizes"),
    "compare corrupt sequential.json": (lambda t, r, s: ["compare", _corrupt_design(t)],
                                        "corrupt sequential.json"),
    # bench
    "bench unknown activation": (lambda t, r, s: ["bench", s, "-a", "relu,nope"], "unknown activation 'nope'"),
    "bench unknown device": (lambda t, r, s: ["bench", s, "--device", "tpu"], "unknown device"),
}
# fmt: on


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_message_and_exit_2(cli, world, case):
    tmp_path, results, spec = world
    (tmp_path / "empty").mkdir(exist_ok=True)
    (tmp_path / "empty-results").mkdir(exist_ok=True)
    before = _snapshot(results)
    build, words = CASES[case]
    code, out, err = cli(*build(tmp_path, results, spec))
    assert code == 2, (out, err)
    assert words in err, err
    assert "Traceback" not in out + err
    assert _snapshot(results) == before, "a recorded file changed"


# --- not mistakes: a partial matrix is a result (issue 25) ------------------------------------


def _one_seed_with_spec(t):
    """A quick-start folder stopped after its first seed (its spec.json says ten)."""
    from conftest import quickstart_results

    folder = quickstart_results(t / "first-seed", seeds=1)
    return folder.parent


def _damaged_second_seed(t):
    root = make_results(t / "two", {"relu": [60, 61], "elu": [50, 52]})
    (root / "demo" / "runs" / "elu-nobn-he-s001" / "run.json").write_text("{not json")
    return root


# fmt: off
PARTIAL = {
    "compare one seed": (lambda t: ["compare", make_results(t / "one", {"relu": [1], "elu": [2]})],
                         ["not testable (n = 1)", "a test needs 2 or more", "6 or more paired seeds"]),
    "compare a matrix stopped after its first seed": (lambda t: ["compare", _one_seed_with_spec(t)],
        ["8 of the spec's 80 runs have a record; none yet for seeds 1–9", "not testable (n = 1)",
         "No comparison could be tested yet"]),
    "compare a configuration with no ok run": (lambda t: ["compare", make_results(
        t / "noconf", {"relu": [60, 61, 62], "elu": [None, None, None], "srelu": [55, 56, 54]})],
        ["elu 3 diverged", "not testable (n = 0)", "srelu vs relu"]),
    "compare seeds missing on one side": (lambda t: ["compare", make_results(
        t / "uneven", {"relu": [60, 61, 62, 63], "elu": [50]})], ["not testable (n = 1)"]),
    "compare every run failed": (lambda t: ["compare", make_results(t / "failed", {"relu": [None], "elu": [None]})],
                                 ["2 run(s) did not finish ok", "No comparison could be tested yet"]),
    "compare skip-bad leaves one seed": (lambda t: ["compare", _damaged_second_seed(t), "--skip-bad"],
                                         ["corrupt record(s) left out", "not testable (n = 1)"]),
    "report one seed": (lambda t: ["report", _one_seed_with_spec(t), "--figure-format", "png"],
                        ["wrote", "REPORT.md"]),
    "export one seed": (lambda t: ["export", make_results(t / "one", {"relu": [1], "elu": [2]}),
                                   "--tensorboard", t / "tb"], ["2 runs (2 ok): 2 exported"]),
}
# fmt: on


@pytest.mark.parametrize("case", sorted(PARTIAL))
def test_a_partial_matrix_is_a_result_not_a_mistake(cli, tmp_path, case):
    """What has been trained is shown (exit 0): untested comparisons say so and what they
    would need, the warnings say what is missing; no traceback, nothing recorded changes."""
    if case.startswith("export"):
        pytest.importorskip("tensorboard")
    build, words = PARTIAL[case]
    args = build(tmp_path)
    before = _snapshot(args[1])
    code, out, err = cli(*args)
    text = " ".join((out + err).split())
    assert code == 0, text
    assert all(" ".join(w.split()) in text for w in words), text
    assert "Traceback" not in text
    after = _snapshot(args[1])
    assert {k: v for k, v in after.items() if k in before} == before, "a recorded file changed"


def test_every_command_that_reads_user_input_is_in_the_corpus(tmp_path):
    """A new command (or one whose cases were dropped) fails here until the corpus covers it."""
    from elubench.cli.app import app

    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    takes_input = commands - {"activations"}  # no arguments to get wrong
    covered = {
        build(tmp_path, tmp_path / "r", tmp_path / "s.yaml")[0] for build, _ in CASES.values()
    }
    assert takes_input <= covered, f"no bad-input case for: {sorted(takes_input - covered)}"


def test_corrupt_checkpoint_is_named(cli, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            tiny_spec(compare={"activations": ["relu"], "batchnorm": [False], "seeds": 1}),
            sort_keys=False,
        )
    )
    code, _, err = cli("run", spec, "--results", tmp_path / "r", "--device", "cpu", "--dry-run")
    assert code == 0, err
    run_dir = tmp_path / "r" / "tiny" / "runs" / "relu-nobn-he-s000"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, out, err = cli("run", spec, "--results", tmp_path / "r", "--device", "cpu")
    # the run is left as it is (exit 4: a run without a record), its file named with the fix
    flat = " ".join(out.split())
    assert code == 4 and "cannot resume from this checkpoint" in flat and "checkpoint.pt" in flat
    assert "delete it to train this run from the start" in flat and "Traceback" not in out + err
    assert (run_dir / "checkpoint.pt").read_bytes() == b"not a checkpoint"
