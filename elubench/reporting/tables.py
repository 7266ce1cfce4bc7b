"""A Comparison as titled tables of formatted cells (`display_tables`); every output format
(reporting.render) shows the same cells, so the terminal, REPORT.md and a paper's LaTeX agree."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from elubench.reporting.cells import count, interval, missing, number, p_value
from elubench.stats.sequential.plan import SequentialResult
from elubench.stats.summary import Comparison
from elubench.stats.verdicts import NOT_TESTABLE, SIDE

FORMATS = ("rich", "markdown", "csv", "json", "latex")


@dataclass
class Section:
    key: str  # stable name (JSON keys, CSV section names)
    title: str
    frame: pd.DataFrame  # formatted text cells
    raw: pd.DataFrame  # the numbers behind them
    note: str = ""
    footnotes: list[str] = field(default_factory=list)  # row notes, as "<row>: <text>"


def _bayes(row) -> str:
    if missing(row.get("p_a_better")):
        return "–"
    return f"{row['p_a_better']:.2f}/{row['p_equivalent']:.2f}/{row['p_b_better']:.2f}"


def _verdict(row) -> str:
    if row.get("cannot_reach"):
        return f"{row['verdict']} (cannot reach α)"
    if row["verdict"] == NOT_TESTABLE:  # the seeds it would need: in its footnote
        return f"{NOT_TESTABLE} (n = {count(row['n_pairs'])})"
    return str(row["verdict"])


def _paired_cells(row, *, label: str, bayes: bool, diff: str = "Δ pp [95% CI]") -> dict:
    """The cells every family's table shows, the verdict first so that a narrow terminal never
    hides it; the rest (median difference, the Wilcoxon method, the t statistic) are in CSV and
    JSON, and the method in the table's note."""
    cells = {
        label: row.get("label") or f"{row['a']} vs {row['b']}",
        "verdict": _verdict(row),
        "n": count(row["n_pairs"]),
        diff: "–"
        if missing(row["mean_diff_pp"])
        else f"{number(row['mean_diff_pp'])} {interval(row['ci_low'], row['ci_high'])}",
        "W/T/L": "–"
        if missing(row.get("wins"))
        else f"{int(row['wins'])}/{int(row['ties'])}/{int(row['losses'])}",
        "Wilcoxon p": p_value(row["wilcoxon_p"]),
        "Holm p": p_value(row["p_holm"]),
        "p floor": p_value(row["p_floor"]),
        "r_rb": number(row["rank_biserial"]),
    }
    if bayes:
        cells["P(a better/≈/b better)"] = _bayes(row)
    cells.update(
        {
            "t-test p": p_value(row["t_p"]),
            "d_z": number(row["d_z"]),
            "seeds for 80% power": count(row["seeds_for_80_power"]),
        }
    )
    return cells


def _footnotes(frame: pd.DataFrame, labels: list[str]) -> list[str]:
    """Each row's notes, under the table: "<row label>: <note>"."""
    return [
        f"{label}: {note}"
        for label, notes in zip(labels, frame["notes"])
        if isinstance(notes, list)
        for note in notes
    ]


def _methods_used(frame: pd.DataFrame) -> str:
    used = sorted(set(frame["wilcoxon_method"].dropna()) - {"not testable"})
    return f"Wilcoxon p-values: {', '.join(used)}" if used else ""


def _family_note(
    frame: pd.DataFrame, question: str, side: str, alpha: float, extra: str = ""
) -> str:
    m = int(frame["wilcoxon_p"].notna().sum())
    return (
        f"one Holm family: {question}; {m} comparisons at alpha {alpha:g}; primary test "
        f"Wilcoxon signed-rank, {side}; verdict from its Holm-adjusted p, direction from its "
        f"statistic (T+ − T−), not the mean; 'cannot reach α': no outcome of the data could "
        f"make it significant{extra}"
    )


def _bn_section(
    key: str,
    title: str,
    frame: pd.DataFrame,
    labels: list[str],
    label: str,
    meaning: str,
    question: str,
    alpha: float,
    rope,
    bayes_note: str,
    diff: str,
) -> Section:
    """One of the two BN families as a table: its rows, what d and W/T/L mean, the family."""
    rows = [
        _paired_cells({**r, "label": text}, label=label, bayes=rope is not None, diff=diff)
        for text, (_, r) in zip(labels, frame.iterrows())
    ]
    note = (
        f"{meaning}; "
        + _family_note(frame, question, "two-sided", alpha, bayes_note)
        + "".join(f"; {used}" for used in [_methods_used(frame)] if used)
    )
    return Section(key, title, pd.DataFrame(rows), frame, note, _footnotes(frame, labels))


def display_tables(result: Comparison) -> list[Section]:
    """Every part of a Comparison as a titled table of formatted cells, labelled in the unit of
    its scores (core.units)."""
    unit = result.unit
    score, metric, digits = unit.score, unit.metric, unit.digits
    diff = f"Δ {unit.short} [95% CI]"
    sections = []
    rope = result.rope
    bayes_note = (
        f"; P(a better / ≈ / b better): Bayesian signed-rank test, ROPE ±{rope:g} {unit.short}"
        if rope is not None
        else ""
    )

    d = result.descriptives
    has_ref = d["ref_mean"].notna().any()
    rows = []
    for _, r in d.iterrows():
        row = {
            "configuration": r["config"],
            "ok": count(r["n_ok"]),
            "diverged/failed": f"{int(r['n_diverged'])}/{int(r['n_failed'])}",
            "mean ± std": f"{number(r['mean'], digits)} ± {number(r['std'], digits)}",
            "95% CI": interval(r["ci_low"], r["ci_high"], digits),
            "median": number(r["median"], digits),
            "min": number(r["min"], digits),
            "max": number(r["max"], digits),
        }
        if has_ref:
            row["reference"] = (
                "–" if pd.isna(r["ref_mean"]) else f"{r['ref_mean']:.2f} ± {r['ref_std']:.2f}"
            )
        rows.append(row)
    sections.append(
        Section(
            "descriptives",
            f"{unit.value} per configuration, over seeds",
            pd.DataFrame(rows),
            d,
            "mean ± std (ddof 1); 95% CI: t-interval of the mean",
        )
    )

    f = result.friedman
    if f is not None:
        ranks = f.mean_ranks.rename("mean rank").reset_index()
        ranks.columns = ["configuration", "mean rank"]
        frame = ranks.assign(**{"mean rank": ranks["mean rank"].map(lambda v: f"{v:.2f}")})
        if f.f_statistic is None:
            f_text = (
                f"Iman–Davenport F undefined ({f.degenerate})"
                if f.degenerate
                else "Iman–Davenport F undefined"
            )
        else:
            f_text = f"Iman–Davenport F = {number(f.f_statistic)}, approximate p = {p_value(f.f_p)}"
        se = f" ± {f.p_se:.2g} (Monte Carlo SE)" if f.p_se else ""
        note = (
            f"Friedman χ² = {f.statistic:.2f}, df = {f.k - 1}, p = {p_value(f.p)}{se} ({f.method}); "
            f"{f_text}; {f.n_blocks} complete seeds; rank 1 = lowest error"
        )
        sections.append(Section("friedman", "omnibus: mean ranks over seeds", frame, ranks, note))

    if result.sequential is not None and result.sequential.decisions is not None:
        sections.append(_sequential_section(result.sequential))

    paired = result.paired
    table = paired.table
    if len(table):
        rows = []
        for _, r in table.iterrows():
            cells = _paired_cells(r, label="comparison", bayes=rope is not None, diff=diff)
            if paired.q_values:
                cells["BH q"] = p_value(r["q_bh"])
            rows.append(cells)
        side = SIDE[paired.alternative]
        note = (
            f"{paired.difference}; "
            + _family_note(table, paired.family, side, paired.alpha, bayes_note)
            + f"; {paired.zero_method}"
            + "".join(f"; {used}" for used in [_methods_used(table)] if used)
            + "; W/T/L: seeds where a wins/ties/loses"
        )
        sections.append(
            Section(
                "paired",
                f"activation comparisons ({paired.family})",
                pd.DataFrame(rows),
                table,
                note,
                _footnotes(table, [r["comparison"] for r in rows]),
            )
        )

    if result.bn is not None:
        bn = result.bn
        sections.append(
            _bn_section(
                "bn_effects",
                "BN effects: each activation with batch normalization against without",
                bn.effects,
                [
                    r["activation"] + (f" ({r['init']})" if r["init"] else "")
                    for _, r in bn.effects.iterrows()
                ],
                "activation",
                f"d = {score}(with BN) − {score}(without) per seed; negative = BN helps; W/T/L: seeds "
                "where BN lowers / ties / raises the error",
                "BN effect per activation",
                bn.alpha,
                rope,
                bayes_note,
                diff,
            )
        )
        if len(bn.contrasts):
            sections.append(
                _bn_section(
                    "bn_contrasts",
                    "BN × activation: does BN help one activation more than another?",
                    bn.contrasts,
                    [f"BN effect: {r['a']} − {r['b']}" for _, r in bn.contrasts.iterrows()],
                    "contrast",
                    "d = BN effect of a − BN effect of b per seed; negative = BN helps a more; "
                    "W/T/L: seeds where BN helps a more / the same / less",
                    "each activation's BN effect against another's",
                    bn.alpha,
                    rope,
                    bayes_note,
                    diff,
                )
            )

    if result.speed is not None:
        s = result.speed
        target = unit.shown(s.target)
        frame = pd.DataFrame(
            {
                "configuration": s.table["config"],
                "reached": [
                    f"{int(a)}/{int(b)}" for a, b in zip(s.table["n_reached"], s.table["n"])
                ],
                "mean iterations": s.table["mean_iterations"].map(count),
                "median iterations": s.table["median_iterations"].map(count),
            }
        )
        sections.append(
            Section(
                "speed",
                f"iterations to reach {target} {metric}",
                frame,
                s.table,
                f"target: {s.target_source}; first evaluation at or below it",
            )
        )

    c = result.cost
    if len(c) and c["images_per_second"].notna().any():
        frame = pd.DataFrame(
            {
                "configuration": c["config"],
                "images/s": c["images_per_second"].map(lambda v: count(v)),
                "time per image vs relu": c["time_per_image_vs_relu"].map(lambda v: number(v, 3)),
            }
        )
        sections.append(
            Section(
                "cost",
                "training speed",
                frame,
                c,
                "mean over runs; time relative to relu at the same BN setting",
            )
        )
    if result.sequential is not None:
        for section in sections:
            if section.key in DESCRIPTIVE:
                section.title += " (descriptive)"
                section.note = (
                    "descriptive: fixed-n tests on the seeds the sequential design trained, "
                    "blind to its repeated looks; its verdicts are the sequential table's; "
                    + section.note
                )
    return sections


DESCRIPTIVE = ("paired", "bn_effects", "bn_contrasts")  # fixed-n tests beside a sequential design


def _sequential_section(result: SequentialResult) -> Section:
    """The sequential design's decisions (stats.sequential.plan): one row per comparison."""
    assert result.decisions is not None
    raw = result.decisions.table()
    frame = pd.DataFrame(
        {
            "comparison": raw["comparison"],
            "family": raw["family"],
            "decision": raw["decision"],
            "stopped": raw["stopped"],
            "seeds used": raw["seeds_used"].map(count),
            "look": raw["look"].map(count),
            "z": [number(z, 2) if look else "–" for z, look in zip(raw["z"], raw["look"])],
            "p": [p_value(p) if look else "–" for p, look in zip(raw["p"], raw["look"])],
            "threshold": [
                p_value(t) if look and t > 0 else "–"  # 0: no p of that look could cross
                for t, look in zip(raw["threshold"], raw["look"])
            ],
            "level": raw["level"].map(lambda v: f"{v:.3g}"),
        }
    )
    plan, design = result.plan, result.decisions.design
    note = (
        f"the verdicts of the group-sequential design (run --until-decided): looks at "
        f"{design.looks[0]} to {design.max_seeds} paired seeds; at each, the exact sign-flip "
        f"p of the comparison's rank scores against the design's threshold (alpha spent as "
        f"alpha * t^{design.spending_exponent:g}) at its Holm level within its family (alpha "
        f"{plan.alpha:g}); stopped: efficacy (decided), futility (cannot reach its threshold "
        f"by {design.max_seeds} seeds, as far as its z says), max seeds, or not stopped (open); "
        f"{result.runs} runs; seeds in the order trained: "
        + ", ".join(map(str, plan.seeds[: max(raw["seeds_used"].max(), 1)]))
    )
    footnotes = [f"{name}: {why}" for name, why in zip(raw["comparison"], raw["reason"])]
    return Section(
        "sequential", "sequential decisions (the design's verdicts)", frame, raw, note, footnotes
    )
