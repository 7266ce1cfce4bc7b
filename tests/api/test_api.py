"""The Python API (issue 26): importable from `elubench`, cheap to import, over the same engine
as the command line: its numbers are the CLI's on the same tree, its tables the run.json and
metrics.jsonl files' own, its mistakes exceptions from `elubench.errors`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import SPECS, tiny_spec

import elubench
from elubench.errors import ElubenchError, SpecError, StoreError

TRAIN = {"batch_size": 32, "lr": 0.05, "iterations": 30, "eval_every": 10}


def _spec_file(folder, **changes):
    folder.mkdir(parents=True, exist_ok=True)
    spec = tiny_spec(
        train=TRAIN,
        compare={"activations": ["elu", "relu"], "batchnorm": [False, True], "seeds": 3},
        **changes,
    )
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny matrix trained through the API: 2 activations x BN off/on x 3 seeds."""
    folder = tmp_path_factory.mktemp("api")
    spec = elubench.load_spec(_spec_file(folder / "spec"))
    summary = elubench.run(spec, results=folder / "results", progress=False)
    return spec, summary, folder / "results"


def _loaded(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    return {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines()}


def test_import_elubench_loads_no_heavy_library():
    heavy = {"torch", "pandas", "scipy", "matplotlib", "numpy", "rich", "pydantic"}
    assert not _loaded("import elubench") & heavy


def test_the_api_loads_torch_only_to_train(trained):
    """Reading a spec and comparing results (every public name touched) needs no torch."""
    _, _, results = trained
    code = (
        "import elubench; [getattr(elubench, n) for n in elubench.__all__]; "
        f"elubench.load_spec({str(SPECS / 'quickstart.yaml')!r}); "
        f"elubench.compare({str(results)!r}).to_json()"
    )
    assert "torch" not in _loaded(code)


def test_every_public_name_is_listed_and_resolves():
    assert set(dir(elubench)) == set(elubench.__all__)
    for name in elubench.__all__:
        assert getattr(elubench, name) is not None, name
    assert callable(elubench.plots.error_curves) and issubclass(
        elubench.errors.SpecError, Exception
    )
    with pytest.raises(AttributeError):
        elubench.no_such_name  # noqa: B018


def test_the_report_function_is_not_shadowed_by_a_package():
    """`elubench.report` stays the function after every module is imported (a subpackage of
    that name would replace it on the package once loaded)."""
    import elubench.reporting.markdown

    assert callable(elubench.report) and elubench.report.__module__ == "elubench.api.reports"


def test_load_spec_takes_overrides_as_a_mapping_keyword_paths_or_set_texts(tmp_path):
    path = _spec_file(tmp_path)
    assert elubench.load_spec(path, {"train.iterations": 7}).train.iterations == 7
    assert elubench.load_spec(path, train__iterations=8).train.iterations == 8
    assert elubench.load_spec(path, ["train.iterations=9"]).train.iterations == 9
    chosen = elubench.load_spec(path, compare__activations=["relu", "lrelu(0.2)"])
    assert chosen.compare.activations == ["relu", "lrelu(a=0.2)"]
    with pytest.raises(SpecError, match="train.iterations"):
        elubench.load_spec(path, train__iterations=-1)


def test_run_records_every_run_and_reruns_train_nothing(trained):
    spec, summary, results = trained
    assert summary.complete and summary.exit_code == 0 and summary.missing == {}
    files = sorted((results / spec.name / "runs").glob("*/run.json"))
    assert len(files) == len(summary.records) == 12
    on_disk = {json.loads(f.read_text())["run_id"]: json.loads(f.read_text()) for f in files}
    assert {r["run_id"]: r for r in summary.records} == on_disk
    frame = summary.to_frame()
    assert len(frame) == 12 and set(frame["status"]) == {"ok"}
    again = elubench.run(spec, results=results, progress=False)
    assert {r["run_id"]: r for r in again.records} == on_disk  # none retrained
    assert "12 of 12 runs recorded" in repr(again)


def test_run_selects_as_the_flags_do_and_refuses_a_mistake_before_training(trained, tmp_path):
    spec, _, results = trained
    few = elubench.run(
        spec, results=results, activations="elu", batchnorm="off", seeds=2, progress=False
    )
    assert sorted(r["run_id"] for r in few.records) == ["elu-nobn-he-s000", "elu-nobn-he-s001"]
    with pytest.raises(SpecError, match="unknown activation"):
        elubench.run(spec, results=tmp_path, activations="nope", progress=False)
    with pytest.raises(SpecError, match="overrides and width apply to a spec file"):
        elubench.run(spec, results=tmp_path, overrides={"train.iterations": 5}, progress=False)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("format_", ["json", "markdown", "latex", "csv"])
def test_compare_gives_exactly_what_the_cli_prints(trained, cli, format_):
    _, _, results = trained
    code, out, err = cli("compare", results, "--format", format_)
    assert code == 0, err
    comparison = elubench.compare(results)
    assert getattr(comparison, f"to_{format_}")().rstrip("\n") == out.rstrip("\n")


def test_compare_tables_are_the_json_numbers(trained, cli):
    _, _, results = trained
    comparison = elubench.compare(results, alpha=0.1, rope=1.0)
    payload = json.loads(comparison.to_json())
    for key, frame in comparison.tables.items():
        if key == "friedman":
            continue  # the JSON gives the Friedman test as an object (comparison.omnibus)
        rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
        assert rows == payload["tables"][key], key  # exactly: JSON writes a float's repr
    assert comparison.omnibus == payload["friedman"]
    assert comparison.methods == payload["methods"] and payload["alpha"] == 0.1
    paired = comparison.paired
    assert set(paired["verdict"]) <= {"better", "worse", "no evidence"}
    assert "<table" in comparison._repr_html_() and "methods" in comparison._repr_html_()


def test_compare_refuses_a_bad_option_naming_it(trained):
    _, _, results = trained
    with pytest.raises(ElubenchError) as info:
        elubench.compare(results, alpha=2)
    assert info.value.where == "alpha"
    with pytest.raises(StoreError, match="no such results folder"):
        elubench.compare(results / "nothing")


def test_load_results_tables_hold_the_files_numbers(trained):
    spec, summary, results = trained
    loaded = elubench.load_results(results)
    assert len(loaded.runs) == 12 and list(loaded.specs) == [spec.name]
    by_id = {r["run_id"]: r for r in summary.records}
    for row in loaded.runs.itertuples():
        assert row.test_errors == by_id[row.run_id]["test_errors"]
        assert row.wall_seconds == by_id[row.run_id]["wall_seconds"]
    lines = []
    for folder in (results / spec.name / "runs").iterdir():
        for text in (folder / "metrics.jsonl").read_text().splitlines():
            lines.append((folder.name, json.loads(text)))
    assert len(loaded.evaluations) == len(lines) == 12 * 4
    evaluations = loaded.evaluations.set_index(["run_id", "iteration"])
    for run_id, line in lines:
        row = evaluations.loc[(run_id, line["iteration"])]
        assert row["test_error"] == line["test_error"] and row["lr"] == line["lr"]
        for layer, stats in line["activations"].items():
            assert row[f"bias_shift.{layer}.median"] == pytest.approx(stats["median"])
    assert set(loaded.bias_shift["layer"]) == {"s1_conv1", "s2_conv2"}


def test_plots_are_matplotlib_figures_and_write_files_when_asked(trained, tmp_path):
    from matplotlib.figure import Figure

    _, _, results = trained
    loaded = elubench.load_results(results)
    comparison = elubench.compare(results)
    drawn = [
        elubench.plots.error_curves(loaded),
        elubench.plots.loss_curves(results),
        elubench.plots.bias_shift(loaded),
        elubench.plots.paired_seeds(loaded, out=tmp_path, formats=("png", "pdf")),
        elubench.plots.forest(comparison),
    ]
    assert all(isinstance(f, Figure) and f.elubench_caption for f in drawn)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paired_seeds.pdf", "paired_seeds.png"]
    with pytest.raises(ElubenchError, match="two or more experiments"):
        elubench.plots.critical_difference(comparison)


def test_report_writes_the_report_and_returns_its_files(trained, tmp_path):
    _, _, results = trained
    written = elubench.report(results, out=tmp_path, html=True, figure_formats="png")
    names = {p.name for p in written}
    assert {"REPORT.md", "REPORT.html"} <= names and all(p.exists() for p in written)
    with pytest.raises(ElubenchError, match="nothing to write"):
        elubench.report(results, markdown=False, html=False)


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_script_without_a_main_guard_trains_once_with_worker_processes(tmp_path, how):
    """Spawned workers do not re-run the user's script (they would train the matrix again in
    each worker; a script read from stdin cannot even be found)."""
    spec = _spec_file(tmp_path / "spec")
    script = (
        "import elubench\n"
        f"s = elubench.run({str(spec)!r}, results={str(tmp_path / 'r')!r}, seeds=1, "
        "batchnorm='off', executor='local', workers=2, progress=False)\n"
        "print('TRAINED', len(s.records), s.exit_code)\n"
    )
    if how == "file":
        (tmp_path / "train.py").write_text(script)
        command, stdin = [sys.executable, str(tmp_path / "train.py")], None
    else:
        command, stdin = [sys.executable, "-"], script
    out = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("TRAINED") == 1 and "TRAINED 2 0" in out.stdout
