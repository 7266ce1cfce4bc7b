"""The matrix's sequential decisions: the fixed design's families (stats.families: each
activation against the baseline within each BN setting, the BN effects, BN x activation), each
comparison's paired differences in seed order, decided by the sequential design; and what the
next round must train. One function of the runs, for the driver of `run --until-decided`
(execution.sequential) and for `compare` on its results, so the two cannot disagree."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from elubench.core.errors import StatsError
from elubench.core.limits import MAX_EXACT_PAIRS
from elubench.stats.bn_families import bn_pairs
from elubench.stats.families import comparison_pairs
from elubench.stats.scores import ScoreTable, prepare
from elubench.stats.sequential.decisions import (
    EFFICACY,
    FUTILITY,
    MAX_SEEDS,
    Decision,
    NextRound,
    decide,
    next_round,
)
from elubench.stats.sequential.design import SequentialDesign
from elubench.stats.verdicts import BETTER, WORSE
from elubench.store.record import SequentialPlan

# family key -> (its question in words, the words of a negative and a positive decision)
FAMILIES = {
    "activations": ("activation comparisons", (BETTER, WORSE)),
    "bn_effects": ("BN effects", ("BN helps", "BN hurts")),
    "bn_contrasts": ("BN × activation", ("BN helps a more", "BN helps b more")),
}


@dataclass(frozen=True)
class Planned:
    """One comparison of the plan: its family, its name (unique in the matrix), the
    configurations it needs, and its per-seed differences where all of them have an ok run."""

    family: str
    name: str
    configs: tuple[str, ...]
    differences: np.ndarray
    seeds: tuple[int, ...]  # the seeds of `differences`, in order


@dataclass
class MatrixDecisions:
    """Every comparison's sequential decision, family by family, and the next round."""

    design: SequentialDesign  # the activation family's (the BN families': two-sided)
    planned: list[Planned]
    decisions: dict[str, Decision]
    next: NextRound

    @property
    def decided(self) -> bool:
        return self.next.seeds is None

    def table(self) -> pd.DataFrame:
        """One row per comparison: family, comparison, decision and its numbers (JSON-ready)."""
        rows = []
        for p in self.planned:
            d = self.decisions[p.name]
            rows.append(
                {
                    "family": FAMILIES[p.family][0],
                    "comparison": p.name,
                    "decision": d.state,
                    "stopped": d.stop,
                    "seeds_used": d.seeds_used,
                    "paired_seeds": len(p.differences),
                    "look": d.look,
                    "statistic": d.statistic,
                    "z": d.z,
                    "p": d.p,
                    "threshold": d.threshold,
                    "level": d.level,
                    "next_look": d.next_look,
                    "reason": d.reason,
                }
            )
        return pd.DataFrame(rows)


def planned_comparisons(
    table: ScoreTable, baseline: str, seed_order: list[int] | None = None
) -> list[Planned]:
    """The fixed design's comparisons, with their differences in seed order (`seed_order`, the
    order the seeds were trained in; default ascending): score(a) - score(b); a BN effect: with
    BN - without; a BN contrast: the difference of two effects."""
    scores = table.scores.sort_index()
    if seed_order is not None:
        scores = scores.reindex([s for s in seed_order if s in scores.index])
    out: list[Planned] = []

    def add(family: str, name: str, configs: tuple[str, ...], d: pd.Series) -> None:
        d = d.dropna()
        out.append(
            Planned(family, name, configs, d.to_numpy(dtype=float), tuple(map(int, d.index)))
        )

    pairs, _, _, _ = comparison_pairs(table, baseline, all_pairs=False)
    for a, b in pairs:
        add("activations", f"{a} vs {b}", (a, b), scores[a] - scores[b])
    reference = baseline if baseline in set(table.info["activation"]) else None
    if reference is None and baseline in table.configs:
        reference = str(table.info.loc[baseline, "activation"])
    bn = bn_pairs(table, reference, all_pairs=False)
    effect = {}
    for group, activation, on, off in bn.effects:
        effect[group, activation] = (scores[on] - scores[off], (on, off))
        add("bn_effects", f"BN effect on {on} vs {off}", (on, off), scores[on] - scores[off])
    for group, a, b in bn.contrasts:
        (da, ca), (db, cb) = effect[group, a], effect[group, b]
        add("bn_contrasts", f"BN effect of {a} vs of {b}", (*ca, *cb), da - db)
    return out


def decide_matrix(
    table: ScoreTable,
    *,
    baseline: str,
    alpha: float,
    alternative: str,
    max_seeds: int,
    seed_order: list[int] | None = None,
) -> MatrixDecisions:
    """Every comparison's decision under the sequential design of `max_seeds` seeds, and the
    next round (None seeds: every comparison decided or stopped). Each family is one Holm
    family, as in the fixed design; the BN families are two-sided, as there."""
    design = SequentialDesign.default(alpha=alpha, max_seeds=max_seeds, alternative=alternative)
    two_sided = dataclasses.replace(design, alternative="two-sided")
    planned = planned_comparisons(table, baseline, seed_order)
    decisions: dict[str, Decision] = {}
    for family, (_, words) in FAMILIES.items():
        members = {p.name: p.differences for p in planned if p.family == family}
        if members:
            chosen = design if family == "activations" else two_sided
            decisions.update(decide(members, chosen, words))
    needs = {p.name: p.configs for p in planned}
    return MatrixDecisions(design, planned, decisions, next_round(decisions, needs))


def plan_decisions(runs: pd.DataFrame, plan: SequentialPlan) -> MatrixDecisions:
    """The decisions of a sequential design (sequential.json) from the runs of its results
    folder (store.reader's runs table): its configurations at its seeds, in the order it
    trains them. StatsError while a configuration of the design has no run yet (its
    comparisons would be left out of their family, which would change the family's size)."""
    mine = runs[runs["config"].isin(plan.configurations) & runs["seed"].isin(plan.seeds)]
    absent = [c for c in plan.configurations if c not in set(mine["config"])]
    if absent:
        raise StatsError(
            f"no run yet of {', '.join(absent)}: the sequential design decides once every "
            "configuration it compares has run its first seeds",
            hint="run the same `elubench run --until-decided` again to train them",
        )
    return decide_matrix(
        prepare(mine),
        baseline=plan.baseline,
        alpha=plan.alpha,
        alternative=plan.alternative,
        max_seeds=plan.max_seeds,
        seed_order=plan.seeds,
    )


def fewest_max_seeds(comparisons: int, alpha: float, alternative: str) -> int | None:
    """The fewest max seeds with which the design can decide any comparison of a family of
    `comparisons`: a clean sweep (every seed one way) at the last look crosses the boundary
    at Holm's strictest level alpha / comparisons. None: not even at MAX_EXACT_PAIRS seeds."""
    sweep = {f"c{j}": -np.arange(1.0, MAX_EXACT_PAIRS + 1) for j in range(comparisons)}
    for n in range(1, MAX_EXACT_PAIRS + 1):
        design = SequentialDesign.default(alpha=alpha, max_seeds=n, alternative=alternative)
        sweeps = {name: d[:n] for name, d in sweep.items()}
        if any(d.stop == EFFICACY for d in decide(sweeps, design).values()):
            return n
    return None


def design_text(plan: SequentialPlan, decisions: MatrixDecisions) -> str:
    """The methods paragraph's sentence on the sequential design and where it stopped."""
    design = decisions.design
    words = {EFFICACY: "decided", FUTILITY: "futile", MAX_SEEDS: "at max seeds"}
    stops = pd.Series([words.get(d.stop, "still open") for d in decisions.decisions.values()])
    counted = ", ".join(f"{n} {why}" for why, n in stops.value_counts().items())
    bn = (
        ", the BN families two-sided"
        if any(p.family != "activations" for p in decisions.planned)
        else ""
    )
    return (
        f"Seeds were trained in rounds under a group-sequential design (run --until-decided): "
        f"at {design.looks[0]} paired seeds and after every further seed up to "
        f"{design.max_seeds}, each comparison was tested by the exact sign-flip test of its "
        f"rank scores, alpha spent as alpha * t^{design.spending_exponent:g} of the seeds seen "
        f"(Kim & DeMets 1987), with non-binding futility stops; each family Holm-corrected at "
        f"alpha {plan.alpha:g}, the activation comparisons {plan.alternative} against "
        f"{plan.baseline}{bn}. The family-wise error is at most alpha by construction (exact "
        f"conditional boundaries, closed testing), checked by simulation (elubench's "
        f"docs/statistics.md). Comparisons: {counted}."
    )


@dataclass
class SequentialResult:
    """What `compare` says of a results folder trained by the sequential design: the design,
    its decisions on the runs recorded (None, with `note`, before every configuration has a
    run), and how many runs it holds."""

    plan: SequentialPlan
    decisions: MatrixDecisions | None
    runs: int
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        design = None if self.decisions is None else self.decisions.design
        rows = [] if self.decisions is None else self.decisions.table().to_dict("records")
        return {
            **self.plan.model_dump(mode="json"),
            "looks": None if design is None else list(design.looks),
            "spending": None
            if design is None
            else f"alpha * t^{design.spending_exponent:g} (t: seeds seen / max seeds)",
            "decided": None if self.decisions is None else self.decisions.decided,
            "runs": self.runs,
            "note": self.note or None,
            "comparisons": rows,
        }


def sequential_result(runs: pd.DataFrame, plan: SequentialPlan) -> SequentialResult:
    """The design's decisions on a results folder's runs (a folder not yet past its first
    look: no decisions, and why)."""
    mine = runs[runs["config"].isin(plan.configurations) & runs["seed"].isin(plan.seeds)]
    try:
        return SequentialResult(plan, plan_decisions(runs, plan), len(mine))
    except StatsError as exc:
        return SequentialResult(plan, None, len(mine), exc.message)
