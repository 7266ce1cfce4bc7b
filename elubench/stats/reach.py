"""Before anything trains: how many comparisons each family will hold, the smallest p the
primary test can give with the spec's seeds, whether any comparison can reach significance,
and the fewest seeds that could. Pure Python: `run --dry-run` prints it without scipy."""

from __future__ import annotations

from dataclasses import dataclass

from elubench.stats.paired import floor_p, seeds_to_reach


@dataclass(frozen=True)
class FamilyReach:
    name: str  # activation comparisons | BN effects | BN × activation
    question: str
    size: int  # comparisons: Holm's m
    side: str  # the alternative of the family's tests
    seeds: int
    floor: float  # the smallest Wilcoxon p with `seeds` pairs, all differences non-zero
    strictest: float  # Holm's first level: alpha / m
    reachable: bool  # floor <= strictest: at least one comparison can be significant
    fewest_seeds: int  # the smallest number of seeds with floor <= strictest


def significance_reach(
    activations: list[str],
    batchnorm: list[bool],
    inits: list[str],
    baseline: str,
    seeds: int,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> list[FamilyReach]:
    """The families `elubench compare` will test on this matrix, as `stats.compare` forms them:
    `baseline` is an activation (each activation against it at the same BN setting and init)
    or a configuration label (every configuration against it)."""
    configs = len(activations) * len(batchnorm) * len(inits)
    if baseline in activations:
        comparisons = (
            (len(activations) - 1) * len(batchnorm) * len(inits),
            f"each activation against {baseline} at the same BN setting",
        )
    else:
        comparisons = (configs - 1, f"each configuration against {baseline}")
    families = [("activation comparisons", *comparisons, alternative)]
    if len(set(batchnorm)) == 2:
        families.append(
            (
                "BN effects",
                len(activations) * len(inits),
                "each activation with BN against without",
                "two-sided",
            )
        )
        families.append(
            (
                "BN × activation",
                (len(activations) - 1) * len(inits),
                "each activation's BN effect against another's",
                "two-sided",
            )
        )
    reaches = []
    for name, size, question, side in families:
        if size < 1:
            continue
        floor, strictest = floor_p(seeds, side), alpha / size
        reaches.append(
            FamilyReach(
                name,
                question,
                size,
                side,
                seeds,
                floor,
                strictest,
                floor <= strictest,
                seeds_to_reach(strictest, side),
            )
        )
    return reaches
