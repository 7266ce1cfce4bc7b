"""elubench: benchmark activation functions the way the ELU paper did.

The Python API (docs/api.md), over the same engine as the command line:

    spec = elubench.load_spec("specs/quickstart.yaml", train__iterations=100)
    summary = elubench.run(spec, activations="elu,relu", seeds=3)
    results = elubench.load_results("results")     # .runs, .evaluations: pandas
    comparison = elubench.compare("results")       # .descriptives, .paired, .methods, .to_json()
    elubench.reporting("results", html=True)
    elubench.plots.error_curves(results)           # a matplotlib figure

Importing the package is cheap (no torch, pandas or matplotlib): each name loads what it needs
when it is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from elubench.core import __version__

if TYPE_CHECKING:
    from elubench import errors, plots
    from elubench.api.comparison import Comparison, compare
    from elubench.api.reports import report
    from elubench.api.results import Results, load_results
    from elubench.api.specs import load_spec
    from elubench.api.training import RunSummary, run

# public name -> the module that defines it (loaded on first use)
_HOMES = {
    "load_spec": "elubench.api.specs",
    "run": "elubench.api.training",
    "RunSummary": "elubench.api.training",
    "load_results": "elubench.api.results",
    "Results": "elubench.api.results",
    "compare": "elubench.api.comparison",
    "Comparison": "elubench.api.comparison",
    "report": "elubench.api.reports",
}
_MODULES = {"errors": "elubench.errors", "plots": "elubench.plots"}

__all__ = [
    "__version__",
    "load_spec",
    "run",
    "RunSummary",
    "load_results",
    "Results",
    "compare",
    "Comparison",
    "report",
    "errors",
    "plots",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    if name in _MODULES:
        return import_module(_MODULES[name])
    raise AttributeError(f"module 'elubench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
