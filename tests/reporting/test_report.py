import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import TEN, make_results, quickstart_results


def test_report_writes_markdown_html_and_figures(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    code, out, err = cli("report", root, "--markdown", "--html")
    assert code == 0, err
    folder = root / "demo"
    text = (folder / "REPORT.md").read_text()
    assert text.startswith("# elubench report: demo")
    for heading in (
        "## Results",
        "Activation comparisons",
        "BN effects",
        "### Methods",
        "## Figures",
    ):
        assert heading in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {
        "figures/error_curves.png",
        "figures/paired_seeds.png",
        "figures/forest.png",
        "figures/bias_shift.png",
    } <= set(images)
    from matplotlib.image import imread

    for image in images:
        pixels = imread(folder / image)
        assert pixels.ndim == 3 and pixels.std() > 0
    assert 'src="data:image/png;base64,' in (folder / "REPORT.html").read_text()
    pdfs = sorted(p.name for p in (folder / "figures").glob("*.pdf"))  # the default: png,pdf
    assert pdfs == sorted(Path(image).with_suffix(".pdf").name for image in images)


@pytest.mark.slow
def test_report_of_a_real_run_describes_the_spec(cli, tmp_path):
    code, _, err = cli(
        "run",
        "specs/quickstart.yaml",
        "--results",
        tmp_path,
        "--seeds",
        "2",
        "-a",
        "elu,relu",
        "--batchnorm",
        "off",
        "--set",
        "train.iterations=30",
        "--set",
        "train.eval_every=10",
        "--device",
        "cpu",
    )
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


class Page(HTMLParser):
    """What a reader of an HTML page gets: the text outside <head>, <style> and <script> (one
    string per text node), the images' sources, the tables' cells, ids and links."""

    def __init__(self, text: str):
        super().__init__()
        self.texts, self.images, self.tables, self.ids, self.links, self.scripts = (
            [],
            [],
            [],
            set(),
            [],
            0,
        )
        self._hidden = 0
        self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag in ("head", "style", "script"):
            self._hidden += 1
            self.scripts += tag == "script"
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "a":
            self.links.append(attrs.get("href", ""))
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("head", "style", "script"):
            self._hidden -= 1
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._hidden:
            return
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)


def raw_markdown(texts) -> list[str]:
    """Markdown that was not rendered: bold markers, `code`, list bullets, heading hashes."""
    found = []
    for text in texts:
        found += re.findall(r"(?m)\*\*|`[^`]+`|^\s*[-*+] |^#{1,6} ", text)
    return found


def test_html_is_the_markdown_rendered_alone_and_safe(cli, tmp_path):
    folder = quickstart_results(tmp_path, source="Numbers from <script>alert('x')</script> & co")
    code, out, err = cli("report", tmp_path, "--html", "--figure-format", "png")
    assert code == 0, err
    markdown = (folder / "REPORT.md").read_text()
    page = Page((folder / "REPORT.html").read_text())
    assert raw_markdown(page.texts) == [], "Markdown shown as text"
    assert "**Task**" in markdown and "Task" in page.texts  # the header's bold became <strong>
    # every figure travels inside the page
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(page.images) == len(figures) == 5
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    # every table of the Markdown, cell for cell
    md_tables = [
        [
            [
                cell.strip().replace("\\|", "|")
                for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]
            ]
            for line in block.splitlines()
            if not line.startswith("|---")
        ]
        for block in re.findall(r"(?m)(?:^\|.*\|\n?)+", markdown)
    ]
    assert len(md_tables) >= 6 and page.tables == md_tables
    # a table of contents whose links all land on a heading
    anchors = [link[1:] for link in page.links if link.startswith("#")]
    assert {"the-experiment", "results", "figures", "methods"} <= set(anchors)
    assert set(anchors) <= page.ids
    # the spec's text is shown, not run
    assert page.scripts == 0
    assert "Numbers from <script>alert('x')</script> & co" in page.texts


def test_figure_formats(cli, tmp_path):
    root = make_results(tmp_path, TEN)
    code, out, err = cli("report", root, "--figure-format", "svg,PDF", "--out", tmp_path / "rep")
    assert code == 0, err
    figures = tmp_path / "rep" / "figures"
    stems = {p.stem for p in figures.glob("*.png")}
    assert stems and all(
        {p.stem for p in figures.glob(f"*.{ext}")} == stems for ext in ("pdf", "svg")
    )
    assert all((figures / f"{stem}.pdf").read_bytes().startswith(b"%PDF") for stem in stems)
    assert "<svg" in (figures / "forest.svg").read_text()
    first = {p.name: p.read_bytes() for p in figures.iterdir()}
    code, out, err = cli(
        "report", root, "--figure-format", "png,pdf,svg", "--out", tmp_path / "rep"
    )
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in figures.iterdir()} == first  # no dates inside
    code, out, err = cli("report", root, "--figure-format", "png", "--out", tmp_path / "png-only")
    assert code == 0 and not list((tmp_path / "png-only" / "figures").glob("*.pdf"))


def test_the_matrix_line_says_what_was_recorded(cli, tmp_path):
    """A `run --seeds 3` of a 10-seed spec: the report says 3 seeds, and that the spec has 10."""
    folder = quickstart_results(tmp_path / "three", seeds=3)
    code, _, err = cli("report", folder.parent, "--figure-format", "png")
    assert code == 0, err
    line = next(x for x in (folder / "REPORT.md").read_text().splitlines() if "**Matrix**" in x)
    assert line.startswith("- **Matrix**: activations elu, relu"), line  # the spec's order
    assert "3 seeds (of the spec's 10)" in line, line
    folder = quickstart_results(tmp_path / "ten")
    assert cli("report", folder.parent, "--figure-format", "png")[0] == 0
    line = next(x for x in (folder / "REPORT.md").read_text().splitlines() if "**Matrix**" in x)
    assert "× 10 seeds;" in line, line


def test_a_spec_naming_code_this_machine_lacks_still_reports(tmp_path):
    """Results shared with a machine without the package that registers an activation: the
    report says the description is unavailable and why, and keeps every table and figure."""
    import json

    from elubench.reporting.analysis import analyze
    from elubench.reporting.markdown import write_report

    folder = quickstart_results(tmp_path)
    meta = json.loads((folder / "spec.json").read_text())
    meta["spec"]["compare"]["activations"] = ["notinstalled", "elu", "relu"]
    (folder / "spec.json").write_text(json.dumps(meta))
    written = write_report(analyze(tmp_path), figure_formats=("png",))
    text = written[0].read_text()
    assert (
        "cannot be read on this machine (compare.activations: unknown activation 'notinstalled')"
        in text
    )
    assert "### Activation comparisons" in text and "figures/forest.png" in text
