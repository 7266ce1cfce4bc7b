"""A family's sequential decisions, from its paired differences in seed order, and what the next
round must train.

`decide` replays the design from the first look every time it is called: the decisions are a
pure function of the differences in seed order, so a stopped run that resumes reaches the same
decisions, and differences that arrive after a comparison stopped change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from elubench.core.errors import StatsError
from elubench.stats.sequential import engine
from elubench.stats.sequential.design import SequentialDesign
from elubench.stats.verdicts import BETTER, NO_EVIDENCE, WORSE

OPEN = "open"  # needs more seeds
# why a comparison stopped (Decision.stop)
EFFICACY, FUTILITY, MAX_SEEDS, NOT_STOPPED = "efficacy", "futility", "max seeds", "not stopped"


@dataclass(frozen=True)
class Decision:
    """One comparison's standing. `state`: the verdict words (better | worse | no evidence, or
    the family's own words) or "open". The numbers are those of `look`: for a decided
    comparison the look that crossed the boundary, else the last look it reached."""

    state: str
    stop: str  # efficacy | futility | max seeds | not stopped
    seeds_used: int  # paired seeds the comparison trained on (the seeds of the look it stopped at)
    look: int  # 1-based; 0: not yet at its first look
    statistic: float  # sum over seeds of sign(d) * rank / (n + 1) (the scores over the grid)
    z: float  # the statistic over its null standard deviation (futility reads it)
    p: float  # the exact sign-flip p of that look alone (nominal)
    threshold: float  # the nominal p of the efficacy boundary at that look and `level`
    level: float  # the family level it is judged at: alpha / s (Holm's, with recycling)
    next_look: int | None  # paired seeds its next look needs (open comparisons only)
    reason: str  # in words


def decide(
    family: Mapping[str, npt.ArrayLike],
    design: SequentialDesign,
    words: tuple[str, str] = (BETTER, WORSE),
) -> dict[str, Decision]:
    """The decision of each comparison of one family (its size m is the number of comparisons
    given, fixed in advance: a comparison with no seeds yet still counts), from its per-seed
    differences d = score(a) - score(b) in seed order. `words` name a negative decision (a lower)
    and a positive one, as in elubench.stats.verdicts."""
    names = list(family)
    if not names:
        return {}
    rows = [np.asarray(family[name], dtype=float).ravel() for name in names]
    for name, row in zip(names, rows):
        if not np.isfinite(row).all():
            raise StatsError(
                f"{name}: a difference that is not a number",
                hint="pass only seeds where both configurations have an ok run",
            )
    differences = np.full((1, len(names), max(1, *(r.size for r in rows))), np.nan)
    for j, row in enumerate(rows):
        differences[0, j, : row.size] = row
    paths = engine.run(differences, design)
    rejected = int((paths.state[0] == engine.REJECTED).sum())
    return {
        name: _decision(paths, j, rows[j].size, rejected, design, words)
        for j, name in enumerate(names)
    }


def _decision(
    paths: engine.Paths,
    j: int,
    available: int,
    rejected: int,
    design: SequentialDesign,
    words: tuple[str, str],
) -> Decision:
    looks, m, alpha = design.looks, paths.state.shape[1], design.alpha
    state, k = int(paths.state[0, j]), int(paths.look[0, j])
    used = looks[k] if k >= 0 else min(available, looks[-1])
    if state == engine.REJECTED:
        s = int(np.flatnonzero(paths.crossed_at[0, j] >= 0).max())  # its strictest crossing
        at, sign = int(paths.crossed_at[0, j, s]), int(paths.crossed_sign[0, j, s])
        p, threshold = float(paths.crossed_p[0, j, s]), float(paths.crossed_threshold[0, j, s])
        level, decided = alpha / (s + 1), int(paths.decided_at[0, j])
        reason = (
            f"crossed the efficacy boundary at look {at + 1} ({looks[at]} seeds): p = {p:.3g} "
            f"<= {threshold:.3g} at level {level:.3g}"
        )
        if decided > at:
            reason += (
                f"; rejected at look {decided + 1}, once the comparisons rejected before it "
                "passed their alpha on (Holm)"
            )
        return Decision(
            words[0] if sign < 0 else words[1],
            EFFICACY,
            used,
            at + 1,
            float(paths.crossed_statistic[0, j, s]) / design.grid,
            float(paths.crossed_z[0, j, s]),
            p,
            threshold,
            level,
            None,
            reason,
        )
    # Holm's level alpha / (m - rejections): now for an open comparison, when it stopped for one
    # that stopped (its record is frozen there)
    s = m - rejected if state == engine.OPEN else int(paths.holm[0, j])
    level, threshold = alpha / s, float(paths.threshold[0, j, s - 1]) if k >= 0 else 0.0
    p, z = float(paths.p[0, j]), float(paths.z[0, j])
    if not threshold:
        shown = f"p = {p:.3g}; no p of this look could cross at level {level:.3g}"
    elif p > threshold:
        shown = f"p = {p:.3g} > {threshold:.3g} at level {level:.3g}"
    else:  # crossed at its Holm level, not at every level its closed test needs (discreteness)
        shown = f"p = {p:.3g} <= {threshold:.3g} at level {level:.3g}, "
        shown += "not at every level its closed test needs"
    side = "|z|" if design.alternative == "two-sided" else "z towards the alternative"
    stop = {engine.FUTILE: FUTILITY, engine.EXHAUSTED: MAX_SEEDS}.get(state, NOT_STOPPED)
    if stop == FUTILITY:
        bound = float(paths.futility[0, j])
        text = f"futile at look {k + 1} ({looks[k]} seeds): z = {z:+.2f}, {side} below the "
        text += f"futility bound {bound:.2f} ({shown})"
    elif stop == MAX_SEEDS:
        text = f"max seeds ({looks[-1]}) reached without crossing ({shown})"
    elif k < 0:
        text = f"{available} paired seeds: its first look needs {looks[0]}"
    else:
        text = f"open after look {k + 1} ({looks[k]} seeds, {shown}): its next look needs "
        text += f"{looks[k + 1]} paired seeds"
    return Decision(
        NO_EVIDENCE if stop != NOT_STOPPED else OPEN,
        stop,
        used,
        k + 1,
        float(paths.statistic[0, j]) / design.grid,
        z,
        p,
        threshold,
        level,
        looks[k + 1] if stop == NOT_STOPPED else None,
        text,
    )


@dataclass(frozen=True)
class NextRound:
    """What the next round trains: every configuration an open comparison needs, up to `seeds`
    paired seeds (the earliest next look of an open comparison); `seeds` is None when every
    comparison is decided."""

    seeds: int | None
    open: tuple[str, ...]
    configurations: tuple[str, ...]


def next_round(
    decisions: Mapping[str, Decision], needs: Mapping[str, Sequence[str]] | None = None
) -> NextRound:
    """The next round from every family's decisions (names unique across families). `needs`
    maps a comparison to the configurations it compares; the baseline, needed by every
    comparison against it, trains while any of them is open."""
    still = tuple(name for name, decision in decisions.items() if decision.state == OPEN)
    nexts = [decisions[name].next_look for name in still]
    seeds = min((n for n in nexts if n is not None), default=None)
    configurations: set[str] = set()
    for name in still:
        configurations.update((needs or {}).get(name, ()))
    return NextRound(seeds, still, tuple(sorted(configurations)))
