"""A results folder as tidy pandas tables: `elubench.load_results`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from elubench.store.reader import RunTables


@dataclass
class Results:
    """Every run under a results folder, of one spec or several (`spec_name` says which).

    - `runs`: one row per run: its identity (spec, activation, batchnorm, init, seed, config
      label), status and reason, final results (test error as a fraction, and for
      classification the count of misclassified test images), timing and the conditions it
      ran under (device, precision, threads, torch, ...): the scalar fields of run.json.
    - `evaluations`: one row per evaluation (metrics.jsonl): the run's identity, iteration,
      epoch, test error, test loss, training loss, learning rate, seconds, and the bias shift
      of each hidden layer (`bias_shift.<layer>.mean` and `.median`: over units, of each
      unit's mean activation on the probe images).
    - `bias_shift`: the same bias shift, one row per evaluation and layer.
    - `specs`: spec name -> the resolved spec the runs were trained with (spec.json).
    - `skipped`: what `skip_bad` left out, and why.
    """

    runs: pd.DataFrame
    evaluations: pd.DataFrame
    bias_shift: pd.DataFrame
    specs: dict[str, dict | None] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    tables: list[RunTables] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        names = ", ".join(self.specs)
        return (
            f"Results({len(self.runs)} runs of {names}; {len(self.evaluations)} evaluations"
            f"{f'; {len(self.skipped)} left out' if self.skipped else ''})"
        )


def load_results(
    path: str | Path = "results", *, spec: str | list[str] | None = None, skip_bad: bool = False
) -> Results:
    """Read every run.json and metrics.jsonl under `path` (a results folder, or one spec's
    folder in it), of every spec or those `spec` names. A corrupt record raises
    `elubench.errors.StoreError` naming the file, unless `skip_bad` leaves it out (it is then
    listed in `skipped`); failed and diverged runs are rows like the others."""
    import pandas as pd

    from elubench.store.reader import load_experiments

    names = [spec] if isinstance(spec, str) else spec
    tables = load_experiments(Path(path), specs=names, skip_bad=skip_bad)
    runs = pd.concat([t.runs for t in tables], ignore_index=True)
    evaluations = pd.concat([_evaluations(t) for t in tables], ignore_index=True)
    bias = pd.concat([t.activations for t in tables], ignore_index=True)
    return Results(
        runs,
        evaluations,
        bias,
        {t.name: t.spec for t in tables},
        [text for t in tables for text in (*t.skipped, *t.partial)],
        tables,
    )


def _evaluations(table: RunTables) -> pd.DataFrame:
    """The metrics table with each layer's bias shift as two columns."""
    metrics, layers = table.metrics, table.activations
    if layers.empty:
        return metrics
    wide = layers.pivot_table(
        index=["run_id", "iteration"], columns="layer", values=["mean", "median"], sort=False
    )
    wide.columns = [f"bias_shift.{layer}.{stat}" for stat, layer in wide.columns]
    ordered = sorted(
        wide.columns, key=lambda c: (list(layers["layer"].unique()).index(c.split(".")[1]), c)
    )
    return metrics.merge(wide[ordered].reset_index(), on=["run_id", "iteration"], how="left")
