"""The sequential design's operating characteristics, by simulation, beside the fixed design's:
family-wise error, power, expected seeds and runs (`run --dry-run --until-decided`, and the
study in benchmarks/sequential_simulation.py).

A simulated matrix is m + 1 configurations (a baseline and m others) over the design's most
seeds, each configuration's error per seed drawn from one noise model, shifted by its effect;
the family is each configuration against the baseline, so the m differences share the
baseline's noise, as a real matrix's do. Runs are counted per configuration: a configuration
trains while its comparison is open, the baseline while any comparison is open. The fixed
design trains every configuration `fixed_seeds` seeds and tests each comparison with the exact
Wilcoxon signed-rank test (zeros dropped, mid-ranks, as elubench.stats.paired.signed_rank) and
Holm, as `compare` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from elubench.core.errors import StatsError
from elubench.stats.paired import EXACT_MAX_N
from elubench.stats.sequential import engine
from elubench.stats.sequential.design import SequentialDesign

CHUNK_BYTES = 16 * 2**20  # the null laws of one chunk of matrices held at once (cache-sized)
Z95 = 1.959963984540054


def _student(df: float) -> Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]:
    return lambda rng, shape: rng.standard_t(df, shape) / math.sqrt(2)


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape) / math.sqrt(2)


# Per-configuration noise, scaled so that an effect of d_z shifts a configuration by d_z in the
# units of the differences' standard deviation (sqrt 2 times a configuration's); for the
# heavy-tailed ones, which have none, in the units of the same scale parameter.
NOISES: dict[str, Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]] = {
    "normal": _normal,
    "t3": _student(3),
    "t2": _student(2),
    "cauchy": _student(1),
    "integer": _normal,
    "integer-coarse": _normal,
}
# Whole test errors: the shifted normal errors in images (the differences' sd given here),
# rounded, so differences tie and are often 0: about 1 in 5 at sd 2, half at sd 0.7.
INTEGER = {"integer": 2.0, "integer-coarse": 0.7}


@dataclass(frozen=True)
class Rate:
    """A proportion over simulations with its 95 % Wilson interval."""

    value: float
    low: float
    high: float


def wilson(successes: int, trials: int) -> Rate:
    """The 95 % Wilson score interval of a binomial proportion (Wilson 1927)."""
    if trials == 0:
        return Rate(math.nan, math.nan, math.nan)
    p = successes / trials
    centre = (p + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 / (1 + Z95**2 / trials) * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2))
    return Rate(p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class DesignComparison:
    """Operating characteristics of the sequential and the fixed design on the same matrices."""

    comparisons: int
    effects: tuple[float, ...]
    noise: str
    simulations: int
    fixed_seeds: int
    fwer: Rate  # P(some comparison with no effect rejected); NaN when every one has an effect
    power: Rate  # P(a comparison with an effect rejected in its direction), over those
    seeds: float  # mean paired seeds a comparison trained on
    runs: float  # mean runs of the matrix
    runs_se: float
    fixed_fwer: Rate
    fixed_power: Rate

    @property
    def fixed_runs(self) -> int:
        return (self.comparisons + 1) * self.fixed_seeds

    @property
    def runs_ratio(self) -> float:
        return self.runs / self.fixed_runs


def simulate_design(
    design: SequentialDesign,
    comparisons: int,
    effects: float | Sequence[float] = 0.0,
    *,
    noise: str = "normal",
    simulations: int = 2000,
    seed: int = 0,
    fixed_seeds: int = 10,
) -> DesignComparison:
    """Simulate `simulations` matrices of `comparisons` configurations against a baseline.
    `effects` are d_z per comparison (one number: the same for all), in the direction the
    design's alternative looks for (two-sided: the configuration has the lower error)."""
    if noise not in NOISES:
        raise StatsError(f"unknown noise {noise!r}", hint=f"use one of {', '.join(NOISES)}")
    m = comparisons
    size = tuple(float(e) for e in np.broadcast_to(np.asarray(effects, dtype=float), (m,)))
    if m < 1 or simulations < 1 or not 1 <= fixed_seeds <= EXACT_MAX_N:
        raise StatsError("at least one comparison and one simulation, and 1 to 50 fixed seeds")
    direction = 1.0 if design.alternative == "greater" else -1.0
    shift = np.array([0.0, *(direction * e for e in size)])  # the baseline first
    seeds = max(design.max_seeds, fixed_seeds)
    width = 2 * design.grid * design.max_seeds + 1
    chunk = max(1, CHUNK_BYTES // (8 * m * (m + 1) * width))
    rng = np.random.default_rng(seed)
    null = np.array(size) == 0
    tallies = np.zeros(4, dtype=np.int64)  # seq error, seq hits, fixed error, fixed hits
    runs: list[np.ndarray] = []
    used = 0.0
    for start in range(0, simulations, chunk):
        count = min(chunk, simulations - start)
        errors = NOISES[noise](rng, (count, m + 1, seeds)) + shift[None, :, None]
        if noise in INTEGER:
            errors = np.rint(errors * INTEGER[noise])
        d = errors[:, 1:, :] - errors[:, :1, :]
        paths = engine.run(d, design)
        rejected = paths.state == engine.REJECTED
        sign = _deciding_sign(paths)
        n = np.asarray(design.looks)[paths.look]
        runs.append(n.sum(axis=1) + n.max(axis=1))
        used += float(n.sum())
        fixed, fixed_sign = fixed_design(d[:, :, :fixed_seeds], design.alpha, design.alternative)
        for i, (hit, hit_sign) in enumerate(((rejected, sign), (fixed, fixed_sign))):
            tallies[2 * i] += int((hit & null).any(axis=1).sum())
            tallies[2 * i + 1] += int((hit & ~null & (hit_sign == direction)).sum())
    total = np.concatenate(runs).astype(float)
    effective = int((~null).sum()) * simulations
    return DesignComparison(
        m,
        size,
        noise,
        simulations,
        fixed_seeds,
        wilson(int(tallies[0]), simulations if null.any() else 0),
        wilson(int(tallies[1]), effective),
        used / (simulations * m),
        float(total.mean()),
        float(total.std(ddof=1) / math.sqrt(total.size)) if total.size > 1 else math.nan,
        wilson(int(tallies[2]), simulations if null.any() else 0),
        wilson(int(tallies[3]), effective),
    )


def _deciding_sign(paths: engine.Paths) -> np.ndarray:
    """The sign of the statistic where each comparison crossed its strictest boundary."""
    crossed = paths.crossed_at >= 0
    m = crossed.shape[2]
    strictest = m - 1 - np.argmax(crossed[..., ::-1], axis=2)
    return np.take_along_axis(paths.crossed_sign, strictest[..., None], axis=2)[..., 0]


def fixed_design(d: np.ndarray, alpha: float, alternative: str) -> tuple[np.ndarray, np.ndarray]:
    """The fixed design on differences (families, comparisons, seeds): each comparison's exact
    Wilcoxon signed-rank p (zeros dropped, mid-ranks: elubench.stats.paired.signed_rank's
    method, vectorized), Holm within each family; (rejected, sign of T+ - T-)."""
    from scipy.stats import rankdata

    families, m, n = d.shape
    rows = d.reshape(families * m, n)
    zeros = (rows == 0).sum(axis=1, keepdims=True)
    doubled = np.rint(2 * (rankdata(np.abs(rows), axis=1) - zeros)).astype(np.int64)
    doubled = np.where(rows != 0, doubled, 0)
    reach = int(doubled.sum(axis=1).max()) if rows.size else 0
    law = np.zeros((rows.shape[0], 1, 2 * reach + 1))
    law[:, 0, reach] = 1.0
    for column in range(n):  # the sign-flip law of S = sum sign * doubled rank
        engine.flip(law, doubled[:, column], 0, 2 * reach + 1)
    s = (np.sign(rows).astype(np.int64) * doubled).sum(axis=1)
    at_most = np.cumsum(law[:, 0, :], axis=1)[np.arange(rows.shape[0]), s + reach]
    at_least = np.cumsum(law[:, 0, ::-1], axis=1)[np.arange(rows.shape[0]), reach - s]
    p = {
        "less": at_most,
        "greater": at_least,
        "two-sided": np.minimum(1.0, 2 * np.minimum(at_most, at_least)),
    }[alternative].reshape(families, m)
    order = np.argsort(p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=1)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * sorted_p), axis=1)
    holm = np.empty_like(p)
    np.put_along_axis(holm, order, adjusted, axis=1)
    return holm <= alpha, np.sign(s).reshape(families, m).astype(np.int64)
