import re

import pytest

from conftest import make_results
from test_cli_compare import TEN


def test_report_writes_markdown_html_and_figures(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    code, out, err = cli("report", root, "--markdown", "--html")
    assert code == 0, err
    folder = root / "demo"
    text = (folder / "REPORT.md").read_text()
    assert text.startswith("# elubench report: demo")
    for heading in ("## Results", "Activation comparisons", "BN effects", "### Methods", "## Figures"):
        assert heading in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"figures/error_curves.png", "figures/paired_seeds.png", "figures/forest.png",
            "figures/bias_shift.png"} <= set(images)
    from matplotlib.image import imread
    for image in images:
        pixels = imread(folder / image)
        assert pixels.ndim == 3 and pixels.std() > 0
    assert "<img src='figures/forest.png'" in (folder / "REPORT.html").read_text()


@pytest.mark.slow
def test_report_of_a_real_run_describes_the_spec(cli, tmp_path):
    code, _, err = cli("run", "specs/quickstart.yaml", "--results", tmp_path, "--seeds", "2",
                       "-a", "elu,relu", "--batchnorm", "off", "--set", "train.iterations=30",
                       "--set", "train.eval_every=10", "--device", "cpu")
    assert code == 0, err
    code, out, err = cli("report", tmp_path, "--out", tmp_path / "rep")
    assert code == 0, err
    text = (tmp_path / "rep" / "REPORT.md").read_text()
    assert "[1×32×3] [1×64×3] [1×10×1]" in text and "19,466 parameters" in text
    assert (tmp_path / "rep" / "figures" / "bias_shift.png").exists()


def test_report_bad_input(cli, tmp_path):
    code, _, err = cli("report", tmp_path / "none")
    assert code == 2 and "no such results folder" in err
    code, _, err = cli("report", tmp_path, "--no-markdown")
    assert code == 2 and "nothing to write" in err


def test_html_only_writes_no_markdown(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    code, out, err = cli("report", root, "--no-markdown", "--html")
    assert code == 0, err
    assert (root / "demo" / "REPORT.html").exists() and not (root / "demo" / "REPORT.md").exists()
