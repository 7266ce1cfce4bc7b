"""The simulation study of the sequential design (`elubench run --until-decided`), printed as the
Markdown tables of docs/statistics.md, "Sequential design (--until-decided)".

    python benchmarks/sequential_simulation.py               # the study (a few minutes, 2 cores)
    python benchmarks/sequential_simulation.py --quick       # a tenth of the simulations
    python benchmarks/sequential_simulation.py --calibrate   # re-derive the design's constants

The study validates elubench.stats.sequential's default design on seeds it was not tuned on
(VALIDATION_SEED onwards; --calibrate uses CALIBRATION_SEED onwards):

1. family-wise error under the null, with the design's own looks, 20,000 simulated matrices
   per scenario: normal, heavy-tailed (t with 2 df, Cauchy) and integer test errors (ties and
   zeros: about 1 in 5 differences 0, and about half), 2 to 6 configurations (1 to 5
   comparisons against a shared baseline);
2. power and runs against the fixed 10-seed design (exact Wilcoxon, Holm), normal
   differences, d_z 0, 0.5, 1 and 2, 2 to 6 configurations;
3. the issue's efficiency target: at d_z 0, the design effect (where the fixed design has 80 %
   power) and twice it, the runs the sequential design trains, as a share of the fixed
   design's, and its power beside the fixed design's.

Intervals are 95 % Wilson intervals over the simulated matrices.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elubench.stats.paired import signed_rank
from elubench.stats.sequential.design import SequentialDesign, futility_bounds
from elubench.stats.sequential.simulation import (
    NOISES,
    DesignComparison,
    simulate_design,
)

VALIDATION_SEED = 2_000_000
CALIBRATION_SEED = 1_000
SIMULATIONS = 10_000  # per power scenario
NULL_SIMULATIONS = 20_000  # per null scenario: the 95 % interval's half-width about 0.003
ALPHA, MAX_SEEDS, FIXED_SEEDS = 0.05, 20, 10
NULL_NOISES = ("normal", "t2", "cauchy", "integer", "integer-coarse")
EFFECTS = (0.0, 0.5, 1.0, 2.0)
COMPARISONS = (1, 2, 3, 4, 5)  # 2 to 6 configurations
RUNS_TARGET, POWER_MARGIN = 0.70, 0.02
CALIBRATION_MARGIN = 0.01
SHIFT_MARGIN = 0.005


def design_effect(m: int, seed: int, simulations: int = 20_000) -> float:
    """The d_z at which the fixed design has 80 % power per comparison, every comparison of
    the family with that effect (normal differences), by bisection on common draws. Normal
    differences never tie, so each p is the exact signed-rank p of T+ alone: a table of
    elubench's own test (paired.signed_rank) over T+ = 0..n(n+1)/2, then Holm."""
    n = FIXED_SEEDS
    table = np.array(
        [signed_rank(_with_rank_sum(t, n), "two-sided").p for t in range(n * (n + 1) // 2 + 1)]
    )
    rng = np.random.default_rng(seed)
    noise = NOISES["normal"](rng, (simulations, m + 1, n))

    def power(dz: float) -> float:
        errors = noise.copy()
        errors[:, 1:, :] -= dz
        d = errors[:, 1:] - errors[:, :1]
        ranks = np.abs(d).argsort(axis=2).argsort(axis=2) + 1
        t_plus = (ranks * (d > 0)).sum(axis=2)
        p = table[t_plus]
        lower = 2 * t_plus < n * (n + 1) // 2  # T+ < T-: the configuration has the lower error
        return float(((holm_rows(p) <= ALPHA) & lower).mean())

    low, high = 0.3, 3.0
    for _ in range(20):
        middle = (low + high) / 2
        low, high = (middle, high) if power(middle) < 0.8 else (low, middle)
    return round(high, 3)


def _with_rank_sum(t: int, n: int) -> np.ndarray:
    """Differences 1..n (ranks 1..n) whose positive ones sum to t (largest ranks first)."""
    d = -np.arange(1.0, n + 1)
    for rank in range(n, 0, -1):
        if rank <= t:
            d[rank - 1], t = rank, t - rank
    return d


def holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (paired.holm, row by row)."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    adjusted = np.maximum.accumulate(
        np.minimum(1.0, (m - np.arange(m)) * np.take_along_axis(p, order, axis=-1)), axis=-1
    )
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def simulate(job: tuple[SequentialDesign, int, float, str, int, int]) -> DesignComparison:
    design, m, effect, noise, simulations, seed = job
    return simulate_design(
        design, m, effect, noise=noise, simulations=simulations, seed=seed, fixed_seeds=FIXED_SEEDS
    )


def run_all(jobs: list[tuple], workers: int) -> list[DesignComparison]:
    if workers <= 1:
        return [simulate(job) for job in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(simulate, jobs))


def rate(r) -> str:
    return f"{r.value:.4f} [{r.low:.4f}, {r.high:.4f}]"


def study(simulations: int, null_simulations: int, workers: int) -> None:
    design = SequentialDesign.default(ALPHA, MAX_SEEDS)
    seeds = itertools.count(VALIDATION_SEED)
    null_jobs = [
        (design, m, 0.0, n, null_simulations, next(seeds)) for n in NULL_NOISES for m in COMPARISONS
    ]
    power_jobs = [
        (design, m, e, "normal", simulations, next(seeds)) for m in COMPARISONS for e in EFFECTS
    ]
    effects = {m: design_effect(m, next(seeds)) for m in COMPARISONS}
    target_jobs = [
        (design, m, e, "normal", simulations, next(seeds))
        for m in COMPARISONS
        for e in (effects[m], 2 * effects[m])
    ]
    started = time.time()
    results = run_all(null_jobs + power_jobs + target_jobs, workers)
    nulls, powers = (
        results[: len(null_jobs)],
        results[len(null_jobs) : len(null_jobs) + len(power_jobs)],
    )
    targets = results[len(null_jobs) + len(power_jobs) :]
    elapsed = time.time() - started

    print(f"### Family-wise error under the null ({null_simulations:,} matrices per row)\n")
    print(
        "| differences | configurations | FWER, sequential [95 % interval] | FWER, fixed 10 seeds | runs, % of fixed |"
    )
    print("|---|---|---|---|---|")
    worst = 0.0
    for r in nulls:
        worst = max(worst, r.fwer.high)
        print(
            f"| {r.noise} | {r.comparisons + 1} | {rate(r.fwer)} | {r.fixed_fwer.value:.4f} "
            f"| {100 * r.runs_ratio:.0f} |"
        )
    print(
        f"\nHighest upper end of a 95 % interval: {worst:.4f} (target: at most {ALPHA + 0.005}).\n"
    )

    print(
        f"### Power and runs against the fixed design (normal differences, {simulations:,} matrices per row)\n"
    )
    print(
        "| configurations | d_z | power, sequential | power, fixed | difference | seeds per comparison | runs, sequential | runs, fixed | runs, % of fixed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in powers:
        d = r.effects[0]
        power = "–" if d == 0 else f"{r.power.value:.3f}"
        fixed = "–" if d == 0 else f"{r.fixed_power.value:.3f}"
        diff = "–" if d == 0 else f"{r.power.value - r.fixed_power.value:+.3f}"
        print(
            f"| {r.comparisons + 1} | {d:g} | {power} | {fixed} | {diff} | {r.seeds:.2f} "
            f"| {r.runs:.1f} ± {1.96 * r.runs_se:.1f} | {r.fixed_runs} | {100 * r.runs_ratio:.0f} |"
        )

    print("\n### The efficiency target: runs at d_z 0, the design effect and twice it\n")
    print(
        "| configurations | design effect (fixed power 0.8) | runs % at 0 / effect / twice | average | power − fixed at effect / twice | target met |"
    )
    print("|---|---|---|---|---|---|")
    by_m = {r.comparisons: r for r in powers if r.effects[0] == 0}
    for m in COMPARISONS:
        at, twice = (r for r in targets if r.comparisons == m)
        ratios = [by_m[m].runs_ratio, at.runs_ratio, twice.runs_ratio]
        gaps = [at.power.value - at.fixed_power.value, twice.power.value - twice.fixed_power.value]
        met = np.mean(ratios) <= RUNS_TARGET and min(gaps) >= -POWER_MARGIN
        print(
            f"| {m + 1} | {effects[m]:.3f} | {' / '.join(f'{100 * x:.0f}' for x in ratios)} "
            f"| {100 * np.mean(ratios):.1f} % | {gaps[0]:+.3f} / {gaps[1]:+.3f} | {'yes' if met else 'no'} |"
        )
    print(
        f"\n{len(results)} scenarios, {sum(r.simulations for r in results):,} simulated matrices in "
        f"{elapsed:.0f} s on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"{workers} worker processes."
    )


def calibrate(simulations: int, workers: int) -> None:
    """Re-derive the design's constants on the calibration seeds: for one comparison, the
    spending exponent and futility bounds with the fewest runs averaged over d_z 0, the design
    effect and twice it, keeping power at least the fixed design's - CALIBRATION_MARGIN at the
    design effect and twice it (half the target's 0.02: the rest is for the validation's draws);
    then, for families, the largest futility shift (the fewest runs) whose power stays within
    SHIFT_MARGIN of the fixed design's at the design effect and twice it, 3 to 6
    configurations."""
    base = SequentialDesign.default(ALPHA, MAX_SEEDS)
    seeds = itertools.count(CALIBRATION_SEED)
    effects = {m: design_effect(m, next(seeds)) for m in COMPARISONS}
    grid = list(
        itertools.product((0.2, 0.25, 0.3), (0.2, 0.4, 0.6), (0.9, 1.0, 1.1), (2.0, 2.26, 2.5))
    )
    seed = next(seeds)  # common draws for every candidate
    jobs = []
    for rho, first, start, end in grid:
        candidate = dataclasses.replace(
            base, spending_exponent=rho, futility=futility_bounds(base.looks, first, start, end)
        )
        jobs += [
            (candidate, 1, e, "normal", simulations, seed + i)
            for i, e in enumerate((0.0, effects[1], 2 * effects[1]))
        ]
    results = run_all(jobs, workers)
    best: dict[float, tuple] = {}  # per spending exponent: (runs ratio, params, power gap)
    for i, params in enumerate(grid):
        zero, at, twice = results[3 * i : 3 * i + 3]
        ratio = float(np.mean([zero.runs_ratio, at.runs_ratio, twice.runs_ratio]))
        gap = min(r.power.value - r.fixed_power.value for r in (at, twice))
        if gap >= -CALIBRATION_MARGIN and (params[0] not in best or ratio < best[params[0]][0]):
            best[params[0]] = (ratio, params, gap)
    for ratio, params, gap in sorted(best.values(), key=lambda b: b[0]):
        print(
            f"one comparison: rho, first, start, end = {params}: runs {100 * ratio:.1f} % of "
            f"fixed, power - fixed {gap:+.3f}"
        )
    rho, first, start, end = min(best.values(), key=lambda b: b[0])[1]
    print(f"chosen: rho, first, start, end = {(rho, first, start, end)}")
    base = dataclasses.replace(
        base, spending_exponent=rho, futility=futility_bounds(base.looks, first, start, end)
    )
    shifts = (0.0, 0.25, 0.4, 0.5, 0.75)
    jobs = [
        (
            dataclasses.replace(base, futility_shift=shift),
            m,
            e,
            "normal",
            simulations,
            seed + 10 * m + k,
        )
        for shift in shifts
        for m in COMPARISONS[1:]
        for k, e in enumerate((0.0, effects[m], 2 * effects[m]))
    ]
    results = run_all(jobs, workers)
    chosen = None
    for i, shift in enumerate(shifts):
        chunk = results[12 * i : 12 * i + 12]
        ratio = np.mean([r.runs_ratio for r in chunk])
        gap = min(r.power.value - r.fixed_power.value for r in chunk if r.effects[0])
        chosen = shift if gap >= -SHIFT_MARGIN else chosen
        print(
            f"futility shift {shift}: runs {100 * ratio:.1f} % of fixed (3 to 6 configurations), "
            f"worst power - fixed {gap:+.3f}"
        )
    print(f"futility shift chosen: {chosen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the simulations")
    parser.add_argument("--calibrate", action="store_true", help="re-derive the constants")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    if args.calibrate:
        calibrate(SIMULATIONS // scale, args.workers)
    else:
        study(SIMULATIONS // scale, NULL_SIMULATIONS // scale, args.workers)


if __name__ == "__main__":
    main()
