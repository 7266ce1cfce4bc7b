"""examples/quickstart.ipynb executed top to bottom in a real Jupyter kernel (nbclient and
ipykernel, test extras), its outputs checked: the runs recorded, the comparison shown as HTML
tables, the figures drawn, no error. About half a minute."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, SPECS

pytestmark = pytest.mark.slow

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    folder = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    # the quick start's spec from this checkout, results in a fresh folder, 3 seeds (6 runs)
    parameters.source = (
        f"SPEC = {str(SPECS / 'quickstart.yaml')!r}\nRESULTS = {str(folder / 'results')!r}\n"
        "SEEDS = 3"
    )
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return notebook, folder


def _outputs(notebook, text: str):
    """The outputs of the first code cell whose source holds `text`."""
    cell = next(c for c in notebook.cells if c.cell_type == "code" and text in c.source)
    return cell.outputs


def test_it_runs_without_an_error(executed):
    notebook, _ = executed
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in errors if o.output_type == "error"]


def test_it_trains_the_reduced_matrix(executed):
    notebook, folder = executed
    shown = [o for o in _outputs(notebook, "elubench.run(") if o.output_type == "execute_result"]
    assert "6 of 6 runs recorded" in shown[0].data["text/plain"]
    records = [json.loads(p.read_text()) for p in (folder / "results").glob("*/runs/*/run.json")]
    assert sorted(r["config"] for r in records) == ["elu"] * 3 + ["relu"] * 3


def test_the_comparison_shows_as_tables_and_the_figures_are_drawn(executed):
    notebook, _ = executed
    comparison = _outputs(notebook, "comparison = elubench.compare(")[0].data
    assert "<table" in comparison["text/html"] and "elu vs relu" in comparison["text/html"]
    paired = _outputs(notebook, "comparison.paired[")[0].data
    assert "<table" in paired["text/html"] and "verdict" in paired["text/html"]
    for marker in ("curves.plot(", "elubench.plots.paired_seeds("):
        assert any("image/png" in o.get("data", {}) for o in _outputs(notebook, marker)), marker
    methods = _outputs(notebook, "print(comparison.methods)")[0].text
    assert methods.startswith("Each of the 2 configurations was trained with the same seeds")


def test_a_figure_shows_as_an_image_with_no_pyplot_imported(executed):
    """The inline backend registers how to draw a figure only once pyplot is imported;
    elubench.plots registers it itself."""
    import nbclient
    import nbformat

    _, folder = executed
    code = f"import elubench\nelubench.plots.paired_seeds({str(folder / 'results')!r})"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    assert any("image/png" in o.get("data", {}) for o in notebook.cells[0].outputs)
