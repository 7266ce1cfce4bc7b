"""The two batch-normalization families (stats.families has the activation comparisons):

    BN effects        per activation: with BN against without, seed by seed
    BN x activation   per activation: its BN effect against the baseline activation's

Each is one Holm family, two-sided; the verdict rule is stats.families.judge_family's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import pandas as pd

from elubench.stats.families import (
    BAYES_COLUMNS,
    PairedComparisons,
    bayes_columns,
    judge_family,
)
from elubench.stats.paired import paired_or_untestable
from elubench.stats.scores import ScoreTable, prepare


@dataclass
class BNInteraction:
    effects: pd.DataFrame  # per init group and activation: d = err(with BN) - err(without)
    contrasts: pd.DataFrame  # per init group and pair: BN effect of a - BN effect of b
    alpha: float = 0.05
    untestable: list[str] = field(default_factory=list)


def bn_interaction(
    runs: pd.DataFrame,
    reference_activation: str | None = None,
    *,
    all_pairs: bool = False,
    alpha: float = 0.05,
    rope: float | None = None,
) -> BNInteraction:
    """Per-seed BN effect per activation (negative = BN helps), and the difference of BN effects
    between activations (each vs `reference_activation`, or every pair), within each init.
    Tests are two-sided; each of the two tables is one Holm family."""
    return bn_effects(prepare(runs), reference_activation, all_pairs, alpha, rope)


@dataclass(frozen=True)
class BNPairs:
    """The BN families' comparisons: per init group, each activation run with and without BN
    (effects: group, activation, with BN, without), and the pairs of activations whose BN
    effects are contrasted (group, a, b)."""

    effects: list[tuple[str, str, str, str]]
    contrasts: list[tuple[str, str, str]]


def bn_pairs(table: ScoreTable, reference_activation, all_pairs: bool) -> BNPairs:
    """Each activation against `reference_activation` (or every pair) within each init."""
    effects, contrasts = [], []
    for group, info in table.info.groupby("group", sort=False):
        names = []
        for activation, rows in info.groupby("activation", sort=False):
            if rows["batchnorm"].nunique() == 2:
                bn = rows["batchnorm"].to_numpy()
                effects.append((str(group), str(activation), rows.index[bn][0], rows.index[~bn][0]))
                names.append(str(activation))
        pairs = (
            [(a, reference_activation) for a in names if a != reference_activation]
            if reference_activation in names and not all_pairs
            else list(combinations(names, 2))
        )
        contrasts += [(str(group), a, b) for a, b in pairs]
    return BNPairs(effects, contrasts)


def bn_effects(
    table: ScoreTable, reference_activation, all_pairs, alpha, rope=None
) -> BNInteraction:
    effects: list[dict] = []
    contrasts: list[dict] = []
    untestable: list[str] = []
    plan = bn_pairs(table, reference_activation, all_pairs)
    effect = {}
    for group, activation, on, off in plan.effects:
        effect[group, activation] = table.scores[on] - table.scores[off]
        d = effect[group, activation].dropna().to_numpy()
        effects.append(
            {
                "init": group,
                "activation": activation,
                "a": on,
                "b": off,
                **paired_or_untestable(
                    f"BN effect on {on} vs {off}", d, table.pp, "two-sided", untestable
                ),
                **bayes_columns(d * table.pp, rope),
            }
        )
    for group, a, b in plan.contrasts:
        d = (effect[group, a] - effect[group, b]).dropna().to_numpy()
        contrasts.append(
            {
                "init": group,
                "a": a,
                "b": b,
                **paired_or_untestable(
                    f"BN effect of {a} vs of {b}", d, table.pp, "two-sided", untestable
                ),
                **bayes_columns(d * table.pp, rope),
            }
        )
    judged = dict(alpha=alpha, alternative="two-sided")
    return BNInteraction(
        judge_family(
            effects,
            ["init", "activation", "a", "b", *BAYES_COLUMNS],
            words=("BN helps", "BN hurts"),
            **judged,
        ),
        judge_family(
            contrasts,
            ["init", "a", "b", *BAYES_COLUMNS],
            words=("BN helps a more", "BN helps b more"),
            **judged,
        ),
        alpha,
        untestable,
    )


def reference_activation(table: ScoreTable, comparisons: PairedComparisons) -> str | None:
    """The activation the BN contrasts are taken against: the baseline activation, or the
    baseline configuration's activation."""
    if comparisons.mode == "activation":
        return comparisons.baseline
    if comparisons.mode == "configuration":
        return str(table.info.loc[comparisons.baseline, "activation"])
    return None
