"""Hostile specs (issue 15): a spec that would exhaust memory or the stack, ask for a net no
machine holds, or carry numbers Python or YAML cannot read is one located message and exit 2,
quickly and in bounded memory; and a run that cannot fit in memory is refused before training."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml
from conftest import ROOT, SPECS, tiny_spec

COMMANDS = [("show",), ("run", "--dry-run"), ("run",)]


def billion_laughs() -> str:
    """Nine levels of nine aliases: 9**9 = 387 million strings once expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return yaml.safe_dump(tiny_spec(), sort_keys=False) + "\n".join(lines) + "\n"


def nested(depth: int = 10_000) -> str:
    return "name: " + "[" * depth + "]" * depth + "\n"


def _with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


TINY = yaml.safe_dump(tiny_spec(), sort_keys=False)
HOSTILE = {  # name: (spec text, words the message must hold)
    "billion laughs": (billion_laughs(), "more than 10,000 values"),
    "10,000 brackets": (nested(), "nests deeper than 32 levels"),
    "units 1e8": (
        yaml.safe_dump(tiny_spec(model={"stacks": ["1x100000000x3", "1x10x1"]})),
        "units must be at most 65,536",
    ),
    "layers 1e8": (
        yaml.safe_dump(tiny_spec(model={"stacks": ["100000000x8x3", "1x10x1"]})),
        "layers must be at most 1,000",
    ),
    "kernel 1e8": (
        yaml.safe_dump(tiny_spec(model={"stacks": ["1x8x100000000", "1x10x1"]})),
        "receptive field must be at most 1,024",
    ),
    "kernel wider than the map": (
        yaml.safe_dump(tiny_spec(model={"stacks": ["1x8x99", "1x10x1"]})),
        "99×99 receptive field on a 8×8 map",
    ),
    "width 1e12": (
        yaml.safe_dump(tiny_spec(model={"stacks": ["1x8x3", "1x10x1"], "width": 1e12})),
        "model.width",
    ),
    "seeds 1e9": (
        yaml.safe_dump(tiny_spec(compare={"activations": ["relu"], "seeds": 10**9})),
        "at most 10,000 seeds",
    ),
    "a 5,000-digit integer": (
        _with(TINY, "iterations: 20", "iterations: " + "9" * 5000),
        "a whole number of 5000 digits",
    ),
    "width .inf": (_with(TINY, "  dropout:", "  width: .inf\n  dropout:"), "finite number"),
}


def _line_of(text: str, words: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if words in line)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_spec_is_one_located_message(cli, tmp_path, case, command):
    text, words = HOSTILE[case]
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    extra = ["--results", tmp_path / "results", "--device", "cpu"] if command[0] == "run" else []
    start = time.perf_counter()
    code, out, err = cli(*command, path, *extra)
    seconds = time.perf_counter() - start
    assert code == 2, (out, err)
    assert words in " ".join(err.split()), err
    assert f"{path}:" in err  # file and line
    assert "Traceback" not in out + err
    assert seconds < 5, f"{case} took {seconds:.1f} s"
    assert not (tmp_path / "results").exists()


def test_the_message_names_the_line(cli, tmp_path):
    laughs = billion_laughs()
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs)
    _, _, err = cli("show", path)
    assert f"{path}:{_line_of(laughs, 'e: &e')}:" in err  # the first entry too large on its own
    text = _with(TINY, "iterations: 20", "iterations: " + "9" * 5000)
    path.write_text(text)
    _, _, err = cli("show", path)
    assert f"{path}:{_line_of(text, 'iterations')}:" in err


@pytest.mark.parametrize("case", ["billion laughs", "10,000 brackets"])
def test_alias_bombs_and_nesting_need_little_time_and_memory(tmp_path, case):
    """In a process whose address space is capped at 2 GiB (the billion laughs took 40-50 s
    and 5.9 GB before the bounds, then died with a MemoryError)."""
    resource = pytest.importorskip("resource")
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE[case][0])
    cap = 2 * 2**30

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "elubench", "show", str(path)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=60,
        cwd=ROOT,
    )
    assert time.perf_counter() - start < 10
    assert done.returncode == 2, done.stderr
    assert HOSTILE[case][1] in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    "text, words",
    [
        ("a: &a [*a]\n", "names a node that contains it"),
        ("name: x\nsource: " + "x" * (300 * 1024) + "\n", "larger than a spec may be"),
        ("name: " + "[" * 40 + "]" * 40 + "\n", "nests deeper than 32"),
        (
            "x: &x [[[[[[[[[[1]]]]]]]]]]\n"
            + "".join(f"x{i}: &x{i} [*x{i - 1 if i else ''}]\n" for i in range(40)),
            "nests deeper than 32",
        ),
        ("name: 0x" + "f" * 40 + "\n", "a whole number of 42 digits"),
        ("name: !!int '12x'\n", "cannot read the value '12x'"),
        ("name: 2024-13-45\n", "cannot read the value '2024-13-45'"),
    ],
)
def test_other_hostile_yaml(write_spec, text, words):
    from elubench.core.errors import SpecError
    from elubench.spec.loader import load_spec

    path = write_spec(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert words in caught.value.render()
    assert str(path) in caught.value.render()


def test_a_deep_real_spec_still_loads(write_spec):
    """The bounds leave room: anchors, merges and a reference table read as before."""
    text = TINY.replace(
        "compare:", "reference:\n  test_error:\n    relu: &r [1.0, 0.1]\n    elu: *r\ncompare:"
    )
    spec = __import__("elubench.spec.loader", fromlist=["load_spec"]).load_spec(write_spec(text))
    assert spec.reference.test_error["elu"] == (1.0, 0.1)


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, value",
    [
        ("1e-3", 0.001),
        ("1e6", 1e6),
        ("1.5e-4", 1.5e-4),
        ("1.0e+2", 100.0),
        ("0.05", 0.05),
        ("2E-2", 0.02),
    ],
)
def test_exponent_floats_read_as_numbers_in_files_and_overrides(write_spec, written, value):
    from elubench.spec.loader import load_spec

    spec = load_spec(write_spec(_with(TINY, "lr: 0.05", f"lr: {written}")))
    assert spec.train.lr == pytest.approx(value)
    spec = load_spec(write_spec(TINY, "other.yaml"), [f"train.lr={written}"])
    assert spec.train.lr == pytest.approx(value)


def test_yaml_1_2_floats_leave_integers_and_text_alone(write_spec):
    from elubench.spec.loader import load_spec

    spec = load_spec(
        write_spec(TINY), ["train.iterations=1e3", "compare.activations=[elu, relu]", "name=e5x"]
    )
    assert spec.train.iterations == 1000 and isinstance(spec.train.iterations, int)
    assert spec.name == "e5x" and spec.compare.seeds == 2


def test_set_with_huge_numbers_is_a_message(cli, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(TINY)
    for override, words in [
        ("train.iterations=" + "9" * 5000, "5000 digits"),
        ("compare.seeds." + "9" * 5000 + "=1", "--set"),
        ("train.iterations=1e400", "train.iterations"),
        ("model.width=.nan", "finite number"),
        ("train.lr=1e-3", None),
    ]:
        code, out, err = cli("show", path, "--set", override)
        assert "Traceback" not in out + err
        if words is None:
            assert code == 0, err
        else:
            assert code == 2 and words in err, err


@pytest.mark.parametrize(
    "change, words",
    [
        ({"compare": {"seeds": [0, 2**31]}}, "below 2**31"),
        ({"compare": {"seeds": list(range(10_001))}}, "got a list of 10,001"),
        ({"train": {"lr": 0.1, "iterations": 10**10}}, "train.iterations"),
        ({"train": {"lr": 0.1, "epochs": 10**7}}, "train.epochs"),
        ({"train": {"lr": 0.1, "iterations": 10, "batch_size": 10**6}}, "train.batch_size"),
        ({"train": {"lr": 0.1, "iterations": 10, "eval_every": 10**10}}, "train.eval_every"),
        ({"train": {"lr": 0.1, "iterations": 10, "probe_size": 10**6}}, "train.probe_size"),
        ({"train": {"lr": {0: 0.1, 10**12: 0.01}, "iterations": 10}}, "whole numbers from 0"),
        ({"train": {"lr": 0.1, "iterations": 10**5000}}, "far too large"),
        ({"data": {"dataset": "synthetic", "synthetic": {"train_size": 10**9}}}, "train_size"),
        ({"data": {"dataset": "synthetic", "synthetic": {"shape": [3, 10**5, 32]}}}, "shape[1]"),
        ({"data": {"dataset": "synthetic", "synthetic": {"classes": 10**7}}}, "classes"),
        ({"data": {"dataset": "synthetic", "synthetic": {"noise": float("inf")}}}, "finite"),
        ({"model": {"stacks": ["1x2000x3", "1x10x1"], "width": 64}}, "at most 65,536"),
        ({"model": {"stacks": ["1000x8x3"] * 11 + ["1x10x1"], "pool": "none"}}, "11,001 layers"),
        ({"model": {"stacks": ["1x8x3", "1x10x1"], "width": float("nan")}}, "finite"),
    ],
)
def test_every_number_is_bounded(change, words):
    from elubench.core.errors import SpecError
    from elubench.spec.loader import validate_spec

    with pytest.raises(SpecError) as caught:
        validate_spec(tiny_spec(**change))
    assert words in caught.value.render()
    assert len(caught.value.render()) < 1000


def test_seeds_flag_is_bounded(cli, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(TINY)
    code, out, err = cli(
        "run", path, "--seeds", "1000000000", "--dry-run", "--results", tmp_path / "r"
    )
    assert code == 2 and "--seeds" in err and "Traceback" not in out + err


def test_long_notation_text_is_quoted_in_part():
    from elubench.core.errors import NotationError
    from elubench.spec.notation import parse_stack

    with pytest.raises(NotationError) as caught:
        parse_stack("1x8x3, " * 20_000 + "1x8x" + "9" * 5000)
    assert len(caught.value.render()) < 500 and "…" in caught.value.render()


# --- the memory estimate -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, activation, bn",
    [
        ("quickstart.yaml", "elu", False),
        ("quickstart.yaml", "prelu", True),
        ("elu-cifar100-11.yaml", "relu", True),
        ("mnist-autoencoder.yaml", "elu", False),
        ("he-init-30layer.yaml", "mish", False),
    ],
)
def test_estimated_parameters_are_the_built_models(name, activation, bn):
    from elubench.activations.names import parse_activation
    from elubench.net.build import build_model
    from elubench.net.memory import estimate_run
    from elubench.spec.loader import load_spec

    spec = load_spec(SPECS / name)
    model = build_model(spec, activation, bn)
    estimate = estimate_run(spec, parse_activation(activation), bn)
    assert estimate.params == sum(p.numel() for p in model.parameters())
    assert estimate.weights == 3 * 4 * estimate.params


def test_estimate_grows_with_batch_width_and_bn():
    from elubench.activations.names import parse_activation
    from elubench.net.memory import estimate_run
    from elubench.spec.loader import load_spec

    elu = parse_activation("elu")

    def est(*overrides, bn=False):
        return estimate_run(load_spec(SPECS / "quickstart.yaml", list(overrides)), elu, bn)

    base = est()
    assert est("train.batch_size=1024").activations > base.activations
    assert est("model.width=2").weights > base.weights
    big = est("train.batch_size=1024")  # a training step, not the evaluations, dominates
    assert est("train.batch_size=1024", bn=True).activations > big.activations
    assert est("data.train_limit=100").data < base.data
    assert base.cpu_total > base.weights + base.activations + base.data  # the process, the copies


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")
def test_activation_estimate_against_a_measured_step():
    """One training step measured as benchmarks/memory_calibration.py does (peak RSS growth
    less gradients and momentum): the estimate is an upper figure within a factor of 3."""
    from elubench.activations.names import parse_activation
    from elubench.net.memory import ACTIVATION_FACTOR, per_image
    from elubench.spec.layout import net_layout
    from elubench.spec.loader import load_spec

    case = ["specs/quickstart.yaml", "elu", True, 1024]
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory_calibration.py"), json.dumps(case)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    measured = json.loads(out.stdout)["activations"]
    plan = net_layout(load_spec(SPECS / "quickstart.yaml"), parse_activation("elu"), True)
    estimate = ACTIVATION_FACTOR * 1024 * per_image(plan, parse_activation("elu")).step * 4
    assert measured / 3 < estimate and measured < 1.5 * estimate, (measured, estimate)


def _too_big(tmp_path):
    """A net that cannot fit anywhere: 65,536 units on a 32x32 map at batch 65,536."""
    path = tmp_path / "huge.yaml"
    path.write_text(
        yaml.safe_dump(
            tiny_spec(
                name="huge",
                data={"dataset": "synthetic", "synthetic": {"shape": [3, 32, 32]}},
                model={"stacks": ["1x65536x3", "1x10x1"]},
                train={"batch_size": 65536, "lr": 0.1, "iterations": 2},
                compare={"activations": ["relu"], "batchnorm": [False], "seeds": 1},
            )
        )
    )
    return path


def test_show_prints_the_estimate_and_warns(cli, tmp_path, monkeypatch):
    code, out, _ = cli("show", SPECS / "quickstart.yaml")
    assert code == 0 and "memory of one run, estimated" in out and "warning" not in out
    monkeypatch.setattr("elubench.core.machine.trains_on_cpu", lambda device: True)
    code, out, _ = cli("show", _too_big(tmp_path))
    assert code == 0 and "warning: more than the" in " ".join(out.split())
    code, out, _ = cli("show", SPECS / "quickstart.yaml", "--json")
    memory = json.loads(out)["memory"]
    assert memory["params"] == json.loads(out)["total_params"] and memory["cpu_total_bytes"] > 0


@pytest.mark.parametrize("dry_run", [True, False])
def test_run_refuses_what_cannot_fit(cli, tmp_path, dry_run):
    flags = ["--results", tmp_path / "r", "--device", "cpu"] + (["--dry-run"] if dry_run else [])
    code, out, err = cli("run", _too_big(tmp_path), *flags)
    text = " ".join(err.split())
    assert code == 2 and "one run needs about" in text and "available on this machine" in text
    assert "--no-memory-check" in text and "Traceback" not in out + err
    assert not (tmp_path / "r" / "huge" / "runs").exists()


def test_the_check_uses_the_memory_available_and_can_be_overridden(cli, tmp_path, monkeypatch):
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            tiny_spec(compare={"activations": ["relu"], "batchnorm": [False], "seeds": 1})
        )
    )
    flags = ["--results", tmp_path / "r", "--device", "cpu", "--dry-run"]
    code, _, err = cli("run", path, *flags)
    assert code == 0, err
    monkeypatch.setattr("elubench.core.machine.available_memory", lambda: 2**20)
    code, _, err = cli("run", path, *flags)
    assert code == 2 and "1.0 MiB" in err
    code, _, err = cli("run", path, *flags, "--no-memory-check")
    assert code == 0, err


def test_the_check_divides_memory_between_runs_at_once(monkeypatch):
    from elubench.core.errors import ResourceError
    from elubench.net.memory import check_fits, largest_estimate
    from elubench.spec.loader import validate_spec
    from elubench.spec.matrix import expand

    spec = validate_spec(tiny_spec())
    configs = expand(spec)
    need = largest_estimate(spec, configs).cpu_total
    monkeypatch.setattr("elubench.core.machine.available_memory", lambda: int(1.5 * need))
    check_fits(spec, configs, "cpu", 1)
    with pytest.raises(ResourceError, match="for 2 runs at once"):
        check_fits(spec, configs, "cpu", 2)
    check_fits(spec, configs, "cpu", None)  # Ray, Slurm: the runs train elsewhere
    check_fits(spec, configs, "cpu", 2, skip=True)


def test_the_check_asks_a_cuda_device(monkeypatch):
    torch = pytest.importorskip("torch")
    from elubench.core.errors import ResourceError
    from elubench.net.memory import check_fits
    from elubench.spec.loader import validate_spec
    from elubench.spec.matrix import expand

    spec = validate_spec(tiny_spec())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: (2**20, 80 * 2**30))
    with pytest.raises(ResourceError, match="free memory of GPU 1"):
        check_fits(spec, expand(spec), "cuda:1", 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: (80 * 2**30, 80 * 2**30))
    check_fits(spec, expand(spec), "cuda:1", 1)


def test_show_and_the_new_modules_import_no_torch(tmp_path):
    code = (
        "import sys; sys.argv = ['elubench', 'show', sys.argv[1]]\n"
        "import elubench.net.memory, elubench.spec.safe_yaml, elubench.core.limits\n"
        "from elubench.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(SPECS / "quickstart.yaml")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stderr.strip().endswith("False"), done.stderr
