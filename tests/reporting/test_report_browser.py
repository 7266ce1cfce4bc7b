"""REPORT.html as a reader sees it: copied alone into an empty folder and rendered by a real
browser (headless Chromium, driven over the DevTools protocol: tests/chromium.py).

Skipped where no Chromium is installed; `scripts/test-deps.sh` (run by CI) installs Debian's.
ELUBENCH_UPDATE_SCREENSHOT=1 also writes the screenshot of the report's top to
docs/report-top.png, the one the README shows.
"""

from __future__ import annotations

import base64
import os
import re
import shutil

import pytest
from chromium import Chromium, find_chromium
from conftest import ROOT, quickstart_results

BROWSER = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        BROWSER is None,
        reason="no chromium, chromium-browser or google-chrome on PATH "
        "(scripts/test-deps.sh installs Debian's chromium)",
    ),
]

# What the page shows, asked of the page once every image has been decoded.
READ_PAGE = """(async () => {
  await Promise.all([...document.images].map(image => image.decode().catch(() => null)));
  const texts = selector => [...document.querySelectorAll(selector)].map(e => e.textContent);
  return {
    text: document.body.innerText,
    headings: [...document.querySelectorAll("h1, h2, h3")].map(h => h.textContent),
    strong: texts("strong"), code: texts("code"), cells: texts("td"),
    tables: document.querySelectorAll("table").length,
    images: [...document.images].map(image => ({src: image.src.slice(0, 22), width: image.naturalWidth,
                                                shown: image.getBoundingClientRect().width})),
    toc: [...document.querySelectorAll("nav.toc a")].map(a => document.getElementById(a.hash.slice(1)) !== null),
    fetched: performance.getEntriesByType("resource").map(entry => entry.name),
  };
})()"""


def test_report_html_alone_in_chromium(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the report names its folder as given: results/quickstart
    folder = quickstart_results(tmp_path / "results")
    code, _, err = cli("report", "results", "--html", "--figure-format", "png")
    assert code == 0, err
    markdown = (folder / "REPORT.md").read_text()
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(folder / "REPORT.html", alone)  # nothing beside it: no figures/ folder

    with Chromium(BROWSER) as browser:
        browser.viewport(1000, 700)
        browser.open((alone / "REPORT.html").as_uri())
        page = browser.evaluate(READ_PAGE)
        top = browser.screenshot(tmp_path / "report-top.png")
        if os.environ.get("ELUBENCH_UPDATE_SCREENSHOT") == "1":
            (ROOT / "docs" / "report-top.png").write_bytes(top)
        browser.viewport(390, 844, mobile=True)  # a phone
        phone = browser.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        browser.screenshot(tmp_path / "report-phone.png")
        browser.viewport(1000, 700)
        browser.send("Emulation.setEmulatedMedia", media="print")
        printed = browser.evaluate("getComputedStyle(document.querySelector('nav.toc')).display")
        pdf = base64.b64decode(browser.send("Page.printToPDF")["data"])

    # formatted text: headings, bold, code and lists rendered, no Markdown left in the text
    assert page["headings"][:3] == ["elubench report: quickstart", "The experiment", "Results"]
    assert "Figures" in page["headings"] and "Methods" in page["headings"]
    assert {"Task", "Network", "Training", "Matrix"} <= set(page["strong"])
    assert "layers × units × receptive field" in page["code"]
    assert re.findall(r"\*\*|`|^\s*- ", page["text"], re.M) == []
    # every table, with the Markdown's cells
    assert page["tables"] == len(re.findall(r"(?m)^\|---", markdown)) >= 6
    first_row = next(line for line in markdown.splitlines() if line.startswith("| elu |"))
    cells = [cell.strip() for cell in first_row.strip("|").split("|")]
    assert any(page["cells"][i : i + len(cells)] == cells for i in range(len(page["cells"])))
    # every figure decoded from the page itself, nothing fetched from anywhere
    assert len(page["images"]) == markdown.count("![") == 5
    for image in page["images"]:
        assert (
            image["src"].startswith("data:image/png")
            and image["width"] > 0
            and image["shown"] > 100
        )
    assert page["fetched"] == []
    # contents that land on headings; a phone scrolls tables, not the page; print drops the contents
    assert len(page["toc"]) >= 10 and all(page["toc"])
    assert phone[0] <= phone[1]
    assert printed == "none" and pdf.startswith(b"%PDF")
    assert (tmp_path / "report-top.png").stat().st_size > 10_000
