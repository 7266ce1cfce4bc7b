"""The exceptions elubench's Python API raises (docs/api.md): a mistake a user can fix is an
`ElubenchError` (its subclass says where: the spec, the data, the results folder, ...); `str()`
gives the one message the command line prints. Interrupting a run raises
`CampaignInterrupted` after the runs in progress are checkpointed."""

from elubench.core.errors import (
    ActivationError,
    CampaignInterrupted,
    DataError,
    DeviceError,
    ElubenchError,
    ExecutorError,
    ExportError,
    NotationError,
    PlotError,
    ResourceError,
    SpecError,
    StatsError,
    StoreError,
)

__all__ = [
    "ActivationError",
    "CampaignInterrupted",
    "DataError",
    "DeviceError",
    "ElubenchError",
    "ExecutorError",
    "ExportError",
    "NotationError",
    "PlotError",
    "ResourceError",
    "SpecError",
    "StatsError",
    "StoreError",
]
