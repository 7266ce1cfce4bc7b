"""The summary across experiments (stats.experiments.Across) as tables of the same kind as one
experiment's (reporting.tables.Section), and as JSON-ready data."""

from __future__ import annotations

import pandas as pd

from elubench.reporting.cells import count, interval, number, p_value
from elubench.reporting.render import friedman_json, json_rows
from elubench.reporting.tables import Section
from elubench.stats.verdicts import SIDE


def across_sections(result) -> list[Section]:
    """The summary's tables: ranks per experiment, the experiment-level comparisons (rank tests,
    W/T/L), the seed-level pool, and each experiment's own difference (the forest plot's data)."""
    unit, digits = result.unit, result.unit.digits
    diff_unit = unit.short
    sections = []
    f, cd = result.friedman, result.nemenyi
    rows = []
    for config in result.configs:
        row = {"configuration": config}
        for name in result.experiments:
            row[name] = (
                f"{number(result.scores.loc[name, config], digits)} ({result.ranks.loc[name, config]:g})"
            )
        row["mean rank"] = number(result.ranks[config].mean())
        rows.append(row)
    note = f"mean {unit.value} of the ok runs (rank in that experiment; 1 = lowest)"
    if f is not None:
        note += (
            f"; Friedman over {f.n} experiments: χ² = {f.statistic:.2f}, df = {f.k - 1}, "
            f"p = {p_value(f.p)} ({f.method})"
        )
    if cd is not None:
        note += (
            f"; Nemenyi critical difference at α {cd.alpha:g}: {cd.critical_difference:.2f} "
            f"(mean ranks closer than that are not significantly different)"
        )
    ranks = result.ranks.T.assign(mean_rank=result.ranks.mean()).rename_axis("config").reset_index()
    sections.append(
        Section(
            "across_ranks",
            f"across {len(result.experiments)} experiments: mean error and rank per experiment",
            pd.DataFrame(rows),
            ranks,
            note,
        )
    )

    post = result.posthoc
    if len(post):
        rows = [
            {
                "comparison": f"{r['a']} vs {r['b']}",
                "verdict": r["verdict"],
                "mean ranks": f"{number(r['mean_rank_a'])} vs {number(r['mean_rank_b'])}",
                "W/T/L (experiments)": f"{int(r['wins'])}/{int(r['ties'])}/{int(r['losses'])}"
                + (f" (+{int(r['untestable'])} untested)" if r["untestable"] else ""),
                "z": number(r["z"]),
                "p": p_value(r["p"]),
                "Holm p": p_value(r["p_holm"]),
            }
            for _, r in post.iterrows()
        ]
        methods = ", ".join(sorted(set(post["p_method"].dropna())))
        note = (
            f"one Holm family: {result.family}, over experiments; test: the rank-sum difference "
            f"(Demšar's z shown), {SIDE[result.alternative]}, p: {methods}; verdict from the "
            f"Holm p at α {result.alpha:g}, direction from the mean ranks; W/T/L: experiments "
            "whose own verdict was better / no evidence / worse"
        )
        sections.append(
            Section(
                "across_ranks_tests",
                "across experiments: comparisons on ranks",
                pd.DataFrame(rows),
                post,
                note,
            )
        )

    meta = result.meta
    if len(meta):
        rows = [
            {
                "comparison": f"{r['a']} vs {r['b']}",
                "verdict": r["verdict"],
                "experiments": count(r["k"]),
                f"Δ {diff_unit} [95% CI]": f"{number(r['estimate'], digits)} {interval(r['ci_low'], r['ci_high'], digits)}",
                "p": p_value(r["p"]),
                "Holm p": p_value(r["p_holm"]),
                "τ²": number(r["tau2"], 3),
                "I²": "–" if pd.isna(r["i2"]) else f"{100 * r['i2']:.0f} %",
                "Q p": p_value(r["q_p"]),
            }
            for _, r in meta.iterrows()
        ]
        note = (
            f"random-effects meta-analysis of each experiment's mean per-seed difference "
            f"(d = {unit.score}(a) − {unit.score}(b), {diff_unit}; negative = a better): DerSimonian–Laird τ², "
            f"Hartung–Knapp–Sidik–Jonkman t test on k − 1 df (never below the plain "
            f"random-effects variance), {SIDE[result.alternative]}; one Holm family at α "
            f"{result.alpha:g}; I²: share of the spread between experiments not due to seeds"
        )
        footnotes = [
            f"{r['a']} vs {r['b']}: left out of the pool: {r['left_out']}"
            for _, r in meta.iterrows()
            if r["left_out"]
        ]
        sections.append(
            Section(
                "across_meta",
                "across experiments: pooled seed-level differences",
                pd.DataFrame(rows),
                meta,
                note,
                footnotes,
            )
        )
        per = result.per_experiment.merge(result.verdicts, on=["a", "b", "experiment"], how="left")
        rows = [
            {
                "comparison": f"{r['a']} vs {r['b']}",
                "experiment": r["experiment"],
                "verdict there": r["verdict"],
                "n": count(r["n_pairs"]),
                f"Δ {diff_unit} [95% CI]": f"{number(r['mean_diff'], digits)} {interval(r['ci_low'], r['ci_high'], digits)}",
                "weight": "–" if pd.isna(r["weight"]) else f"{100 * r['weight']:.0f} %",
            }
            for _, r in per.iterrows()
        ]
        sections.append(
            Section(
                "across_per_experiment",
                "across experiments: each experiment's difference",
                pd.DataFrame(rows),
                per,
                "mean per-seed difference with its 95% t-interval; weight in the pool; "
                "the verdict is that experiment's own (Holm-adjusted Wilcoxon)",
            )
        )
    return sections


def across_payload(result, sections: list[Section]) -> dict:
    """The summary as JSON-ready data (docs/json.md)."""
    f, cd = result.friedman, result.nemenyi
    return {
        "experiments": result.experiments,
        "configs": result.configs,
        "left_out": result.left_out,
        "baseline": result.baseline,
        "comparison_mode": result.mode,
        "comparison_family": result.family,
        "alternative": result.alternative,
        "alpha": result.alpha,
        "unit": result.unit.symbol.strip(),
        "scores": {
            name: {c: result.scores.loc[name, c] for c in result.configs}
            for name in result.experiments
        },
        "friedman": None if f is None else friedman_json(f, zip(result.configs, f.mean_ranks)),
        "nemenyi": None
        if cd is None
        else {
            "alpha": cd.alpha,
            "q_alpha": cd.q_alpha,
            "critical_difference": cd.critical_difference,
            "cliques": cd.cliques,
        },
        "tables": {s.key: json_rows(s.raw) for s in sections},
        "warnings": result.warnings,
        "methods": result.methods,
    }
