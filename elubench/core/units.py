"""The unit of a task's score, in one place: how a run's final score is scaled for display, and
every word a table, figure, progress line or methods paragraph uses for it.

A classification run's score is its test error (a fraction, or a count of misclassified
images), shown in percent; differences between configurations are in percentage points. An
autoencoder's score is its reconstruction MSE, shown on the same x 100 scale ("MSE × 100"), so
that one layout, one default ROPE and one set of rules serve both tasks. Pure Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Task = Literal["classification", "autoencoder"]
TASKS: tuple[Task, ...] = ("classification", "autoencoder")


@dataclass(frozen=True)
class Unit:
    """How one task's score is named and scaled wherever a label is made."""

    task: Task
    scale: float  # a score (fraction or MSE) times this is the value shown
    digits: int  # decimals of a shown value
    value: str  # a shown value's header: "test error (%)"
    metric: str  # what is measured, in words: "test error"
    score: str  # its symbol in a difference: d = err(a) - err(b)
    difference: str  # the unit of differences (and of a ROPE), in words
    short: str  # the unit of differences in a header: "Δ pp"
    curve: str  # a figure's axis for the score over training
    symbol: str  # after a shown value: "%"

    def shown(self, score: float) -> str:
        """A score as a table cell shows it: "12.34 %", "9.1234 MSE × 100"."""
        return f"{score * self.scale:.{self.digits}f}{self.symbol}"


CLASSIFICATION = Unit(
    task="classification",
    scale=100.0,
    digits=2,
    value="test error (%)",
    metric="test error",
    score="err",
    difference="percentage points",
    short="pp",
    curve="test error (%)",
    symbol=" %",
)
AUTOENCODER = Unit(
    task="autoencoder",
    scale=100.0,
    digits=4,
    value="test MSE × 100",
    metric="test MSE",
    score="MSE",
    difference="MSE × 100",
    short="MSE×100",
    curve="test reconstruction MSE × 100",
    symbol=" MSE × 100",
)

UNITS: dict[str, Unit] = {"classification": CLASSIFICATION, "autoencoder": AUTOENCODER}


def unit_of(task: str | None) -> Unit:
    """The unit of a task's scores (classification's for a record that names no task)."""
    return CLASSIFICATION if task is None else UNITS.get(task, CLASSIFICATION)


def unit_of_tasks(tasks: Iterable[object]) -> Unit | None:
    """The one unit of runs of these tasks; None when they mix tasks (no common unit)."""
    found = {unit_of(str(task)) for task in tasks}
    return found.pop() if len(found) == 1 else None
