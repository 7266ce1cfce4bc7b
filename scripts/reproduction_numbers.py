"""The numbers docs/reproduction.md quotes beside the paper's claims, from recorded runs.

    python scripts/reproduction_numbers.py RESULTS

For each experiment found in RESULTS: per configuration and evaluation, the mean over seeds of
the training loss, the test error (reconstruction MSE for the autoencoder) and, for the FC net,
the bias shift (the median over units of each unit's mean activation, averaged over the hidden
layers); then paired Wilcoxon signed-rank tests (scipy, two-sided, exact) over seeds of each
activation against ReLU on the last evaluation's training loss and mean |bias shift|. A
documentation aid: elubench's own tables (`elubench compare`) give the test-error statistics.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from scipy.stats import wilcoxon

from elubench.store.reader import load_experiments


def _curves(tables) -> pd.DataFrame:
    metrics = tables.metrics
    frame = metrics.groupby(["config", "iteration"])[["train_loss", "test_error"]].mean()
    activations = tables.activations
    if activations is not None and len(activations):
        shift = activations.assign(abs_median=activations["median"].abs())
        per_run = shift.groupby(["config", "seed", "iteration"])[["median", "abs_median"]].mean()
        frame = frame.join(per_run.groupby(["config", "iteration"]).mean())
    return frame.reset_index()


def per_run(tables) -> pd.DataFrame:
    """One row per run (config, seed): the summaries the claims are about."""
    metrics = tables.metrics
    last = metrics["iteration"].max()
    trained = metrics[metrics["iteration"] > 0]
    first = trained["iteration"].min()
    keys = ["config", "seed"]
    out = pd.DataFrame(
        {
            "final test error": metrics[metrics["iteration"] == last].set_index(keys)["test_error"],
            "first-evaluation training loss": trained[trained["iteration"] == first].set_index(
                keys
            )["train_loss"],
            "mean training loss over evaluations": trained.groupby(keys)["train_loss"].mean(),
            "final training loss": trained[trained["iteration"] == last].set_index(keys)[
                "train_loss"
            ],
        }
    )
    act = tables.activations
    if act is not None and len(act):
        act = act.assign(abs_median=act["median"].abs())
        out["final |bias shift|"] = act[act["iteration"] == last].groupby(keys)["abs_median"].mean()
        out["mean |bias shift| over evaluations"] = (
            act[act["iteration"] > 0].groupby(keys)["abs_median"].mean()
        )
    return out


def paired_tests(runs: pd.DataFrame, baseline: str) -> list[str]:
    """Each configuration against `baseline` on every summary, paired by seed (scipy's exact
    Wilcoxon signed-rank test, two-sided)."""
    lines = []
    configs = runs.index.get_level_values("config").unique()
    for column in runs.columns:
        values = runs[column].unstack("config")
        for config in configs.drop(baseline):
            pair = values[[config, baseline]].dropna()
            diff = pair[config] - pair[baseline]
            test = wilcoxon(pair[config], pair[baseline], alternative="two-sided", method="exact")
            lines.append(
                f"  {column}: {config} - {baseline} = {diff.mean():+.4g} (mean of "
                f"{len(pair)} paired seeds; lower in {int((diff < 0).sum())}), "
                f"Wilcoxon exact two-sided p = {test.pvalue:.3g}"
            )
    return lines


def main(root: Path) -> None:
    pd.set_option("display.width", 160)
    pd.set_option("display.max_rows", 400)
    for tables in load_experiments(root, skip_bad=False):
        print(
            f"== {tables.name}: {len(tables.runs)} runs, "
            f"{dict(tables.runs['status'].value_counts())}"
        )
        curves = _curves(tables)
        marks = sorted(curves["iteration"].unique())
        if len(marks) > 12:  # the first evaluations and a few later ones
            marks = marks[:4] + marks[4 :: max(1, (len(marks) - 4) // 6)] + marks[-1:]
        shown = curves[curves["iteration"].isin(marks)]
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        runs = per_run(tables)
        print(
            runs.groupby("config")
            .agg(["mean", "std"])
            .T.to_string(float_format=lambda v: f"{v:.4g}")
        )
        baseline = (tables.spec or {}).get("compare", {}).get("baseline") or "relu"
        if baseline in runs.index.get_level_values("config"):
            print("\n".join(paired_tests(runs, baseline)))
        print()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results-reproduction"))
