"""elubench's own exceptions.

Library code raises these for anything a user can fix (a spec, a flag, a path, a missing
dataset); the CLI turns them into one clear message and exit code 2. Anything else that escapes
is a bug in elubench and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class ElubenchError(Exception):
    """A mistake the user can fix.

    ``where`` says where the mistake is (a file and line, a key path, a flag), ``hint`` what
    would be right. ``str()`` gives the full one-message form the CLI prints.
    """

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SpecError(ElubenchError):
    """A spec file or an override is malformed or impossible."""


class NotationError(SpecError):
    """Text in the paper's `layers x units x receptive field` notation does not parse."""


class ActivationError(SpecError):
    """An activation name or its parameters are not known."""


class DataError(ElubenchError):
    """A dataset is missing, unreadable, or does not fit the spec."""


class StoreError(ElubenchError):
    """A results directory cannot be used: unwritable, corrupt, or holding another spec's runs."""


class DeviceError(ElubenchError):
    """The requested device is not available."""


class StatsError(ElubenchError):
    """The recorded runs cannot support the requested statistics."""


class ExecutorError(ElubenchError):
    """An executor cannot be started (for example its optional extra is not installed)."""


class ResourceError(ElubenchError):
    """A run would not fit in the memory of the machine or device that would train it."""


class ExportError(ElubenchError):
    """An export target cannot be written: its optional extra is missing, it is unreachable, or
    it holds files elubench did not write where an export would go."""


class LayoutError(Exception):
    """An impossible network (spec.layout); `stack` is the 0-based index of the stack at fault.
    The spec loader turns it into a SpecError located at that stack."""

    def __init__(self, message: str, stack: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.stack, self.hint = message, stack, hint


class PlotError(ElubenchError):
    """The tables hold no data for the requested figure, or a figure format is unknown."""


# --- not a user's mistake: how a stop, a checkpoint or a check travels to whoever handles it ---


class Stopped(Exception):
    """A run was asked to stop (Ctrl-C); its checkpoint is saved (training)."""


class BadCheckpoint(Exception):
    """A run's checkpoint cannot be resumed from: corrupt, or another run's (training). The
    runner says which file it is and how to go on."""


class Interrupted(Exception):
    """Ctrl-C during a matrix: the current run's checkpoint is saved; `records` holds the run
    records finished (execution.runner)."""

    def __init__(self, message: str, records: list[Any]):
        super().__init__(message)
        self.records = records


class CampaignInterrupted(Exception):
    """Ctrl-C during a campaign (execution.campaign): the outcomes of the specs finished, the
    experiment stopped, and its records (None where not known)."""

    def __init__(self, message: str, outcomes: list[Any], stopped: Any, records: list[Any] | None):
        super().__init__(message)
        self.outcomes = outcomes
        self.stopped = stopped
        self.records = records


class CheckFailed(Exception):
    """One check of a custom activation failed (activations.checks, which makes it an
    ActivationError naming the activation)."""

    def __init__(self, check: str, detail: str, hint: str | None = None):
        super().__init__(detail)
        self.check, self.detail, self.hint = check, detail, hint
