"""Learning speed, cost, the methods paragraph, and `compare`: every statistic of one spec."""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass

import numpy as np
import pandas as pd

from elubench.errors import StatsError
from elubench.spec import default_baseline
from elubench.stats.families import (BNInteraction, FriedmanResult, PairedComparisons, bn_effects,
                                     comparisons, friedman_table)
from elubench.stats.paired import EXACT_MAX_N, PRIMARY
from elubench.stats.scores import ScoreTable, check_options, descriptives_table, prepare


# --- learning speed and cost ------------------------------------------------------------------

@dataclass
class LearningSpeed:
    target: float         # test error fraction to reach
    target_source: str
    per_run: pd.DataFrame  # run_id, config, seed, iterations (NaN: never reached)
    table: pd.DataFrame    # config, n, n_reached, mean_iterations, median_iterations


def learning_speed(runs: pd.DataFrame, metrics: pd.DataFrame, target: float | None = None) -> LearningSpeed:
    """Iterations each ok run needed to reach `target` test error (the first evaluation at or
    below it). Default target: the worst configuration's mean final test error."""
    return _speed(prepare(runs), runs, metrics, target)


def _speed(table: ScoreTable, runs: pd.DataFrame, metrics: pd.DataFrame, target: float | None) -> LearningSpeed:
    ok = runs[runs["status"] == "ok"]
    source = "given"
    if target is None:
        means = ok.groupby("config")["test_error"].mean()
        target, source = float(means.max()), f"mean final test error of the worst configuration ({means.idxmax()})"
    hits = metrics[metrics["run_id"].isin(ok["run_id"]) & (metrics["test_error"] <= target)]
    first = hits.groupby("run_id")["iteration"].min()
    per_run = ok[["run_id", "config", "seed"]].reset_index(drop=True)
    per_run["iterations"] = per_run["run_id"].map(first).astype(float)
    grouped = per_run.groupby("config", sort=False)["iterations"]
    out = pd.DataFrame({"n": grouped.size(), "n_reached": grouped.count(), "mean_iterations": grouped.mean(),
                        "median_iterations": grouped.median()})
    out = out.reindex([c for c in table.configs if c in out.index]).rename_axis("config").reset_index()
    return LearningSpeed(float(target), source, per_run, out)


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Images/s per configuration (ok runs) and time per image relative to relu with the same
    BN and init (relu's images/s over the configuration's); NaN without such a relu."""
    return _cost(prepare(runs), runs)


def _cost(table: ScoreTable, runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs["status"] == "ok"]
    speed = ok.groupby("config")["images_per_second"].mean().reindex(table.configs)
    info = table.info
    relu = {(bn, g): c for c, bn, g in zip(info.index, info["batchnorm"], info["group"])
            if info.loc[c, "activation"] == "relu"}
    relu_speed = [speed.get(relu.get((bn, g)), math.nan) for bn, g in zip(info["batchnorm"], info["group"])]
    return pd.DataFrame({"config": table.configs, "activation": info["activation"].to_numpy(),
                         "batchnorm": info["batchnorm"].to_numpy(),
                         "n": ok.groupby("config").size().reindex(table.configs, fill_value=0).to_numpy(),
                         "images_per_second": speed.to_numpy(),
                         "time_per_image_vs_relu": np.asarray(relu_speed) / speed.to_numpy()})


# --- methods text and compare -----------------------------------------------------------------

def methods_text(paired: PairedComparisons, descriptives: pd.DataFrame,
                 friedman: FriedmanResult | None = None, bn: BNInteraction | None = None) -> str:
    """A paragraph describing the statistics, to paste into a paper's methods section."""
    import scipy

    t = paired.table
    k = len(descriptives)
    left_out = int(descriptives["n_diverged"].sum() + descriptives["n_failed"].sum())
    parts = [f"Each configuration ({k} in all) was trained with {paired.n_seeds} seeds; a given seed gave "
             "every configuration the same initial weight draws, data order and augmentation, so runs were "
             "compared in pairs by seed."]
    parts.append(f"{left_out} runs that failed or diverged were excluded from the tests and are reported "
                 "separately." if left_out else "No run failed or diverged.")
    if friedman is not None:
        parts.append(f"An omnibus Friedman test (tie-corrected, with the Iman-Davenport F) compared the "
                     f"{friedman.k} configurations over the {friedman.n_blocks} seeds complete in all of them.")
    if len(t):
        who = ("every pair of configurations" if paired.baseline is None
               else f"each configuration with the baseline {paired.baseline}")
        side = {"two-sided": "two-sided", "less": "one-sided (alternative: a has lower error than b)",
                "greater": "one-sided (alternative: a has higher error than b)"}[paired.alternative]
        n_lo, n_hi = int(t["n_pairs"].min()), int(t["n_pairs"].max())
        pairs = f"{n_lo}" if n_lo == n_hi else f"{n_lo} to {n_hi}"
        units = "the number of misclassified test images" if paired.counts else "test error"
        parts.append(
            f"We compared {who} on the per-seed differences in {units} ({pairs} pairs per comparison) "
            f"with the {PRIMARY} test (primary; {side}) and the "
            f"paired t-test. Zero differences were dropped (Wilcoxon's method; {int(t['zeros_dropped'].sum())} "
            f"dropped in all). The Wilcoxon p-value was exact, from the permutation distribution over all "
            f"2^n sign assignments with mid-ranks for tied differences, for up to {EXACT_MAX_N} non-zero "
            f"pairs, and from the normal approximation with tie and continuity correction above that "
            f"(used here: {', '.join(sorted(set(t['wilcoxon_method'])))}). Wilcoxon p-values of the "
            f"{paired.family_size} comparisons were adjusted with Holm's method"
            + (" and reported as Benjamini-Hochberg q-values" if paired.q_values else "")
            + f"; significance at alpha = {paired.alpha:g}. The smallest attainable Wilcoxon p-value was "
            f"{t['p_floor'].min():.3g}. Effect sizes: the mean difference in percentage points with its 95 % "
            f"paired t-interval, d_z (mean over the standard deviation of the differences), and the "
            f"matched-pairs rank-biserial correlation; we also report the seeds a paired t-test would need "
            f"for 80 % power at alpha = {paired.alpha:g} for the observed d_z.")
    if bn is not None and len(bn.effects):
        parts.append("The effect of batch normalization was the per-seed difference with minus without it, "
                     "per activation; activations were compared by the per-seed difference of these "
                     "effects (two-sided Wilcoxon and paired t-tests, Holm-adjusted within each family).")
    parts.append(f"Software: Python {platform.python_version()}, NumPy {np.__version__}, "
                 f"SciPy {scipy.__version__}, pandas {pd.__version__}.")
    return " ".join(parts)


@dataclass
class Comparison:
    spec_name: str | None
    baseline: str
    configs: list[str]
    descriptives: pd.DataFrame
    friedman: FriedmanResult | None
    paired: PairedComparisons
    bn: BNInteraction | None
    speed: LearningSpeed | None
    cost: pd.DataFrame
    methods: str
    warnings: list[str]


def compare(runs: pd.DataFrame, metrics: pd.DataFrame | None = None, *, baseline: str | None = None,
            all_pairs: bool = False, alternative: str = "two-sided", alpha: float = 0.05,
            q_values: bool = False, target: float | None = None,
            reference: dict[str, tuple[float, float]] | None = None) -> Comparison:
    """Every statistic of one spec's runs, with warnings a reader must see."""
    check_options(alternative, alpha)
    table = prepare(runs)
    baseline = baseline or default_baseline(table.configs)
    paired = comparisons(table, baseline, all_pairs, alternative, alpha, q_values)
    warnings = _run_warnings(table)
    try:
        omnibus = friedman_table(table) if len(table.configs) > 1 else None
    except StatsError as exc:
        omnibus = None
        warnings.append(f"Friedman test skipped: {exc.message}")
    warnings += [f"not tested: {message}" for message in paired.untestable]
    warnings += _floor_warnings(paired.table[paired.table["verdict"] != "not testable"], paired)
    bn = bn_effects(table, table.info.loc[baseline, "activation"], all_pairs, alpha)
    bn = bn if len(bn.effects) else None
    if bn is not None:
        warnings += [f"not tested: {message}" for message in bn.untestable]
    desc = descriptives_table(table, runs, reference)
    speed = _speed(table, runs, metrics, target) if metrics is not None else None
    names = pd.unique(runs["spec_name"]) if "spec_name" in runs else []
    return Comparison(str(names[0]) if len(names) else None, baseline, table.configs, desc, omnibus, paired,
                      bn, speed, _cost(table, runs), methods_text(paired, desc, omnibus, bn), warnings)


def _run_warnings(table: ScoreTable) -> list[str]:
    out = []
    bad = table.status.stack()
    bad = bad[bad.isin(["diverged", "failed"])]
    if len(bad):
        by = bad.groupby([bad.index.get_level_values("config"), bad]).size()
        out.append(f"{len(bad)} run(s) did not finish ok and are left out of the tests: "
                   + ", ".join(f"{c} {n} {s}" for (c, s), n in by.items()))
    if len(table.configs) < 2:
        out.append("only one configuration: nothing to compare")
    incomplete = table.status[~table.status.eq("ok").all(axis=1)]
    if len(incomplete):
        shown = [f"{seed} ({', '.join(f'{c} {s}' for c, s in row.items() if s != 'ok')})"
                 for seed, row in incomplete.head(10).iterrows()]
        more = f" and {len(incomplete) - 10} more" if len(incomplete) > 10 else ""
        out.append(f"{len(incomplete)} seed(s) lack an ok run in some configuration; comparisons use the "
                   f"seeds both sides have: " + "; ".join(shown) + more)
    return out


def _floor_warnings(t: pd.DataFrame, paired: PairedComparisons) -> list[str]:
    if not len(t):
        return []

    def seeds(row) -> str:
        n = row["n_pairs"] - row["zeros_dropped"]
        return f"{n} seeds" + (f" ({row['zeros_dropped']} zero differences dropped)" if row["zeros_dropped"] else "")

    strictest = paired.alpha / paired.family_size
    if (t["p_floor"] > strictest).all():
        row = t.loc[t["p_floor"].idxmin()]
        return [f"p-value floor {row['p_floor']:.2g} with {seeds(row)} is above the adjusted alpha "
                f"{strictest:.3g}: no comparison can reach significance"]
    own = t["p_floor"] > t["holm_alpha"]
    out = [f"{r['a']} vs {r['b']}: p-value floor {r['p_floor']:.2g} with {seeds(r)} is above its Holm "
           f"alpha {r['holm_alpha']:.3g}: it cannot reach significance" for _, r in t[own].iterrows()]
    after = t[t["floor_warning"] & ~own]
    if len(after):
        out.append(", ".join(f"{a} vs {b}" for a, b in zip(after["a"], after["b"]))
                   + ": cannot reach significance either, as Holm's procedure stops before them")
    return out
