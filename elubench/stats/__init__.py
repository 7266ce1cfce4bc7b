"""Statistics over one spec's runs: descriptives, Friedman, paired tests, BN x activation,
learning speed and cost.

Runs are paired by seed: seed i gives every configuration the same initial weight draws (see
elubench.init for what each init scheme makes of them), data order, augmentation and dropout, so comparisons work on per-seed differences. Only status "ok" runs enter a
test; failed and diverged runs are counted in the tables and the warnings, never dropped
silently. Differences are taken on the integer error counts where a run has them, so float
round-off cannot break a tie. Pure functions on DataFrames; scipy.stats is imported inside the
functions that need it, to keep `import elubench.stats` fast.

    scores     the runs as a seed x configuration table; descriptives
    paired     one set of per-seed differences: Wilcoxon, t, effect sizes, power, Holm, BH
    families   one Holm family per question: comparisons, BN effects, BN x activation; Friedman
    omnibus    the Friedman test with an exact (or Monte Carlo) p at small n
    bayes      the Bayesian signed-rank test with a region of practical equivalence
    methods    the methods paragraph and the warnings
    reach      before training: family sizes, floors, the seeds significance needs
    verdicts   the verdict rule (better / worse / no evidence / not testable), the sides' words
    summary    learning speed, cost, `compare`
    experiments  across experiments (specs): ranks, Friedman, post-hoc, W/T/L, the seed-level pool
    ranks      post-hoc tests on mean ranks (Demšar 2006): exact rank-sum differences, Nemenyi
    meta       the random-effects meta-analysis (DerSimonian-Laird, modified HKSJ)
    sequential the sequential design of run --until-decided: group-sequential signed-rank tests
               with exact boundaries, Holm across looks, futility; decisions; simulation
"""
