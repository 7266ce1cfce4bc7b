"""The sequential paired design of `elubench run --until-decided`: seeds are trained in rounds,
and after each round every comparison of the plan is tested by a group-sequential signed-rank
test whose error rate holds however often one looks and whenever one stops.

    design      SequentialDesign: the looks, the alpha spending, the futility bounds
    engine      the exact sign-flip computation: scores, boundaries, crossings, Holm's closure
    decisions   Decision, decide (a family's decisions from its differences in seed order),
                next_round (what the next round must train)
    simulation  simulate_design: family-wise error, power and expected runs against the fixed
                design, by simulation (run --dry-run --until-decided, benchmarks/)

docs/statistics.md, "Sequential design (--until-decided)", says why this design and how it was
checked.
"""
