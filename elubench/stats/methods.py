"""What a reader must be told: the methods paragraph (to paste into a paper) and the warnings
(runs left out, comparisons no outcome could make significant)."""

from __future__ import annotations

import platform

import numpy as np
import pandas as pd

from elubench.core.units import CLASSIFICATION
from elubench.stats.bn_families import BNInteraction
from elubench.stats.families import FriedmanResult, PairedComparisons
from elubench.stats.paired import EXACT_MAX_N, PRIMARY, WILCOXON_ARE_BOUND, seeds_to_reach
from elubench.stats.scores import ScoreTable

SIDES = {
    "two-sided": "two-sided",
    "less": "one-sided (alternative: a has lower error than b)",
    "greater": "one-sided (alternative: a has higher error than b)",
}


def seeds_sentence(descriptives: pd.DataFrame) -> str:
    """n per configuration, exactly: "10 ok runs per configuration" or with the exceptions."""
    counts = descriptives.set_index("config")["n_ok"].astype(int)
    usual = int(counts.mode().max())
    odd = counts[counts != usual]
    text = f"{usual} ok run{'s' * (usual != 1)} (seeds) per configuration"
    if len(odd):
        text += ", except " + ", ".join(f"{c} ({n})" for c, n in odd.items())
    return text


def family_sentence(name: str, question: str, frame: pd.DataFrame, side: str) -> str:
    m = int(frame["wilcoxon_p"].notna().sum())
    n_lo, n_hi = int(frame["n_pairs"].min()), int(frame["n_pairs"].max())
    pairs = f"{n_lo}" if n_lo == n_hi else f"{n_lo} to {n_hi}"
    untested = len(frame) - m
    return (
        f"{name}: {question}; {m} comparison{'s' * (m != 1)} ({pairs} paired seeds each"
        + (f"; {untested} more not testable for lack of pairs" if untested else "")
        + f"), {side}."
    )


def methods_text(
    paired: PairedComparisons,
    descriptives: pd.DataFrame,
    friedman: FriedmanResult | None = None,
    bn: BNInteraction | None = None,
    rope: float | None = None,
    table: ScoreTable | None = None,
) -> str:
    """A paragraph describing the statistics, to paste into a paper's methods section."""
    import scipy

    t = paired.table
    k = len(descriptives)
    left_out = int(descriptives["n_diverged"].sum() + descriptives["n_failed"].sum())
    parts = [
        f"Each of the {k} configurations was trained with the same seeds ({seeds_sentence(descriptives)}); "
        "a given seed gave every configuration the same initial weight draws, data order and "
        "augmentation, so runs were compared in pairs by seed."
    ]
    if table is not None and stochastic_sentence(table):
        parts.append(stochastic_sentence(table))
    parts.append(
        f"{left_out} runs that failed or diverged were excluded from the tests and are reported "
        "separately."
        if left_out
        else "No run failed or diverged."
    )
    if table is not None and conditions_sentence(table):
        parts.append(conditions_sentence(table))
    if friedman is not None:
        parts.append(
            f"An omnibus Friedman test compared the {friedman.k} configurations over the "
            f"{friedman.n_blocks} seeds complete in all of them (p-value: {friedman.method})."
        )
    families = []
    if len(t):
        families.append(
            family_sentence("activation comparisons", paired.family, t, SIDES[paired.alternative])
        )
    if bn is not None and len(bn.effects):
        families.append(
            family_sentence(
                "BN effects",
                "each activation with batch normalization against without it",
                bn.effects,
                "two-sided",
            )
        )
    if bn is not None and len(bn.contrasts):
        families.append(
            family_sentence(
                "BN × activation",
                "each activation's BN effect against another's",
                bn.contrasts,
                "two-sided",
            )
        )
    every = pd.concat(
        [frame for frame in (t, *((bn.effects, bn.contrasts) if bn else ())) if len(frame)],
        ignore_index=True,
    ) if families else pd.DataFrame({"wilcoxon_p": []})  # fmt: skip
    if families and every["wilcoxon_p"].isna().all():
        parts.append(
            "No comparison could be tested yet: each has fewer than 2 paired seeds (an ok run on "
            "both sides with the same seed); the tables show what has been trained, and each "
            "untested comparison says how many seeds it would need."
        )
    elif families:
        unit = table.unit if table is not None else CLASSIFICATION
        units = "the number of misclassified test images" if paired.counts else unit.metric
        methods = ", ".join(sorted(set(every["wilcoxon_method"].dropna()) - {"not testable"}))
        parts.append(
            f"Tests were grouped in {len(families)} famil{'ies' if len(families) > 1 else 'y'}, one per "
            "question: "
            + " ".join(f"({i}) {text}" for i, text in enumerate(families, 1))
            + f" Every test works on the per-seed differences in {units}. The primary test was the "
            f"{PRIMARY} test; zero differences were dropped (Wilcoxon's method; "
            f"{int(every['zeros_dropped'].fillna(0).sum())} dropped in all). Its p-value was exact, from "
            f"the permutation distribution over all 2^n sign assignments with mid-ranks for tied "
            f"differences, for up to {EXACT_MAX_N} non-zero pairs, and from the normal approximation "
            f"with tie and continuity correction above that (used here: {methods}). Within each "
            f"family the Wilcoxon p-values were adjusted with Holm's method"
            + (
                " (activation comparisons also as Benjamini-Hochberg q-values)"
                if paired.q_values
                else ""
            )
            + f", at alpha = {paired.alpha:g}. A comparison was called better or worse only where its "
            "Holm-adjusted Wilcoxon p was at most alpha, in the direction of the Wilcoxon statistic "
            "(the sign of T+ - T-), not of the mean. We also report the paired t-test, the mean "
            f"difference in {unit.difference} with its 95 % t-interval, d_z (mean over the standard "
            "deviation of the differences), the matched-pairs rank-biserial correlation, and the "
            f"smallest p each test could reach (here from {every['p_floor'].min():.3g})."
        )
        parts.append(
            "Seeds for 80 % power are for the Wilcoxon test at the family's strictest Holm level "
            f"(alpha/m), for the observed d_z: the paired t-test's number divided by "
            f"{WILCOXON_ARE_BOUND} (the lower bound of the Wilcoxon test's asymptotic relative "
            "efficiency), and never fewer than the smallest n whose exact floor reaches alpha/m."
        )
    if rope is not None and every["wilcoxon_p"].notna().any():
        parts.append(
            "Beside the tests, a Bayesian signed-rank test (Benavoli et al. 2017; Dirichlet-process "
            "prior of strength 0.5 at 0; 50,000 posterior samples, 20,000 above 50 pairs) gives the "
            "posterior probability that a is practically better than b, equivalent to it, or worse, "
            f"with a region of practical equivalence of ±{rope:g} "
            f"{(table.unit if table is not None else CLASSIFICATION).difference}."
        )
    parts.append(
        f"Software: Python {platform.python_version()}, NumPy {np.__version__}, "
        f"SciPy {scipy.__version__}, pandas {pd.__version__}."
    )
    return " ".join(parts)


# --- warnings ---------------------------------------------------------------------------------


def run_warnings(table: ScoreTable, *, by_design: bool = False) -> list[str]:
    """What a reader must know of the runs themselves. `by_design`: the sequential design
    trained them, so a configuration with fewer seeds stopped by its decisions, and only
    diverged or failed runs make a seed incomplete."""
    out = []
    bad = table.status.stack()
    bad = bad[bad.isin(["diverged", "failed"])]
    if len(bad):
        by = bad.groupby([bad.index.get_level_values("config"), bad]).size()
        out.append(
            f"{len(bad)} run(s) did not finish ok and are left out of the tests: "
            + ", ".join(f"{c} {n} {s}" for (c, s), n in by.items())
        )
    if len(table.configs) < 2:
        out.append("only one configuration: nothing to compare")
    if table.implementations is not None:
        for config, impls in table.implementations.items():
            if len(impls) > 1:
                out.append(
                    f"{config}: its runs were trained with different activation kernels "
                    f"({', '.join(f'{n} {impl}' for impl, n in impls.items())}); they agree "
                    "to about 1e-6 per value, but a run's numbers depend on which"
                )
    lacking = ("diverged", "failed") if by_design else ("diverged", "failed", "missing")
    incomplete = table.status[table.status.isin(lacking).any(axis=1)]
    if len(incomplete):
        shown = [
            f"{seed} ({', '.join(f'{c} {s}' for c, s in row.items() if s in lacking)})"
            for seed, row in incomplete.head(10).iterrows()
        ]
        more = f" and {len(incomplete) - 10} more" if len(incomplete) > 10 else ""
        out.append(
            f"{len(incomplete)} seed(s) lack an ok run in some configuration; comparisons use the "
            f"seeds both sides have: " + "; ".join(shown) + more
        )
    return out


def reach_warnings(family: str, frame: pd.DataFrame, alpha: float, alternative: str) -> list[str]:
    """Name the comparisons no outcome of the data could make significant at the family's Holm
    levels (the same `cannot_reach` flag the tables show), and the seeds that would do."""
    testable = frame[frame["wilcoxon_p"].notna()]
    if not len(testable):
        return []
    m = len(testable)
    need = seeds_to_reach(alpha / m, alternative)
    if testable["cannot_reach"].all():
        row = testable.loc[testable["p_floor"].idxmin()]
        n = int(row["n_pairs"] - row["zeros_dropped"])
        return [
            f"{family}: no comparison can reach significance: with {n} non-zero paired seeds "
            f"the smallest p is {row['p_floor']:.2g}, above the strictest Holm level "
            f"{alpha / m:.3g} (alpha {alpha:g} over {m} comparisons); {need} or more seeds "
            "(all differences non-zero) could"
        ]
    stuck = testable[testable["cannot_reach"]]
    return [
        f"{family}: {r['a']} vs {r['b']} cannot reach significance: even its smallest "
        f"possible p ({r['p_floor']:.2g}) gives a Holm-adjusted p of at least "
        f"{r['best_holm_p']:.2g} > {alpha:g}"
        for _, r in stuck.iterrows()
    ]


def condition_warnings(table: ScoreTable, frames: list[pd.DataFrame]) -> list[str]:
    """Name every comparison whose paired runs were trained under different numeric conditions
    (device type, precision, CPU threads, determinism, torch version): such a pair mixes a
    difference of conditions into the difference of configurations."""
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    conditions = table.conditions
    if conditions is None:
        return out
    for frame in frames:
        for a, b in zip(frame.get("a", []), frame.get("b", [])):
            if (a, b) in seen or a not in conditions or b not in conditions:
                continue
            seen.add((a, b))
            both = table.scores[[a, b]].notna().all(axis=1)
            differ = [
                (seed, conditions.at[seed, a], conditions.at[seed, b])
                for seed in conditions.index[both]
                if conditions.at[seed, a] != conditions.at[seed, b]
            ]
            if differ:
                seed, x, y = differ[0]
                out.append(
                    f"{a} vs {b}: {len(differ)} of {int(both.sum())} pairs were trained under "
                    f"different conditions (seed {seed}: {x or 'unknown'} vs {y or 'unknown'}); "
                    "their differences mix conditions with configurations"
                )
    return out


def stochastic_sentence(table: ScoreTable) -> str:
    """What kept the pairing for activations random in training (rrelu)."""
    if "stochastic" not in table.info:
        return ""
    names = sorted({str(a) for a in table.info.loc[table.info["stochastic"], "activation"]})
    if not names:
        return ""
    one = len(names) == 1
    it, its = ("it", "its") if one else ("they", "their")
    return (
        f"{' and '.join(names)} {'is' if one else 'are'} random in training; {its} noise came "
        f"from a random stream of {its} own, seeded by the run's seed, the layer and the call, "
        f"so that {it} shared the other configurations' initial weights, data order, "
        "augmentation and dropout masks, and each run could be repeated exactly; at evaluation "
        f"{it} {'was' if one else 'were'} deterministic."
    )


def conditions_sentence(table: ScoreTable) -> str:
    """The conditions of the ok runs, with counts, for the methods paragraph."""
    if table.conditions is None:
        return ""
    used = table.conditions.where(table.scores.notna()).stack().dropna()
    used = used[used != ""]
    if used.empty:
        return ""
    counts = used.value_counts()
    listed = "; ".join(f"{condition} ({n} run{'s' * (n != 1)})" for condition, n in counts.items())
    return (
        f"Runs were trained on {listed}."
        if len(counts) > 1
        else f"Every run was trained on {counts.index[0]}."
    )


# --- across experiments -----------------------------------------------------------------------


def across_methods(result) -> str:
    """The paragraph for the summary across experiments (stats.experiments.Across)."""
    n, k = len(result.experiments), len(result.configs)
    side = SIDES[result.alternative]
    parts = [
        f"Across experiments, the {n} experiments ({', '.join(result.experiments)}) were compared "
        f"on the {k} configuration{'s' * (k != 1)} every one of them trained with at least one ok "
        "run, at two levels."
    ]
    if result.friedman is not None:
        f, cd = result.friedman, result.nemenyi
        parts.append(
            "Experiment level (Demšar 2006): each experiment's mean test error per configuration "
            "was one score and the experiments were the blocks. Configurations were ranked within "
            "each experiment (rank 1 = lowest mean error, mid-ranks for ties) and compared by an "
            f"omnibus Friedman test (p-value: {f.method}). Post-hoc, {result.family} was tested on "
            "the difference of rank sums, two configurations at a time: Demšar's z is reported, "
            "and the p-value used is that statistic's exact permutation distribution under the "
            "Friedman null (every arrangement of an experiment's ranks equally likely), "
            f"{side}, Holm-adjusted within the family at alpha = {result.alpha:g}. For all pairs, "
            f"Nemenyi's critical difference at alpha = {cd.alpha:g} is {cd.critical_difference:.3g} "
            f"(q = {cd.q_alpha:.3f}); configurations whose mean ranks differ by no more are joined "
            "in the critical-difference diagram. Wins, ties and losses count the experiments in "
            "which that experiment's own Holm-adjusted Wilcoxon verdict was better, no evidence, or "
            "worse."
        )
    if result.meta.empty:
        parts.append("No seed-level meta-analysis was made (the warnings say why).")
        return " ".join(parts)
    unit = result.unit.difference
    parts.append(
        "Seed level: for each comparison, each experiment contributed the mean of its per-seed "
        f"paired differences (in {unit}) and that mean's variance (the differences' variance over "
        "their number); these were pooled by a random-effects meta-analysis (DerSimonian-Laird "
        "between-experiment variance tau^2; the pooled difference's confidence interval and test "
        "from the Hartung-Knapp-Sidik-Jonkman variance, never below the plain random-effects one, "
        f"with a t distribution on k - 1 df, {side}), Holm-adjusted within the family at alpha = "
        f"{result.alpha:g}. Heterogeneity is Cochran's Q with its chi-square p and I^2. An "
        "experiment whose differences had a variance of 0, or fewer than 2 paired seeds, could not "
        "be weighted and was left out of that comparison's pool (named in the warnings)."
    )
    return " ".join(parts)
