"""A Comparison as titled tables, and those tables as rich, Markdown, CSV, LaTeX or JSON.

`display_tables` turns the statistics into formatted text cells once; every output format
renders the same cells, so the terminal, REPORT.md and a paper's LaTeX agree. JSON keeps the
raw numbers instead.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import pandas as pd

FORMATS = ("rich", "markdown", "csv", "json", "latex")


@dataclass
class Section:
    key: str            # stable name (JSON keys, CSV section names)
    title: str
    frame: pd.DataFrame  # formatted text cells
    raw: pd.DataFrame    # the numbers behind them
    note: str = ""
    footnotes: list[str] = field(default_factory=list)  # row notes, as "<row>: <text>"


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def _num(x, digits=2) -> str:
    return "–" if _missing(x) else f"{x:.{digits}f}"


def _p(x) -> str:
    if _missing(x):
        return "–"
    if x == 0:
        return "<1e-300"  # below double precision (the normal approximation's tail underflows)
    return f"{x:.2g}" if x >= 0.001 else f"{x:.1e}"


def _ci(low, high, digits=2) -> str:
    if _missing(low) or _missing(high):
        return "–"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _int(x) -> str:
    return "–" if _missing(x) else f"{int(x):,}"


def _bayes(row) -> str:
    if _missing(row.get("p_a_better")):
        return "–"
    return f"{row['p_a_better']:.2f}/{row['p_equivalent']:.2f}/{row['p_b_better']:.2f}"


def _verdict(row) -> str:
    if row.get("cannot_reach"):
        return f"{row['verdict']} (cannot reach α)"
    return str(row["verdict"])


def _paired_cells(row, *, label: str, bayes: bool, diff: str = "Δ pp [95% CI]") -> dict:
    """The cells every family's table shows, the verdict first so that a narrow terminal never
    hides it; the rest (median difference, the Wilcoxon method, the t statistic) are in CSV and
    JSON, and the method in the table's note."""
    cells = {
        label: row.get("label") or f"{row['a']} vs {row['b']}",
        "verdict": _verdict(row),
        "n": _int(row["n_pairs"]),
        diff: f"{_num(row['mean_diff_pp'])} {_ci(row['ci_low'], row['ci_high'])}",
        "W/T/L": "–" if _missing(row.get("wins")) else f"{int(row['wins'])}/{int(row['ties'])}/{int(row['losses'])}",
        "Wilcoxon p": _p(row["wilcoxon_p"]),
        "Holm p": _p(row["p_holm"]),
        "p floor": _p(row["p_floor"]),
        "r_rb": _num(row["rank_biserial"]),
    }
    if bayes:
        cells["P(a better/≈/b better)"] = _bayes(row)
    cells.update({"t-test p": _p(row["t_p"]), "d_z": _num(row["d_z"]),
                  "seeds for 80% power": _int(row["seeds_for_80_power"])})
    return cells


def _footnotes(frame: pd.DataFrame, labels: list[str]) -> list[str]:
    """Each row's notes, under the table: "<row label>: <note>"."""
    return [f"{label}: {note}" for label, notes in zip(labels, frame["notes"])
            if isinstance(notes, list) for note in notes]


def _methods_used(frame: pd.DataFrame) -> str:
    used = sorted(set(frame["wilcoxon_method"].dropna()) - {"not testable"})
    return f"Wilcoxon p-values: {', '.join(used)}" if used else ""


def _family_note(frame: pd.DataFrame, question: str, side: str, alpha: float, extra: str = "") -> str:
    m = int(frame["wilcoxon_p"].notna().sum())
    return (f"one Holm family: {question}; {m} comparisons at alpha {alpha:g}; primary test "
            f"Wilcoxon signed-rank, {side}; verdict from its Holm-adjusted p, direction from its "
            f"statistic (T+ − T−), not the mean; 'cannot reach α': no outcome of the data could "
            f"make it significant{extra}")


def _bn_section(key: str, title: str, frame: pd.DataFrame, labels: list[str], label: str,
                meaning: str, question: str, alpha: float, rope, bayes_note: str,
                diff: str) -> Section:
    """One of the two BN families as a table: its rows, what d and W/T/L mean, the family."""
    rows = [_paired_cells({**r, "label": text}, label=label, bayes=rope is not None, diff=diff)
            for text, (_, r) in zip(labels, frame.iterrows())]
    note = (f"{meaning}; " + _family_note(frame, question, "two-sided", alpha, bayes_note)
            + f"; {_methods_used(frame)}")
    return Section(key, title, pd.DataFrame(rows), frame, note, _footnotes(frame, labels))


def display_tables(result, *, task: str = "classification") -> list[Section]:
    """Every part of a Comparison as a titled table of formatted cells."""
    # An autoencoder's scores are its reconstruction MSE on the same x 100 scale as test error in
    # % (stats.scores), so that one ROPE and one table layout serve both: its labels say so.
    ae = task == "autoencoder"
    unit = "test MSE × 100" if ae else "test error (%)"
    score, metric = ("MSE", "test MSE") if ae else ("err", "test error")
    diff = "Δ MSE×100 [95% CI]" if ae else "Δ pp [95% CI]"
    sections = []
    rope = getattr(result, "rope", None)
    bayes_note = (f"; P(a better / ≈ / b better): Bayesian signed-rank test, ROPE ±{rope:g} "
                  f"{'(MSE × 100)' if ae else 'pp'}" if rope is not None else "")

    d = result.descriptives
    has_ref = d["ref_mean"].notna().any()
    rows = []
    for _, r in d.iterrows():
        digits = 4 if task == "autoencoder" else 2
        row = {"configuration": r["config"], "ok": _int(r["n_ok"]),
               "diverged/failed": f"{int(r['n_diverged'])}/{int(r['n_failed'])}",
               "mean ± std": f"{_num(r['mean'], digits)} ± {_num(r['std'], digits)}",
               "95% CI": _ci(r["ci_low"], r["ci_high"], digits), "median": _num(r["median"], digits),
               "min": _num(r["min"], digits), "max": _num(r["max"], digits)}
        if has_ref:
            row["reference"] = ("–" if pd.isna(r["ref_mean"])
                                else f"{r['ref_mean']:.2f} ± {r['ref_std']:.2f}")
        rows.append(row)
    sections.append(Section("descriptives", f"{unit} per configuration, over seeds",
                            pd.DataFrame(rows), d,
                            "mean ± std (ddof 1); 95% CI: t-interval of the mean"))

    f = result.friedman
    if f is not None:
        ranks = f.mean_ranks.rename("mean rank").reset_index()
        ranks.columns = ["configuration", "mean rank"]
        frame = ranks.assign(**{"mean rank": ranks["mean rank"].map(lambda v: f"{v:.2f}")})
        if f.f_statistic is None:
            f_text = f"Iman–Davenport F undefined ({f.degenerate})" if f.degenerate else "Iman–Davenport F undefined"
        else:
            f_text = f"Iman–Davenport F = {_num(f.f_statistic)}, approximate p = {_p(f.f_p)}"
        se = f" ± {f.p_se:.2g} (Monte Carlo SE)" if f.p_se else ""
        note = (f"Friedman χ² = {f.statistic:.2f}, df = {f.k - 1}, p = {_p(f.p)}{se} ({f.method}); "
                f"{f_text}; {f.n_blocks} complete seeds; rank 1 = lowest error")
        sections.append(Section("friedman", "omnibus: mean ranks over seeds", frame, ranks, note))

    paired = result.paired
    table = paired.table
    if len(table):
        rows = []
        for _, r in table.iterrows():
            cells = _paired_cells(r, label="comparison", bayes=rope is not None, diff=diff)
            if paired.q_values:
                cells["BH q"] = _p(r["q_bh"])
            rows.append(cells)
        side = {"two-sided": "two-sided", "less": "one-sided (a lower)",
                "greater": "one-sided (a higher)"}[paired.alternative]
        note = (f"{paired.difference}; " + _family_note(table, paired.family, side, paired.alpha,
                                                        bayes_note)
                + f"; {paired.zero_method}; {_methods_used(table)}; W/T/L: seeds where a wins/ties/loses")
        sections.append(Section("paired", f"activation comparisons ({paired.family})",
                                pd.DataFrame(rows), table, note,
                                _footnotes(table, [r["comparison"] for r in rows])))

    if result.bn is not None:
        bn = result.bn
        sections.append(_bn_section(
            "bn_effects", "BN effects: each activation with batch normalization against without",
            bn.effects, [r["activation"] + (f" ({r['init']})" if r["init"] else "")
                         for _, r in bn.effects.iterrows()], "activation",
            f"d = {score}(with BN) − {score}(without) per seed; negative = BN helps; W/T/L: seeds "
            "where BN lowers / ties / raises the error", "BN effect per activation", bn.alpha, rope,
            bayes_note, diff))
        if len(bn.contrasts):
            sections.append(_bn_section(
                "bn_contrasts", "BN × activation: does BN help one activation more than another?",
                bn.contrasts, [f"BN effect: {r['a']} − {r['b']}" for _, r in bn.contrasts.iterrows()],
                "contrast", "d = BN effect of a − BN effect of b per seed; negative = BN helps a more; "
                "W/T/L: seeds where BN helps a more / the same / less",
                "each activation's BN effect against another's", bn.alpha, rope, bayes_note, diff))

    if result.speed is not None:
        s = result.speed
        target = f"{s.target * 100:.2f} %" if task != "autoencoder" else f"{s.target:.4g}"
        frame = pd.DataFrame({"configuration": s.table["config"],
                              "reached": [f"{int(a)}/{int(b)}" for a, b in zip(s.table["n_reached"], s.table["n"])],
                              "mean iterations": s.table["mean_iterations"].map(_int),
                              "median iterations": s.table["median_iterations"].map(_int)})
        sections.append(Section("speed", f"iterations to reach {target} {metric}", frame, s.table,
                                f"target: {s.target_source}; first evaluation at or below it"))

    c = result.cost
    if len(c) and c["images_per_second"].notna().any():
        frame = pd.DataFrame({"configuration": c["config"],
                              "images/s": c["images_per_second"].map(lambda v: _int(v)),
                              "time per image vs relu": c["time_per_image_vs_relu"].map(lambda v: _num(v, 3))})
        sections.append(Section("cost", "training speed", frame, c,
                                "mean over runs; time relative to relu at the same BN setting"))
    return sections


# --- renderers ---------------------------------------------------------------------------------

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
            width = (int(frame[column].astype(str).str.len().max())
                     if column in (first, "verdict") and len(frame) else None)
            table.add_column(str(column), justify="left" if column in (first, "method", "verdict")
                             else "right", min_width=width)
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
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)]
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
    return frame.apply(lambda column: column.map(lambda v: "; ".join(v) if isinstance(v, list) else v)
                       if column.dtype == object else column)


def to_csv(sections: list[Section]) -> str:
    """Each table's raw numbers, one block per table, headed by `# <key>: <title>`."""
    out = io.StringIO()
    for section in sections:
        out.write(f"# {section.key}: {section.title}\n")
        _plain(section.raw).to_csv(out, index=False)
        out.write("\n")
    return out.getvalue()


# Every character LaTeX treats specially in text, and the Unicode the tables use, as LaTeX.
LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
         "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
         "<": r"\textless{}", ">": r"\textgreater{}", "±": r"$\pm$", "−": "-", "–": "--",
         "×": r"$\times$", "≈": r"$\approx$", "α": r"$\alpha$", "χ": r"$\chi$", "²": r"$^2$",
         "√": r"$\surd$"}


def latex_escape(text: str) -> str:
    """Text as LaTeX source that prints it: each special character replaced on its own (one
    pass, so a replacement's own backslashes and braces are never escaped again)."""
    return "".join(LATEX.get(char, char) for char in str(text))


def to_latex(sections: list[Section], methods: str) -> str:
    parts = []
    for section in sections:
        columns = "l" + "r" * (len(section.frame.columns) - 1)
        lines = [r"\begin{table}[ht]", r"\centering",
                 rf"\caption{{{latex_escape(section.title)}. {latex_escape(section.note)}"
                 + "".join(f" Note: {latex_escape(f)}." for f in section.footnotes) + "}",
                 rf"\begin{{tabular}}{{{columns}}}", r"\hline",
                 " & ".join(latex_escape(c) for c in section.frame.columns) + r" \\", r"\hline"]
        lines += [" & ".join(latex_escape(v) for v in row) + r" \\"
                  for row in section.frame.itertuples(index=False)]
        lines += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
        parts.append("\n".join(lines))
    parts.append("% Methods\n" + latex_escape(methods) + "\n")
    return "\n".join(parts)


def to_json(result, sections: list[Section]) -> str:
    """Strict JSON (docs/json.md): every non-finite number is null, and each table row's `notes`
    say why a number is missing."""
    from elubench.core.files import dumps

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
        "spec_name": result.spec_name, "baseline": result.baseline, "configs": result.configs,
        "alternative": result.paired.alternative, "alpha": result.paired.alpha,
        "primary_test": result.paired.primary, "correction": result.paired.correction,
        "comparison_family": result.paired.family, "comparison_mode": result.paired.mode,
        "rope_pp": result.rope,
        "tables": {s.key: json_rows(s.raw) for s in sections if s.key != "friedman"},
        "friedman": None if f is None else {
            "statistic": f.statistic, "p": f.p, "p_method": f.method, "p_se": f.p_se,
            "k": f.k, "n_blocks": f.n_blocks, "f_statistic": f.f_statistic, "f_p": f.f_p,
            "degenerate": f.degenerate,
            "mean_ranks": {k: _clean(v) for k, v in f.mean_ranks.items()}},
        "warnings": result.warnings, "methods": result.methods,
    }
