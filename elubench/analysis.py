"""From a results folder to statistics: the one call behind `compare` and `report`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elubench.errors import StatsError
from elubench.results import RunTables, load_results


@dataclass
class Analysis:
    results: RunTables
    comparison: object        # stats.Comparison
    sections: list            # tables.Section
    task: str


def analyze(root: Path, *, spec: str | None = None, skip_bad: bool = False, baseline: str | None = None,
            all_pairs: bool = False, alternative: str | None = None, alpha: float | None = None,
            q_values: bool = False, target_percent: float | None = None,
            rope: float | None = None) -> Analysis:
    """Load one spec's runs under `root` and compute every statistic.

    Defaults for the baseline, alpha, side and ROPE come from the spec's `compare` section
    (stored with the results), else the schema's defaults (relu, 0.05, two-sided, 0.5 pp).
    The baseline is an activation (each activation against it at the same BN setting) or a
    configuration label (every configuration against it).
    """
    from elubench.errors import ActivationError
    from elubench.spec import DEFAULT_ROPE
    from elubench.stats import compare
    from elubench.tables import display_tables

    results = load_results(root, spec=spec, skip_bad=skip_bad)
    settings = (results.spec or {}).get("compare", {})
    reference = {k: tuple(v) for k, v in ((results.spec or {}).get("reference", {})
                                          .get("test_error", {}) or {}).items()}
    runs = results.runs = _in_spec_order(results.runs, settings)
    task = str(runs["task"].iloc[0])
    baseline = baseline or settings.get("baseline")  # else stats.compare's default_baseline
    if baseline is not None and baseline not in set(runs["config"]):
        try:  # an activation in another spelling: lrelu(0.1) for lrelu; a custom one's reference
            baseline = _label_of(baseline, _custom_labels(runs))
        except ActivationError:
            pass
        if baseline not in set(runs["activation"]):
            raise StatsError(f"baseline {baseline!r} is not in the data",
                             hint=f"activations here: {', '.join(dict.fromkeys(runs['activation']))}; "
                                  f"configurations: {', '.join(dict.fromkeys(runs['config']))}")
    target = None
    if target_percent is not None:
        target = target_percent if task == "autoencoder" else target_percent / 100
    comparison = compare(runs, results.metrics if len(results.metrics) else None, baseline=baseline,
                         all_pairs=all_pairs, alternative=alternative or settings.get("alternative", "two-sided"),
                         alpha=alpha or settings.get("alpha", 0.05), q_values=q_values, target=target,
                         reference=reference or None,
                         rope=rope if rope is not None else settings.get("rope", DEFAULT_ROPE))
    if results.skipped:
        comparison.warnings.insert(0, f"{len(results.skipped)} corrupt record(s) left out (--skip-bad): "
                                   + "; ".join(results.skipped))
        comparison.methods += (f" {len(results.skipped)} run record(s) were corrupt and left out "
                               "of every table.")
    if results.partial:
        comparison.warnings.insert(0, f"{len(results.partial)} damaged file(s) left out (--skip-bad): "
                                   + "; ".join(results.partial))
        comparison.methods += (f" {len(results.partial)} damaged metrics log(s) or spec "
                               "description(s) were left out; the runs' final results were kept.")
    return Analysis(results, comparison, display_tables(comparison, task=task), task)


def _in_spec_order(runs, settings: dict):
    """Configurations in the spec's order (activation, then BN off/on), others after them."""
    from elubench.errors import ActivationError
    from elubench.spec import config_label

    inits = settings.get("init", "he")
    inits = [inits] if isinstance(inits, str) else list(inits)
    customs = _custom_labels(runs)
    labels = []
    for name in settings.get("activations", []):
        try:
            labels.append(_label_of(name, customs))
        except ActivationError:  # a registered name whose package is not installed here
            pass
    order = []
    for init in inits:
        for label in labels:
            for bn in settings.get("batchnorm", [False, True]):
                order.append(config_label(label, bn, init if len(inits) > 1 else None))
    order += sorted(set(runs["config"]) - set(order))
    rank = {label: i for i, label in enumerate(order)}
    keyed = runs.assign(_rank=runs["config"].map(rank))
    return keyed.sort_values(["_rank", "seed"], kind="stable").drop(columns="_rank").reset_index(drop=True)


def _custom_labels(runs) -> dict[str, str]:
    """A custom activation's reference (as the spec lists it) to its label, from the records."""
    if "activation_ref" not in runs.columns:
        return {}
    return {ref: label for ref, label in zip(runs["activation_ref"], runs["activation"])
            if isinstance(ref, str)}


def _label_of(name: str, customs: dict[str, str]) -> str:
    """An activation's label in the records: a custom one's from its runs, a built-in's
    canonical text (ActivationError when it is neither)."""
    from elubench.activations import parse_activation
    return customs[name] if name in customs else str(parse_activation(name))
