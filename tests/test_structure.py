"""The shape of the code, checked: the rules docs/architecture.md states hold in the source."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "elubench"


def _imports(path: Path) -> set[str]:
    """Every module a source file imports (at any depth, including inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_the_trainer_knows_nothing_of_the_results_store():
    assert not {
        m
        for m in _imports(PACKAGE / "training" / "trainer.py")
        if m.startswith(("elubench.store.rundir", "elubench.store.reader"))
    }
    code = "import sys, elubench.training.trainer; print('elubench.store.rundir' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_atomic_writer():
    """Only elubench/files.py makes temporary files to rename into place."""
    writers = [
        p.relative_to(PACKAGE).as_posix()
        for p in _sources()
        if re.search(r"mkstemp|NamedTemporaryFile", p.read_text())
    ]
    # store.py's mkstemp is the writability probe of a results folder (deleted at once)
    assert writers == ["core/files.py", "store/rundir.py"]
    assert "os.replace(tmp" not in (PACKAGE / "store" / "rundir.py").read_text()


def test_no_code_parses_a_configuration_label():
    """Labels (relu+bn/xavier) are built by spec.config_label for display and never parsed:
    what a configuration is comes from the record's activation, batchnorm and init fields."""
    pattern = re.compile(r"""(removesuffix|endswith|partition|split)\(\s*["'](\+bn|/|\+)["']""")
    offenders = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in _sources()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_one_definition_of_the_run_record_and_its_statuses():
    defined = [
        p.relative_to(PACKAGE).as_posix()
        for p in _sources()
        if re.search(r"^(STATUSES|RECORD_KEYS|RUN_COLUMNS)\s*=", p.read_text(), re.M)
    ]
    assert defined == [
        "store/reader.py",
        "store/record.py",
    ]  # results.RUN_COLUMNS is derived from it
    assert "SCALAR_FIELDS" in (PACKAGE / "store" / "reader.py").read_text()


def test_one_default_baseline_rule():
    hits = [
        p.relative_to(PACKAGE).as_posix()
        for p in _sources()
        if re.search(r"""["']relu["'] if ["']relu["'] in""", p.read_text())
    ]
    assert hits == ["spec/schema.py"]


def test_the_run_command_is_thin():
    tree = ast.parse((PACKAGE / "cli" / "training.py").read_text())
    run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
    start = min([d.lineno for d in run.decorator_list] + [run.lineno])
    assert run.end_lineno - start + 1 < 50


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
        "report.tables",
        "report.analysis",
        "core.files",
        "export.runs",
        "export.tensorboard",
        "export.mlflow",
    ],
)
def test_modules_the_command_line_reads_import_no_torch(module):
    code = f"import sys, elubench.{module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", module


def test_help_imports_no_torch_tensorboard_or_mlflow():
    """`elubench --help` starts fast: the heavy packages load inside the commands that use them."""
    code = (
        "import sys; from elubench.cli.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'tensorboard', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "export" in out.stdout and out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_modules_stay_near_300_lines():
    """A module past 450 lines has more than one concern; split it (docs/architecture.md)."""
    long = {
        p.relative_to(PACKAGE).as_posix(): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert long == {}
