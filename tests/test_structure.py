"""The shape of the code, checked: the rules docs/architecture.md states hold in the source.
(The layers' order, cycles and private names: tests/test_layering.py.)"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_layering import LAYERS, PUBLIC, imports, modules

PACKAGE = Path(__file__).resolve().parents[1] / "elubench"
MAX_LINES = 400


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_the_folder_listing_names_the_architecture():
    """One package per layer and nothing else but the entry points, the public modules of the
    Python API and the typing marker."""
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    public = [f"{name}.py" for name in PUBLIC]
    assert entries == sorted([*LAYERS, *public, "__init__.py", "__main__.py", "py.typed"])


def test_no_module_grows_past_400_lines():
    """A module past 400 lines has more than one concern: split it (docs/architecture.md)."""
    long = {
        _relative(p): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_package_inits_import_nothing_of_their_package():
    """`import elubench.data.catalog` runs elubench/data/__init__.py first: an __init__ that
    imported its package's modules would load torch (or pandas) for a module that needs none."""
    heavy = {
        name: [target for target, _, _ in imports(path)]
        for name, path in modules().items()
        if path.name == "__init__.py" and name not in ("elubench", "elubench.cli") and imports(path)
    }
    assert heavy == {}


def test_the_trainer_knows_nothing_of_the_results_tree():
    """training writes through a RunSink; of the store it knows only the record it returns."""
    store = {
        f"{name}: {target}"
        for name, path in modules().items()
        if name.startswith("elubench.training")
        for target, _, _ in imports(path)
        if target.startswith("elubench.store") and target != "elubench.store.record"
    }
    assert store == set()
    code = "import sys, elubench.training.trainer; print('elubench.store.rundir' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_atomic_writer():
    """Only core/files.py makes temporary files to rename into place."""
    writers = [
        _relative(p) for p in _sources() if re.search(r"mkstemp|NamedTemporaryFile", p.read_text())
    ]
    # store/rundir.py's mkstemp is the writability probe of a results folder (deleted at once)
    # and a claim's content, hard-linked into place (never renamed over another's)
    assert writers == ["core/files.py", "store/rundir.py"]
    assert "os.replace(tmp" not in (PACKAGE / "store" / "rundir.py").read_text()


def test_no_code_parses_a_configuration_label():
    """Labels (relu+bn/xavier) are built by spec.config_label for display and never parsed:
    what a configuration is comes from the record's activation, batchnorm and init fields."""
    pattern = re.compile(r"""(removesuffix|endswith|partition|split)\(\s*["'](\+bn|/|\+)["']""")
    offenders = [
        f"{_relative(p)}:{n}"
        for p in _sources()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "fact, pattern, home",
    [
        ("the run statuses", r"^STATUSES\s*=", "store/record.py"),
        ("a run's identity", r"^class RunConfig\b", "spec/matrix.py"),
        ("the default-baseline rule", r"""["']relu["'] if ["']relu["'] in""", "spec/schema.py"),
        (
            "the alternatives",
            r"""["']two-sided["'],\s*["']less["'],\s*["']greater["']""",
            "spec/schema.py",
        ),
        ("the verdict rule", r"""["']no evidence["']""", "stats/verdicts.py"),
        ("the datasets", r"""["']cifar100["']""", "spec/data_section.py"),
        (
            "the results tree's file names",
            r"""["'](run\.json|metrics\.jsonl|spec\.json|checkpoint\.pt)["']""",
            "store/layout.py",
        ),
        (
            "the task's unit words",
            r"""["']MSE × 100["']|["']percentage points["']""",
            "core/units.py",
        ),
        ("the version", r"""^__version__\s*=""", "core/__init__.py"),
    ],
)
def test_one_home_per_fact(fact, pattern, home):
    """Each fact is written in one module; everything else reads it from there."""
    found = sorted({_relative(p) for p in _sources() if re.search(pattern, p.read_text(), re.M)})
    assert found == [home], fact


def test_the_record_is_its_config_and_how_it_ended():
    """Identity columns of every table and export come from RunConfig, which RunRecord extends."""
    from elubench.spec.matrix import IDENTITY, RunConfig
    from elubench.store.reader import CONFIG_COLUMNS, RUN_COLUMNS
    from elubench.store.record import RunRecord

    assert issubclass(RunRecord, RunConfig)
    assert set(IDENTITY) <= set(RUN_COLUMNS) and list(IDENTITY) == CONFIG_COLUMNS


def test_every_cli_option_is_declared_in_the_options_modules():
    """No command declares an option inline: they live in cli/options.py and
    cli/executor_options.py (the root's --version aside)."""
    inline = []
    for path in (PACKAGE / "cli").glob("*.py"):
        if path.name in ("options.py", "executor_options.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("Option", "Argument")
                and not (
                    path.name == "app.py"
                    and any(
                        isinstance(a, ast.Constant) and a.value == "--version" for a in node.args
                    )
                )
            ):
                inline.append(f"{path.name}:{node.lineno}")
    assert inline == []


def test_the_run_command_is_thin():
    """`run` parses, builds one campaign and hands it on: its body is a few statements."""
    tree = ast.parse((PACKAGE / "cli" / "training.py").read_text())
    run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
    body = [s for s in run.body[1:] if not isinstance(s, (ast.Import, ast.ImportFrom))]
    assert isinstance(run.body[0].value, ast.Constant) and len(body) <= 3


@pytest.mark.parametrize(
    "module",
    [
        "cli",
        "execution.campaign",
        "spec.schema",
        "spec.loader",
        "spec.notation",
        "spec.layout",
        "spec.matrix",
        "store.record",
        "store.reader",
        "store.rundir",
        "stats",
        "reporting.tables",
        "reporting.analysis",
        "core.files",
        "data.catalog",
        "export.runs",
        "export.tensorboard",
        "export.mlflow",
        "net.memory",
    ],
)
def test_modules_the_command_line_reads_import_no_torch(module):
    code = f"import sys, elubench.{module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", module


def test_help_imports_none_of_the_heavy_packages():
    """`elubench --help` starts fast: torch, pandas, scipy, matplotlib, tensorboard and mlflow
    load inside the commands that use them (checked with -X importtime, as a user would)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "elubench", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "export" in out.stdout  # the help was printed
    loaded = {
        line.split("|")[-1].strip().split(".")[0]
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    heavy = {"torch", "pandas", "scipy", "matplotlib", "tensorboard", "mlflow"}
    assert loaded & heavy == set() and "typer" in loaded
