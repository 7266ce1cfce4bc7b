"""`elubench export`: recorded runs into TensorBoard and MLflow, to browse beside other work.

`export_results` finds the runs (elubench.export.runs), checks every target before anything is
written, then writes each run to each target (elubench.export.tensorboard,
elubench.export.mlflow), which skips a run it already holds with the same record digest.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from elubench.core.errors import ExportError
from elubench.export.mlflow import MlflowTarget, store_folder
from elubench.export.runs import Target, find_runs
from elubench.export.tensorboard import TensorBoardTarget


@dataclass
class TargetSummary:
    """What one export did to one target."""

    label: str
    destination: str
    statuses: Counter[str] = field(default_factory=Counter)  # every run's status
    exported: int = 0  # written (the replaced ones included)
    replaced: int = 0  # written over an earlier export of a record that has changed since
    skipped: int = 0  # already exported, record unchanged

    @property
    def runs(self) -> int:
        return sum(self.statuses.values())


@dataclass
class ExportOutcome:
    summaries: list[TargetSummary]
    warnings: list[str]
    seconds: float  # the whole export, reading included


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, text: str) -> None: ...


def export_results(
    root: Path,
    *,
    tensorboard: Path | None = None,
    mlflow: str | None = None,
    specs: list[str] | None = None,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ExportOutcome:
    """Export every run under `root` to the targets given; both may be given at once.

    Everything is checked before anything is written: the results folder, each target's
    package, and that no target holds what elubench did not write where a run would go.
    """
    began = time.perf_counter()
    if tensorboard is None and mlflow is None:
        raise ExportError(
            "nothing to export to",
            where="elubench export",
            hint="give --tensorboard DIR and/or --mlflow URI (e.g. --mlflow file:./mlruns)",
        )
    runs, warnings = find_runs(root, specs=specs, skip_bad=skip_bad)
    targets: list[Target] = []
    if tensorboard is not None:
        for name in sorted({run.record.spec_name for run in runs}):  # where its runs would go
            _outside(Path(tensorboard) / name, root, "--tensorboard")
        targets.append(TensorBoardTarget(Path(tensorboard)))
    if mlflow is not None:
        folder = store_folder(mlflow)
        if folder is not None:
            _outside(folder, root, "--mlflow")
        targets.append(MlflowTarget(mlflow))
    try:
        for target in targets:
            target.check(runs)
        if progress is not None:
            progress.start(len(runs) * len(targets))
        summaries = []
        for target in targets:
            summary = TargetSummary(target.label, target.destination)
            for run in runs:
                done = target.export(run)
                summary.statuses[run.record.status] += 1
                summary.exported += done in ("exported", "replaced")
                summary.replaced += done == "replaced"
                summary.skipped += done == "skipped"
                if progress is not None:
                    progress.advance(f"{target.label}: {run.name}")
            summaries.append(summary)
    finally:
        for target in targets:
            target.close()
    return ExportOutcome(summaries, warnings, time.perf_counter() - began)


def _outside(target: Path, root: Path, flag: str) -> None:
    """Export writes nothing into the results folder: refuse a target folder inside it."""
    target, root = target.expanduser().resolve(), Path(root).expanduser().resolve()
    if target.is_relative_to(root):
        raise ExportError(
            f"would write into the results folder {root}; an export writes nothing there",
            where=f"{flag} {target}",
            hint=f"choose a folder outside {root}",
        )
