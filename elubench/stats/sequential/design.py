"""The sequential design: when to look, how much of alpha each look may spend, when to give up.

The test at each look is a sign-flip (randomization) test on the paired differences, computed
exactly conditionally on their magnitudes (elubench.stats.sequential.engine), so its error
rate holds under the Wilcoxon test's own null, symmetry of the differences about zero, for any
distribution: continuous or integer, with ties and zeros, heavy-tailed, not even identical
across seeds. Each look spends alpha by the power function alpha * t**rho of the fraction of
seeds seen, t = n / max seeds (Kim & DeMets 1987, Biometrika 74:149-154; Lan & DeMets 1983,
"Discrete sequential boundaries for clinical trials", Biometrika 70:659-663, for spending);
what a look cannot spend, because the test is discrete, carries over to the next.

Futility is non-binding: the error computation ignores it, so stopping for futility can only
lower the error rate. A comparison is futile at a look when its standardized statistic z, in the
direction the alternative looks for (|z| for two-sided), is below that look's bound.

The defaults (first look at 4 seeds, then one look per seed to 20, rho = 0.2, futility bounds
0.4 at the first look, then rising linearly from 0.9 to 2.5, raised for a comparison judged at
a stricter Holm level) are the output of `benchmarks/sequential_simulation.py --calibrate` on
its calibration draws: for one comparison (normal differences), the fewest runs averaged over
d_z 0, the design effect (where the fixed 10-seed Wilcoxon design has 80 % power) and twice
it, keeping power within 0.01 of the fixed design's; for families, the largest futility
shift keeping power within 0.005 of the fixed design's at 3 to 6 configurations. The study
validates them on other draws (docs/statistics.md). Validity does not depend on them: any
looks, rho and bounds keep the error rate at most alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from elubench.core.errors import StatsError
from elubench.stats.paired import EXACT_MAX_N
from elubench.stats.verdicts import check_options

DEFAULT_MAX_SEEDS = 20
# no two-sided test can reject at 4 or 5 seeds (floors 0.125, 0.0625): a look for futility only
FIRST_LOOK = 4
SPENDING_EXPONENT = 0.2  # alpha * t**0.2: most of alpha spent early, where strong effects end
FUTILITY_FIRST = 0.4  # |z| bound at the first look
FUTILITY_START, FUTILITY_END = 0.9, 2.5  # bounds of the second and the second-to-last look
# a comparison judged at alpha / h (Holm's level in a family) needs a larger z to cross: its
# futility bounds rise by this fraction of the distance between the normal critical values
FUTILITY_SHIFT = 0.5
SCORE_GRID = 20  # a score is round(grid * rank / (n + 1)): an integer, so sums are exact


@dataclass(frozen=True)
class SequentialDesign:
    """A group-sequential signed-rank design for every comparison of a family.

    `looks` are the numbers of paired seeds at which comparisons are tested (the last is the
    most seeds any comparison trains); `futility` the bound on z below which a comparison stops
    at each look (0 at the last look, where every comparison stops anyway)."""

    alpha: float
    alternative: str
    looks: tuple[int, ...]
    spending_exponent: float
    futility: tuple[float, ...]
    grid: int
    futility_shift: float = 0.0

    def __post_init__(self) -> None:
        check_options(self.alternative, self.alpha)
        looks = self.looks
        if not looks or looks[0] < 1 or any(b <= a for a, b in zip(looks, looks[1:])):
            raise StatsError(
                f"the looks must be increasing seed counts of at least 1, got {list(looks)}",
                hint="for example 4, 5, 6, ..., 20",
            )
        if looks[-1] > EXACT_MAX_N:
            raise StatsError(
                f"at most {EXACT_MAX_N} seeds in a sequential design, got {looks[-1]}",
                hint=f"use --max-seeds {EXACT_MAX_N} or fewer (or the fixed design)",
            )
        if len(self.futility) != len(looks):
            raise StatsError(f"one futility bound per look: {len(looks)} looks")
        if self.spending_exponent <= 0 or self.grid < 1:
            raise StatsError("the spending exponent and the score grid must be positive")

    @property
    def max_seeds(self) -> int:
        return self.looks[-1]

    def spent(self, look: int) -> float:
        """The fraction of alpha the looks up to `look` (0-based) may spend together."""
        return float((self.looks[look] / self.max_seeds) ** self.spending_exponent)

    def futility_bound(self, look: int, holm: np.ndarray) -> np.ndarray:
        """The futility bound on z at `look` (0-based) of a comparison judged at alpha / holm:
        the look's bound, raised by `futility_shift` times the distance between the normal
        critical values at alpha / holm and at alpha (a stricter level needs a larger z)."""
        holm = np.maximum(np.asarray(holm, dtype=np.int64), 1)
        if not self.futility_shift or holm.size == 0:
            return np.full(holm.shape, self.futility[look])
        sides = 2 if self.alternative == "two-sided" else 1
        critical = np.array([_critical(self.alpha / (h * sides)) for h in range(1, holm.max() + 1)])
        raised = self.futility_shift * (critical[holm - 1] - critical[0])
        return np.asarray(self.futility[look] + raised)

    @classmethod
    def default(
        cls,
        alpha: float = 0.05,
        max_seeds: int = DEFAULT_MAX_SEEDS,
        alternative: str = "two-sided",
        looks: tuple[int, ...] | None = None,
    ) -> SequentialDesign:
        """elubench's design for `run --until-decided`: a look at every seed from the fourth to
        `max_seeds` unless `looks` are given, spending alpha * t**0.2, futility bounds rising
        from 0.4 and 0.9 to 2.5 (the module docstring says how they were chosen)."""
        if looks is None:
            looks = tuple(range(min(FIRST_LOOK, max_seeds), max_seeds + 1))
        return cls(
            alpha=alpha,
            alternative=alternative,
            looks=tuple(looks),
            spending_exponent=SPENDING_EXPONENT,
            futility=futility_bounds(tuple(looks)),
            grid=max(SCORE_GRID, looks[-1]),
            futility_shift=FUTILITY_SHIFT,
        )


def _critical(tail: float) -> float:
    return NormalDist().inv_cdf(1 - tail)


def futility_bounds(
    looks: tuple[int, ...],
    first: float = FUTILITY_FIRST,
    start: float = FUTILITY_START,
    end: float = FUTILITY_END,
) -> tuple[float, ...]:
    """`first` at the first look, none (0) at the last, and in between rising linearly in the
    seeds from `start` at the second look to `end` at the second-to-last (with the defaults,
    20 seeds and a look per seed: 0.9 + 0.114 (n - 5))."""
    if len(looks) == 1:
        return (0.0,)
    middle = looks[1:-1]
    span = max(middle[-1] - middle[0], 1) if middle else 1
    rising = [round(start + (end - start) * (n - middle[0]) / span, 6) for n in middle]
    return (first, *rising, 0.0)
