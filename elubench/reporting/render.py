"""Tables (reporting.tables.Section) in every output format: rich for the terminal, Markdown,
CSV, LaTeX and strict JSON (docs/json.md)."""

from __future__ import annotations

import io

import pandas as pd

from elubench.core.files import dumps
from elubench.reporting.tables import Section


def to_rich(sections: list[Section], warnings: list[str], methods: str):
    from rich.console import Group
    from rich.text import Text

    items: list = [_Fitted(section) for section in sections]
    if warnings:
        items.append(Text("warnings:", style="bold yellow"))
        items += [Text(f"  - {w}", style="yellow") for w in warnings]
    items.append(Text("methods: ", style="bold") + Text(methods))
    return Group(*items)


class _Fitted:
    """A section's table that is never cropped. Where the console is narrower than the table's
    natural width, its columns are printed as consecutive tables, each repeating the row's name
    (and the verdict), so a narrow terminal shows every number, unwrapped: rich would otherwise
    squeeze the columns below their words and crop the right-hand ones. The caption follows at
    the console's width, not squeezed to the table's."""

    def __init__(self, section: Section):
        self.section = section

    def _table(self, columns: list, title: str | None):
        from rich.markup import escape
        from rich.table import Table

        frame = self.section.frame
        first = frame.columns[0]
        table = Table(title=title, header_style="bold")
        for column in columns:
            # labels never wrap; the other cells may on a narrow terminal
            width = (
                int(frame[column].astype(str).str.len().max())
                if column in (first, "verdict") and len(frame)
                else None
            )
            table.add_column(
                str(column),
                justify="left" if column in (first, "method", "verdict") else "right",
                min_width=width,
            )
        for row in frame[columns].itertuples(index=False):
            table.add_row(*(escape(str(v)) for v in row))
        return table

    def __rich_console__(self, console, options):
        from rich.measure import Measurement
        from rich.text import Text

        section, columns = self.section, list(self.section.frame.columns)

        def fits(table) -> bool:  # measured unbounded: Measurement.get caps at the width given
            wide = options.update_width(10_000)
            return Measurement.get(console, wide, table).maximum <= options.max_width

        keep = columns[:1] + (["verdict"] if "verdict" in columns[1:] else [])
        chunks = [[c for c in columns if c not in keep]]
        if not fits(self._table(columns, section.title)):
            chunks = [[]]
            for column in (c for c in columns if c not in keep):
                if chunks[-1] and not fits(self._table(keep + chunks[-1] + [column], None)):
                    chunks.append([])
                chunks[-1].append(column)
        for i, chunk in enumerate(chunks):
            part = f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""
            ordered = [c for c in columns if c in keep or c in chunk]
            yield self._table(ordered, section.title + part)
        caption = "\n".join([section.note, *(f"note: {f}" for f in section.footnotes)]).strip()
        if caption:
            yield Text(caption, style="table.caption")


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def to_markdown(sections: list[Section], warnings: list[str], methods: str, level: int = 3) -> str:
    parts = []
    for section in sections:
        parts.append(f"{'#' * level} {section.title[0].upper()}{section.title[1:]}\n")
        parts.append(_markdown_table(section.frame))
        if section.note:
            parts.append(f"\n*{section.note}*")
        if section.footnotes:
            parts.append("")
            parts += [f"- {note}" for note in section.footnotes]
        parts.append("")
    if warnings:
        parts.append(f"{'#' * level} Warnings\n")
        parts += [f"- {w}" for w in warnings]
        parts.append("")
    parts.append(f"{'#' * level} Methods\n\n{methods}\n")
    return "\n".join(parts)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists (a row's notes) as one "; "-joined text cell, for flat formats."""
    return frame.apply(
        lambda column: (
            column.map(lambda v: "; ".join(v) if isinstance(v, list) else v)
            if column.dtype == object
            else column
        )
    )


def to_csv(sections: list[Section]) -> str:
    """Each table's raw numbers, one block per table, headed by `# <key>: <title>`."""
    out = io.StringIO()
    for section in sections:
        out.write(f"# {section.key}: {section.title}\n")
        _plain(section.raw).to_csv(out, index=False)
        out.write("\n")
    return out.getvalue()


# Every character LaTeX treats specially in text, and the Unicode the tables use, as LaTeX.
LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
    "−": "-",
    "–": "--",
    "×": r"$\times$",
    "≈": r"$\approx$",
    "α": r"$\alpha$",
    "χ": r"$\chi$",
    "²": r"$^2$",
    "√": r"$\surd$",
}


def latex_escape(text: str) -> str:
    """Text as LaTeX source that prints it: each special character replaced on its own (one
    pass, so a replacement's own backslashes and braces are never escaped again)."""
    return "".join(LATEX.get(char, char) for char in str(text))


def to_latex(sections: list[Section], methods: str) -> str:
    parts = []
    for section in sections:
        columns = "l" + "r" * (len(section.frame.columns) - 1)
        lines = [
            r"\begin{table}[ht]",
            r"\centering",
            rf"\caption{{{latex_escape(section.title)}. {latex_escape(section.note)}"
            + "".join(f" Note: {latex_escape(f)}." for f in section.footnotes)
            + "}",
            rf"\begin{{tabular}}{{{columns}}}",
            r"\hline",
            " & ".join(latex_escape(c) for c in section.frame.columns) + r" \\",
            r"\hline",
        ]
        lines += [
            " & ".join(latex_escape(v) for v in row) + r" \\"
            for row in section.frame.itertuples(index=False)
        ]
        lines += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
        parts.append("\n".join(lines))
    parts.append("% Methods\n" + latex_escape(methods) + "\n")
    return "\n".join(parts)


def to_json(result, sections: list[Section]) -> str:
    """Strict JSON (docs/json.md): every non-finite number is null, and each table row's `notes`
    say why a number is missing."""
    return dumps(json_payload(result, sections), indent=2, default=str)


def _clean(value):
    if value is pd.NA or value is None:
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def json_rows(frame: pd.DataFrame) -> list[dict]:
    """A table's rows as plain values (numpy scalars and pandas' NA made Python's)."""
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def json_payload(result, sections: list[Section]) -> dict:
    """One experiment's statistics (a stats.Comparison) as JSON-ready data."""
    f = result.friedman
    return {
        "spec_name": result.spec_name,
        "baseline": result.baseline,
        "configs": result.configs,
        "alternative": result.paired.alternative,
        "alpha": result.paired.alpha,
        "primary_test": result.paired.primary,
        "correction": result.paired.correction,
        "comparison_family": result.paired.family,
        "comparison_mode": result.paired.mode,
        "rope_pp": result.rope,
        "tables": {
            s.key: json_rows(s.raw) for s in sections if s.key not in ("friedman", "sequential")
        },
        "friedman": None if f is None else friedman_json(f, f.mean_ranks.items()),
        "sequential": None if result.sequential is None else _sequential_json(result.sequential),
        "warnings": result.warnings,
        "methods": result.methods,
    }


def friedman_json(f, mean_ranks) -> dict:
    """A Friedman test as JSON: its statistic, p and how p was made, F, and the mean ranks
    ((configuration, rank) pairs); within an experiment (blocks: seeds) or across them."""
    return {"statistic": f.statistic, "p": f.p, "p_method": f.method, "p_se": f.p_se, "k": f.k,
            "n_blocks": f.n, "f_statistic": f.f_statistic, "f_p": f.f_p,
            "degenerate": f.degenerate, "mean_ranks": {k: _clean(v) for k, v in mean_ranks}}  # fmt: skip


def _sequential_json(sequential) -> dict:
    """The sequential design and its decisions (stats.sequential.plan.SequentialResult)."""
    payload = sequential.to_json()
    payload["comparisons"] = [
        {k: _clean(v) for k, v in row.items()} for row in payload["comparisons"]
    ]
    return payload
