"""The verdict rule, in one place, and the words for a test's side.

A comparison of a against b is "better" (a has the lower error) or "worse" only where its
family-adjusted p-value is at most alpha, in the direction its own test statistic gives (never
the mean's, where the test is on ranks); otherwise "no evidence"; and "not testable" where no
test could be made (too few pairs). Every family of every table, within an experiment and
across experiments, is judged by `verdicts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from elubench.core.errors import StatsError
from elubench.spec.schema import ALTERNATIVES

if TYPE_CHECKING:
    import numpy.typing as npt

BETTER, WORSE, NO_EVIDENCE, NOT_TESTABLE = "better", "worse", "no evidence", "not testable"
VERDICTS = (BETTER, WORSE, NO_EVIDENCE, NOT_TESTABLE)

# A test's side, in the words of the methods paragraph (SIDES) and of a table's note (SIDE).
SIDES = {
    "two-sided": "two-sided",
    "less": "one-sided (alternative: a has lower error than b)",
    "greater": "one-sided (alternative: a has higher error than b)",
}
SIDE = {"two-sided": "two-sided", "less": "one-sided (a lower)", "greater": "one-sided (a higher)"}


def verdicts(
    p_adjusted: npt.ArrayLike,
    direction: npt.ArrayLike,
    alpha: float,
    words: tuple[str, str] = (BETTER, WORSE),
) -> npt.NDArray[np.object_]:
    """One verdict per comparison: `words[0]` where the adjusted p is at most alpha and
    `direction` (the sign of the test's statistic: < 0 when a has the lower error) is negative,
    `words[1]` where it is positive, "no evidence" otherwise, and "not testable" where p is
    NaN (no test was made)."""
    p = np.asarray(p_adjusted, dtype=float)
    sign = np.sign(np.asarray(direction, dtype=float))
    significant = p <= alpha
    out = np.where(
        significant & (sign < 0),
        words[0],
        np.where(significant & (sign > 0), words[1], NO_EVIDENCE),
    ).astype(object)
    out[np.isnan(p)] = NOT_TESTABLE
    return out


def flipped(verdict: str) -> str:
    """The verdict of b against a, from a's against b."""
    return {BETTER: WORSE, WORSE: BETTER}.get(verdict, verdict)


def check_options(alternative: str, alpha: float = 0.05) -> None:
    if alternative not in ALTERNATIVES:
        raise StatsError(
            f"unknown alternative {alternative!r}", hint=f"use one of {', '.join(ALTERNATIVES)}"
        )
    if not 0 < alpha < 1:
        raise StatsError(
            f"alpha must be between 0 and 1, got {alpha}", hint="the usual choice is 0.05"
        )
