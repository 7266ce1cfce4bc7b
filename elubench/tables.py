"""A Comparison as titled tables, and those tables as rich, Markdown, CSV, LaTeX or JSON.

`display_tables` turns the statistics into formatted text cells once; every output format
renders the same cells, so the terminal, REPORT.md and a paper's LaTeX agree. JSON keeps the
raw numbers instead.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import pandas as pd

FORMATS = ("rich", "markdown", "csv", "json", "latex")


@dataclass
class Section:
    key: str            # stable name (JSON keys, CSV section names)
    title: str
    frame: pd.DataFrame  # formatted text cells
    raw: pd.DataFrame    # the numbers behind them
    note: str = ""


def _num(x, digits=2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "–"
    return f"{x:.{digits}f}"


def _p(x) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.2g}" if x >= 0.001 else f"{x:.1e}"


def _ci(low, high, digits=2) -> str:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high)):
        return "–"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _int(x) -> str:
    return "–" if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) else f"{int(x):,}"


def _paired_cells(row, *, label: str, side_note: bool = True) -> dict:
    return {
        label: row.get("label") or f"{row['a']} vs {row['b']}",
        "n": _int(row["n_pairs"]),
        "mean diff (pp) [95% CI]": f"{_num(row['mean_diff_pp'])} {_ci(row['ci_low'], row['ci_high'])}",
        "median diff": _num(row["median_diff_pp"]),
        "W/T/L": "–" if pd.isna(row.get("wins")) else f"{int(row['wins'])}/{int(row['ties'])}/{int(row['losses'])}",
        "t-test p": _p(row["t_p"]),
        "Wilcoxon p": _p(row["wilcoxon_p"]),
        "method": row["wilcoxon_method"],
        "Holm p": _p(row["p_holm"]),
        "d_z": _num(row["d_z"]),
        "r_rb": _num(row["rank_biserial"]),
    }


def display_tables(result, *, task: str = "classification") -> list[Section]:
    """Every part of a Comparison as a titled table of formatted cells."""
    unit = "test loss (MSE)" if task == "autoencoder" else "test error (%)"
    sections = []

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
        ranks = f.mean_ranks.rename("mean rank").reset_index().rename(columns={"index": "configuration"})
        ranks.columns = ["configuration", "mean rank"]
        frame = ranks.assign(**{"mean rank": ranks["mean rank"].map(lambda v: f"{v:.2f}")})
        note = (f"Friedman χ² = {f.statistic:.2f}, df = {f.k - 1}, p = {_p(f.p)}; Iman–Davenport "
                f"F = {_num(f.f_statistic)} (df {f.f_df[0]:g}, {f.f_df[1]:g}), p = {_p(f.f_p)}; "
                f"{f.n_blocks} complete seeds; rank 1 = lowest error")
        sections.append(Section("friedman", "omnibus: mean ranks over seeds", frame, ranks, note))

    paired = result.paired
    table = paired.table
    if len(table):
        rows = []
        for _, r in table.iterrows():
            cells = _paired_cells(r, label="comparison")
            if paired.q_values:
                cells["BH q"] = _p(r["q_bh"])
            cells.update({"p floor": _p(r["p_floor"]),
                          "seeds for 80% power": _int(r["seeds_for_80_power"]),
                          "verdict": r["verdict"] + (" (floor!)" if r["floor_warning"] else "")})
            rows.append(cells)
        who = "every pair" if paired.baseline is None else f"vs baseline {paired.baseline}"
        note = (f"{paired.difference}; primary test {paired.primary}, {paired.alternative}; "
                f"{paired.correction} over {paired.family_size} comparisons at alpha {paired.alpha:g}; "
                f"{paired.zero_method}; W/T/L: seeds where a wins/ties/loses")
        sections.append(Section("paired", f"paired comparisons ({who})", pd.DataFrame(rows), table, note))

    if result.bn is not None:
        effects = result.bn.effects
        rows = [_paired_cells({**r, "label": r["activation"] + (f" ({r['init']})" if r["init"] else "")},
                              label="activation") for _, r in effects.iterrows()]
        sections.append(Section("bn_effects", "effect of batch normalization per activation",
                                pd.DataFrame(rows), effects,
                                "d = err(with BN) - err(without) per seed; negative = BN helps; two-sided"))
        contrasts = result.bn.contrasts
        if len(contrasts):
            rows = [_paired_cells({**r, "label": f"BN effect: {r['a']} − {r['b']}"}, label="contrast")
                    for _, r in contrasts.iterrows()]
            sections.append(Section("bn_contrasts", "does BN help one activation more than another?",
                                    pd.DataFrame(rows), contrasts,
                                    "difference of per-seed BN effects; negative = BN helps a more"))

    if result.speed is not None:
        s = result.speed
        target = f"{s.target * 100:.2f} %" if task != "autoencoder" else f"{s.target:.4g}"
        frame = pd.DataFrame({"configuration": s.table["config"],
                              "reached": [f"{int(a)}/{int(b)}" for a, b in zip(s.table["n_reached"], s.table["n"])],
                              "mean iterations": s.table["mean_iterations"].map(_int),
                              "median iterations": s.table["median_iterations"].map(_int)})
        sections.append(Section("speed", f"iterations to reach {target} test error", frame, s.table,
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
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    items = []
    for section in sections:
        table = Table(title=section.title, caption=section.note, header_style="bold",
                      caption_justify="left")
        first = section.frame.columns[0]
        for column in section.frame.columns:
            # labels never truncate; the other cells may wrap on a narrow terminal
            width = int(section.frame[column].astype(str).str.len().max()) if column == first else None
            table.add_column(str(column), justify="left" if column in (first, "method", "verdict") else "right",
                             min_width=width)
        for row in section.frame.itertuples(index=False):
            table.add_row(*(escape(str(v)) for v in row))
        items.append(table)
    if warnings:
        items.append(Text("warnings:", style="bold yellow"))
        items += [Text(f"  - {w}", style="yellow") for w in warnings]
    items.append(Text("methods: ", style="bold") + Text(methods))
    return Group(*items)


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
        parts.append("")
    if warnings:
        parts.append(f"{'#' * level} Warnings\n")
        parts += [f"- {w}" for w in warnings]
        parts.append("")
    parts.append(f"{'#' * level} Methods\n\n{methods}\n")
    return "\n".join(parts)


def to_csv(sections: list[Section]) -> str:
    """Each table's raw numbers, one block per table, headed by `# <key>: <title>`."""
    out = io.StringIO()
    for section in sections:
        out.write(f"# {section.key}: {section.title}\n")
        section.raw.to_csv(out, index=False)
        out.write("\n")
    return out.getvalue()


def to_latex(sections: list[Section], methods: str) -> str:
    def escape(text: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                     ("±", r"$\pm$"), ("−", "-"), ("χ²", r"$\chi^2$"), ("–", "--")):
            text = text.replace(a, b)
        return text

    parts = []
    for section in sections:
        columns = "l" + "r" * (len(section.frame.columns) - 1)
        lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{escape(section.title)}. "
                 rf"{escape(section.note)}}}", rf"\begin{{tabular}}{{{columns}}}", r"\hline",
                 " & ".join(escape(str(c)) for c in section.frame.columns) + r" \\", r"\hline"]
        lines += [" & ".join(escape(str(v)) for v in row) + r" \\" for row in section.frame.itertuples(index=False)]
        lines += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
        parts.append("\n".join(lines))
    parts.append(f"% Methods\n{escape(methods)}\n")
    return "\n".join(parts)


def to_json(result, sections: list[Section]) -> str:
    def clean(value):
        if isinstance(value, float) and math.isnan(value):
            return None
        if value is pd.NA:
            return None
        if hasattr(value, "item"):
            return clean(value.item())
        return value

    payload = {
        "spec_name": result.spec_name, "baseline": result.baseline, "configs": result.configs,
        "alternative": result.paired.alternative, "alpha": result.paired.alpha,
        "primary_test": result.paired.primary, "correction": result.paired.correction,
        "tables": {s.key: [{k: clean(v) for k, v in row.items()} for row in s.raw.to_dict("records")]
                   for s in sections if s.key != "friedman"},
        "friedman": None if result.friedman is None else {
            "statistic": clean(result.friedman.statistic), "p": clean(result.friedman.p),
            "k": result.friedman.k, "n_blocks": result.friedman.n_blocks,
            "f_statistic": clean(result.friedman.f_statistic), "f_p": clean(result.friedman.f_p),
            "mean_ranks": {k: clean(v) for k, v in result.friedman.mean_ranks.items()}},
        "warnings": result.warnings, "methods": result.methods,
    }
    return json.dumps(payload, indent=2, default=str)
