"""REPORT.html: the report's Markdown rendered as one page that travels alone.

The Markdown REPORT.md holds is the only source: markdown-it-py renders it (CommonMark and
tables, raw HTML off, so text from specs and records is shown, never run). On top of that
rendering, and only through its token stream and render rules: the report's own figures
become data URIs, headings get ids and the page a table of contents, and tables sit in a box
that scrolls sideways on a phone. The stylesheet is inline, with rules for phones and print.
"""

from __future__ import annotations

import base64
import html
import re
import struct
from pathlib import Path

STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: #1f2328; background: #fff; max-width: 1200px; margin: 0 auto;
       padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.75rem; margin: .4rem 0 .6rem; }
h2 { font-size: 1.35rem; margin: 2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.08rem; margin: 1.6rem 0 .4rem; }
p, ul { margin: .45rem 0; }
code { font: .88em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       background: #f2f4f6; padding: .05em .3em; border-radius: 4px; overflow-wrap: anywhere; }
a { color: #0b5cad; }
nav.toc { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
          padding: .5rem 1rem; margin: 1rem 0 1.5rem; font-size: .9rem; }
nav.toc strong { display: block; margin-bottom: .2rem; }
nav.toc ul { list-style: none; margin: 0; padding: 0; }
nav.toc > ul > li { margin: .15rem 0; }
nav.toc ul ul, nav.toc ul ul li { display: inline; }
nav.toc ul ul::before { content: ": "; }
nav.toc ul ul li:not(:last-child)::after { content: " · "; color: #6e7781; }
.table { overflow-x: auto; margin: .6rem 0; }
table { border-collapse: collapse; font-size: .84rem; font-variant-numeric: tabular-nums; }
th, td { padding: .22rem .6rem; border-bottom: 1px solid #d8dee4; text-align: right; white-space: nowrap; }
th { border-bottom: 2px solid #8c959f; background: #f6f8fa; white-space: normal; vertical-align: bottom; }
th:first-child, td:first-child { text-align: left; }
tbody tr:hover { background: #f6f8fa; }
img { display: block; max-width: 100%; height: auto; margin: .6rem 0 .2rem; }
@media (max-width: 700px) {
  body { font-size: 14px; padding: .6rem .8rem 2rem; }
  h1 { font-size: 1.35rem; } h2 { font-size: 1.15rem; } h3 { font-size: 1rem; }
  table { font-size: .78rem; }
}
@media print {
  @page { margin: 14mm; }
  body { font-size: 10pt; max-width: none; padding: 0; }
  nav.toc { display: none; }
  a { color: inherit; text-decoration: none; }
  h2, h3 { break-after: avoid; }
  img, tr { break-inside: avoid; }
  .table { overflow: visible; }
  table { font-size: 7.5pt; }
  th, td { white-space: normal; padding: .1rem .3rem; }
  tbody tr:hover { background: none; }
}
"""


def render_html(markdown: str, images: dict[str, Path]) -> str:
    """The page for `markdown`; `images` maps each figure's path as the Markdown writes it to
    its file, whose bytes the page then carries. Any other image stays a link, never loaded."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("image", _image)
    md.add_render_rule(
        "table_open",
        lambda self, tokens, i, options, env: (
            '<div class="table">' + self.renderToken(tokens, i, options, env)
        ),
    )
    md.add_render_rule(
        "table_close",
        lambda self, tokens, i, options, env: (
            self.renderToken(tokens, i, options, env) + "</div>\n"
        ),
    )
    env = {"images": {md.normalizeLink(src): Path(path) for src, path in images.items()}}
    tokens = md.parse(markdown, env)
    headings = _anchor(tokens, md, env)
    title = next((text for level, _, _, text in headings if level == 1), "elubench report")
    split = next(
        (i for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"), len(tokens)
    )
    body = (
        md.renderer.render(tokens[:split], md.options, env)
        + _toc(headings)
        + md.renderer.render(tokens[split:], md.options, env)
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )


def _anchor(tokens, md, env) -> list[tuple[int, str, str, str]]:
    """Give every heading an id (from its text, unique in the page); return (level, id, its
    rendered inline HTML, its plain text) per heading, in order."""
    headings, seen = [], set()
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        inline = tokens[i + 1].children or []
        text = md.renderer.renderInlineAsText(inline, md.options, env)
        slug = re.sub(r"[^\w]+", "-", text.lower()).strip("-") or "section"
        anchor, n = slug, 1
        while anchor in seen:
            n += 1
            anchor = f"{slug}-{n}"
        seen.add(anchor)
        token.attrSet("id", anchor)
        headings.append(
            (int(token.tag[1]), anchor, md.renderer.renderInline(inline, md.options, env), text)
        )
    return headings


def _toc(headings) -> str:
    """Contents: each section (h2) with its subsections (h3) on one line; none for one section."""
    if sum(level == 2 for level, *_ in headings) < 2:
        return ""
    items: list[tuple[str, list[str]]] = []  # (a section's link, its subsections' items)
    for level, anchor, inner, _ in headings:
        if level == 2:
            items.append((f'<a href="#{anchor}">{inner}</a>', []))
        elif level == 3 and items:
            items[-1][1].append(f'<li><a href="#{anchor}">{inner}</a></li>')
    lines = [
        f"<li>{link}" + (f"<ul>{''.join(subs)}</ul>" if subs else "") + "</li>"
        for link, subs in items
    ]
    return (
        '<nav class="toc" aria-label="Contents"><strong>Contents</strong>\n<ul>\n'
        + "\n".join(lines)
        + "\n</ul></nav>\n"
    )


def _image(self, tokens, idx, options, env) -> str:
    """A figure of the report as a data URI (with its pixel size); any other image as a link."""
    from markdown_it.common.utils import escapeHtml

    token = tokens[idx]
    path = env["images"].get(token.attrGet("src"))
    if path is None:
        alt = self.renderInlineAsText(token.children or [], options, env)
        return f'<a href="{escapeHtml(str(token.attrGet("src")))}">{escapeHtml(alt or "image")}</a>'
    data = path.read_bytes()
    mime = {".png": "image/png", ".svg": "image/svg+xml"}.get(
        path.suffix.lower(), "application/octet-stream"
    )
    token.attrSet("src", f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")
    if data[:8] == b"\x89PNG\r\n\x1a\n":  # the size, so the page lays out before decoding
        width, height = struct.unpack(">II", data[16:24])
        token.attrSet("width", str(width))
        token.attrSet("height", str(height))
    return self.image(tokens, idx, options, env)
