"""A random-effects meta-analysis of per-experiment mean differences: the seed-level view across
experiments (docs/statistics.md says why this and not a stratified signed-rank test).

Each experiment contributes the mean of its per-seed paired differences, y_i, and that mean's
variance, v_i = s_i^2 / n_i (s_i the standard deviation of the differences over its n_i seeds).
The between-experiment variance tau^2 is DerSimonian and Laird's moment estimate; the pooled
difference mu = sum w_i y_i / sum w_i with w_i = 1 / (v_i + tau^2). Its confidence interval and
test use the Hartung-Knapp-Sidik-Jonkman variance with a t distribution on k - 1 df, which
keeps its level with few experiments where the plain normal random-effects test does not
(IntHout, Ioannidis and Borm 2014, BMC Med Res Methodol 14:25), in the modified form that never
lets it fall below the plain random-effects variance (q* = max(1, q); Röver, Knapp and Friede
2015, BMC Med Res Methodol 15:99). Heterogeneity: Cochran's Q with its chi-square p on k - 1 df,
and I^2 = max(0, (Q - (k - 1)) / Q).

tests/stats/test_experiments.py checks every number against statsmodels' combine_effects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elubench.stats.paired import sided


@dataclass(frozen=True)
class RandomEffects:
    k: int  # experiments pooled
    estimate: float  # mu, in the unit of the inputs
    se: float  # its modified-HKSJ standard error
    ci_low: float
    ci_high: float  # 95% (t on k - 1 df), whatever alpha the tests use
    t: float
    p: float  # this side, t on k - 1 df
    tau2: float
    q: float  # Cochran's Q
    q_p: float
    i2: float  # in [0, 1]
    weights: tuple[float, ...]  # relative random-effects weights, summing to 1
    se_plain: float  # the plain random-effects standard error (normal), for reference


def random_effects(effects, variances, alternative: str = "two-sided") -> RandomEffects:
    """Pool `effects` (one per experiment) with their `variances` (> 0). Needs k >= 2.
    "less": the pooled difference is below 0."""
    from scipy import stats

    y = np.asarray(effects, dtype=float)
    v = np.asarray(variances, dtype=float)
    k = y.size
    if (
        k < 2
        or v.size != k
        or not (np.isfinite(y).all() and np.isfinite(v).all() and (v > 0).all())
    ):
        raise ValueError(
            f"random_effects needs 2 or more finite effects with positive variances; "
            f"got {k} effect(s), variances {v.tolist()}"
        )
    w = 1 / v
    fixed = float((w * y).sum() / w.sum())
    q = float((w * (y - fixed) ** 2).sum())
    c = float(w.sum() - (w**2).sum() / w.sum())
    tau2 = max(0.0, (q - (k - 1)) / c) if c > 0 else 0.0
    w_re = 1 / (v + tau2)
    mu = float((w_re * y).sum() / w_re.sum())
    var_plain = 1 / float(w_re.sum())
    # Hartung-Knapp: the weighted residual variance around mu, on k - 1 df, scales var_plain
    scale = float((w_re * (y - mu) ** 2).sum() / (k - 1))
    se = math.sqrt(var_plain * max(1.0, scale))
    t = mu / se
    df = k - 1
    half = float(stats.t.ppf(0.975, df)) * se
    p = sided(float(stats.t.cdf(t, df)), float(stats.t.sf(t, df)), alternative)
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    return RandomEffects(
        k,
        mu,
        se,
        mu - half,
        mu + half,
        t,
        p,
        tau2,
        q,
        float(stats.chi2.sf(q, df)),
        i2,
        tuple(w_re / w_re.sum()),
        math.sqrt(var_plain),
    )
