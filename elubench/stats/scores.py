"""Runs as a seed × configuration table of scores, and the per-configuration descriptives."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from elubench.core.errors import StatsError
from elubench.core.units import CLASSIFICATION, Unit, unit_of_tasks
from elubench.store.record import STATUSES

# --- the runs as a seed x configuration table -------------------------------------------------


@dataclass
class ScoreTable:
    configs: list[str]  # in the order they first appear
    info: pd.DataFrame  # per config: activation, batchnorm, init, group (the init, or "")
    scores: (
        pd.DataFrame
    )  # seed x config: error counts (exact in float64) or fractions; NaN unless ok
    status: pd.DataFrame  # seed x config: ok | diverged | failed | missing
    pp: float  # percentage points per unit of `scores`
    counts: bool  # `scores` are integer error counts
    conditions: pd.DataFrame | None = None  # seed x config: the numeric conditions of the run
    implementations: dict | None = None  # config -> {activation kernel: runs}, ok runs
    # What a score and a difference x pp are in (core.units): percentage points of test error,
    # or an autoencoder's reconstruction MSE x 100.
    unit: Unit = CLASSIFICATION


def condition_text(run) -> str:
    """What can change a run's numbers besides its spec and seed: device type, precision,
    threads on a CPU, determinism, torch's version ("" where the record does not say)."""

    def get(key):
        value = run.get(key)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    device = str(get("device") or "").split(":")[0]
    parts = [device, get("precision")]
    if device == "cpu" and get("threads") is not None:
        parts.append(f"{int(get('threads'))} thread{'s' * (int(get('threads')) != 1)}")
    if get("deterministic"):
        parts.append("deterministic")
    if get("torch"):
        parts.append(f"torch {get('torch')}")
    return ", ".join(str(p) for p in parts if p)


def prepare(runs: pd.DataFrame) -> ScoreTable:
    if "spec_name" in runs and runs["spec_name"].nunique() > 1:
        names = ", ".join(map(str, pd.unique(runs["spec_name"])))
        raise StatsError(
            f"runs of more than one spec were passed together ({names})",
            hint="compare one spec at a time: group the runs by spec_name",
        )
    twice = runs.duplicated(["config", "seed"], keep=False)
    if twice.any():
        row = runs[twice].iloc[0]
        raise StatsError(
            f"more than one run of {row['config']} with seed {row['seed']}",
            hint="each configuration and seed must appear once; check the run ids",
        )
    if runs.empty:
        raise StatsError("no runs to compare", hint="train some first: elubench run SPEC")
    # A matrix with no ok run yet (every run failed or diverged so far) is still a table: its
    # counts, its warnings, and comparisons that are not testable.
    ok = runs[runs["status"] == "ok"]
    configs = list(pd.unique(runs["config"]))
    # Integer counts when every ok run has them on one test set (classification); else fractions.
    counts_ok = (
        not ok.empty
        and "test_errors" in ok
        and ok["test_errors"].notna().all()
        and ok["test_size"].nunique() == 1
    )
    if counts_ok:
        values, pp = (
            ok["test_errors"].astype("int64").astype("float64"),
            100.0 / float(ok["test_size"].iloc[0]),
        )
    else:
        values, pp = ok["test_error"].astype("float64"), 100.0
    status = (
        runs.pivot(index="seed", columns="config", values="status")
        .reindex(columns=configs)
        .sort_index()
        .astype(object)
        .fillna("missing")
        .rename_axis(index="seed", columns="config")
    )
    scores = (
        pd.DataFrame(
            {
                "seed": ok["seed"].to_numpy(),
                "config": ok["config"].to_numpy(),
                "v": values.to_numpy(),
            }
        )
        .pivot(index="seed", columns="config", values="v")
        .reindex(index=status.index, columns=status.columns)
    )
    info = (
        runs.drop_duplicates("config")
        .set_index("config")
        .loc[configs, ["activation", "batchnorm", "init"]]
    )
    info["batchnorm"] = info["batchnorm"].astype(bool)
    stochastic = (
        runs["activation_stochastic"].eq(True)
        if "activation_stochastic" in runs
        else pd.Series(False, index=runs.index)
    )
    info["stochastic"] = stochastic.groupby(runs["config"]).any().reindex(configs).to_numpy()
    # Comparisons stay within one init scheme; the scheme names the group only when the runs
    # have several (the labels then carry it too: relu/xavier).
    several = info["init"].nunique() > 1
    info["group"] = [str(init) if several else "" for init in info["init"]]
    conditions = (
        pd.DataFrame(
            {
                "seed": runs["seed"].to_numpy(),
                "config": runs["config"].to_numpy(),
                "c": [condition_text(row) for row in runs.to_dict("records")],
            }
        )
        .pivot(index="seed", columns="config", values="c")
        .reindex(index=status.index, columns=status.columns)
    )
    implementations = None
    if "activation_impl" in ok:
        known = ok[ok["activation_impl"].notna()]
        implementations = {
            config: group["activation_impl"].value_counts().to_dict()
            for config, group in known.groupby("config", sort=False)
        }
    tasks = set(runs["task"]) if "task" in runs else {"classification"}
    unit = unit_of_tasks(tasks)
    if unit is None:
        raise StatsError(
            f"the runs mix tasks ({', '.join(sorted(map(str, tasks)))}), whose scores "
            "have no common unit",
            hint="compare one spec at a time",
        )
    return ScoreTable(
        configs, info, scores, status, pp, bool(counts_ok), conditions, implementations, unit
    )


# --- descriptives -----------------------------------------------------------------------------


def descriptives(
    runs: pd.DataFrame, reference: dict[str, tuple[float, float]] | None = None
) -> pd.DataFrame:
    """Per configuration: run counts by status and test error (%) of the ok runs, with the
    reference's published mean and std where it names the configuration."""
    return descriptives_table(prepare(runs), runs, reference)


def descriptives_table(table: ScoreTable, runs: pd.DataFrame, reference) -> pd.DataFrame:
    from scipy import stats

    ok = runs[runs["status"] == "ok"]
    counts = (
        runs.groupby("config")["status"]
        .value_counts()
        .unstack(fill_value=0)
        .reindex(index=table.configs, columns=list(STATUSES), fill_value=0)
        .add_prefix("n_")
    )
    agg = (
        (ok["test_error"].astype(float) * table.unit.scale)
        .groupby(ok["config"])
        .agg(["count", "mean", "std", "median", "min", "max"])
        .reindex(table.configs)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.975, agg["count"] - 1) * agg["std"] / np.sqrt(agg["count"])
    refs = pd.DataFrame(
        [_reference_for(c, table.info.loc[c], reference or {}) for c in table.configs],
        index=table.configs,
        columns=["ref_mean", "ref_std"],
    )
    out = pd.concat(
        [
            counts,
            agg[["mean", "std"]],
            (agg["mean"] - half).rename("ci_low"),
            (agg["mean"] + half).rename("ci_high"),
            agg[["median", "min", "max"]],
            refs,
        ],
        axis=1,
    )
    return out.rename_axis("config").reset_index()


def _reference_for(config: str, info, reference: dict) -> tuple[float, float]:
    keys = [config]
    if not info["batchnorm"] and not info["group"]:  # the paper's names: "lrelu" for lrelu(...)
        keys += [str(info["activation"]), str(info["activation"]).split("(")[0]]
    for key in keys:
        if key in reference:
            mean, std = reference[key]
            return float(mean), float(std)
    return math.nan, math.nan
