"""From a results folder to statistics: the one call behind `compare` and `report`. Numbers
only: reporting.tables formats them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from elubench.activations.names import parse_activation
from elubench.core.errors import ActivationError, StatsError
from elubench.spec.schema import Compare, config_label, default_baseline
from elubench.stats.experiments import Across, ExperimentResult, across_experiments
from elubench.stats.summary import Comparison, compare
from elubench.store.reader import RunTables, load_experiments, load_results


@dataclass(frozen=True)
class CompareOptions:
    """What `compare` and `report` are asked for beside the results folder. None takes the
    spec's own setting (stored with the runs), else the schema's (spec.schema.Compare). The
    baseline is an activation (each activation against it at the same BN setting) or a
    configuration label (every configuration against it); `target` is the learning-speed
    target as the tables show a score (% test error, or MSE x 100)."""

    baseline: str | None = None
    all_pairs: bool = False
    alternative: str | None = None
    alpha: float | None = None
    q_values: bool = False
    target: float | None = None
    rope: float | None = None


@dataclass
class Analysis:
    """One experiment's runs and every statistic of them."""

    results: RunTables
    comparison: Comparison


def analyze(
    root: Path,
    *,
    spec: str | None = None,
    skip_bad: bool = False,
    options: CompareOptions = CompareOptions(),
) -> Analysis:
    """Load one spec's runs under `root` and compute every statistic (see CompareOptions)."""
    return analyze_tables(load_results(root, spec=spec, skip_bad=skip_bad), options)


def analyze_tables(results: RunTables, options: CompareOptions = CompareOptions()) -> Analysis:
    """`analyze` on one spec's runs already read."""
    settings = (results.spec or {}).get("compare", {})
    stored = _test_options(settings, results.name)
    reference = {
        k: tuple(v)
        for k, v in ((results.spec or {}).get("reference", {}).get("test_error", {}) or {}).items()
    }
    runs = results.runs = _in_spec_order(results.runs, settings)
    missing = _missing_runs(runs, settings) if settings else None
    baseline = options.baseline or settings.get("baseline")  # else compare's default_baseline
    if baseline is not None and baseline not in set(runs["config"]):
        try:  # an activation in another spelling: lrelu(0.1) for lrelu; a custom one's reference
            baseline = _label_of(baseline, _custom_labels(runs))
        except ActivationError:
            pass
        if baseline not in set(runs["activation"]):
            raise StatsError(
                f"baseline {baseline!r} is not in the data of {results.name}",
                hint=f"activations here: {', '.join(dict.fromkeys(runs['activation']))}; "
                f"configurations: {', '.join(dict.fromkeys(runs['config']))}",
            )
    comparison = compare(
        runs,
        results.metrics if len(results.metrics) else None,
        baseline=baseline,
        all_pairs=options.all_pairs,
        alternative=options.alternative or stored.alternative,
        alpha=options.alpha or stored.alpha,
        q_values=options.q_values,
        reference=reference or None,
        rope=options.rope if options.rope is not None else stored.rope,
        target_shown=options.target,
        sequential=results.sequential,
    )
    left_out = (
        (results.skipped, "corrupt record(s)", "run record(s) were corrupt and left out of every table."),
        (results.partial, "damaged file(s)", "damaged metrics log(s) or spec description(s) were "
         "left out; the runs' final results were kept."),
    )  # fmt: skip
    for texts, what, said in left_out:  # damaged files first, then corrupt records
        if texts:
            comparison.warnings.insert(
                0, f"{len(texts)} {what} left out (--skip-bad): " + "; ".join(texts)
            )
            comparison.methods += f" {len(texts)} {said}"
    if missing and results.sequential is None:  # the design leaves seeds out by design
        comparison.warnings.insert(0, missing)
    return Analysis(results, comparison)


def _test_options(settings: dict, name: str) -> Compare:
    """The stored spec's alpha, side and ROPE, validated by the schema (its defaults where the
    spec does not say)."""
    try:
        return Compare.model_validate(
            {k: settings[k] for k in Compare.TEST_OPTIONS if k in settings}
        )
    except ValidationError as exc:
        raise StatsError(
            f"the spec stored with the runs of {name} holds invalid compare options "
            f"({exc.errors()[0]['msg']})",
            hint="pass --alpha, --alternative and --rope, or restore its spec.json",
        ) from None


def _spec_configs(runs, settings: dict) -> list[str]:
    """The spec's configuration labels in its order (activation, then BN off/on), by the labels
    the records use (a custom activation's from its runs)."""
    inits = settings.get("init", "he")
    inits = [inits] if isinstance(inits, str) else list(inits)
    customs = _custom_labels(runs)
    labels = []
    for name in settings.get("activations", []):
        try:
            labels.append(_label_of(name, customs))
        except ActivationError:  # a registered name whose package is not installed here
            pass
    return [
        config_label(label, bn, init if len(inits) > 1 else None)
        for init in inits
        for label in labels
        for bn in settings.get("batchnorm", [False, True])
    ]


def _in_spec_order(runs, settings: dict):
    """Configurations in the spec's order (activation, then BN off/on), others after them."""
    order = _spec_configs(runs, settings)
    order += sorted(set(runs["config"]) - set(order))
    rank = {label: i for i, label in enumerate(order)}
    keyed = runs.assign(_rank=runs["config"].map(rank))
    return (
        keyed.sort_values(["_rank", "seed"], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def _missing_runs(runs, settings: dict) -> str | None:
    """What the spec's matrix holds that has no record yet, in a few words (None: nothing): a
    matrix still training, stopped, or run on a selection (`--seeds 1`) reads as it stands."""
    seeds = settings.get("seeds", 10)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    configs = _spec_configs(runs, settings)
    have = set(zip(runs["config"], runs["seed"]))
    missing = [(c, s) for c in configs for s in seeds if (c, s) not in have]
    if not missing or not configs:
        return None
    no_seed = [s for s in seeds if all((c, s) not in have for c in configs)]
    no_config = [c for c in configs if all((c, s) not in have for s in seeds)]
    parts = []
    if no_seed:
        parts.append(f"seed{'s' * (len(no_seed) > 1)} {_spans(no_seed)} of every configuration")
    if no_config:
        parts.append(", ".join(no_config))
    rest = len(missing) - len(no_seed) * len(configs) - len(no_config) * (len(seeds) - len(no_seed))
    if rest:
        parts.append(f"{rest} other run{'s' * (rest > 1)}")
    total = len(configs) * len(seeds)
    return (f"{total - len(missing)} of the spec's {total} runs have a record; none yet for "
            + "; ".join(parts) + ": every table shows what has been trained")  # fmt: skip


def _spans(numbers: list[int]) -> str:
    """1, 2, 3, 7 -> "1–3, 7"."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}–{b}" if b > a else f"{a}" for a, b in spans)


def _custom_labels(runs) -> dict[str, str]:
    """A custom activation's reference (as the spec lists it) to its label, from the records."""
    if "activation_ref" not in runs.columns:
        return {}
    return {
        ref: label
        for ref, label in zip(runs["activation_ref"], runs["activation"])
        if isinstance(ref, str)
    }


def _label_of(name: str, customs: dict[str, str]) -> str:
    """An activation's label in the records: a custom one's from its runs, a built-in's
    canonical text (ActivationError when it is neither)."""
    return customs[name] if name in customs else str(parse_activation(name))


# --- several experiments ----------------------------------------------------------------------


@dataclass
class FolderAnalysis:
    """Every experiment (spec) of a results folder, each analysed as on its own with one shared
    baseline, and the summary across them (None for one experiment, or with --no-across). How
    the shared baseline was chosen, where the specs disagree, is in the warnings."""

    experiments: list[Analysis]
    across: Across | None


def analyze_experiments(
    root: Path,
    *,
    specs: list[str] | None = None,
    across: bool | None = None,
    skip_bad: bool = False,
    options: CompareOptions = CompareOptions(),
) -> FolderAnalysis:
    """Analyse each experiment under `root` (or those `specs` names) and, for two or more, the
    summary across them (`across`: None = when there are two or more, True = required,
    False = never)."""
    tables = load_experiments(root, specs=specs, skip_bad=skip_bad)
    if across and len(tables) < 2:  # says why not
        across_experiments(
            [ExperimentResult(t.name, t.runs, None) for t in tables], options.baseline
        )
    notes: list[str] = []
    if options.baseline is None and not options.all_pairs and len(tables) > 1:
        baseline, notes = _shared_baseline(tables)
        options = replace(options, baseline=baseline)
    analyses = []
    for table in tables:
        try:
            analyses.append(analyze_tables(table, options))
        except StatsError as exc:  # say which experiment; --spec leaves it out
            raise StatsError(
                f"experiment {table.name}: {exc.message}",
                where=exc.where,
                hint=(exc.hint + "; or " if exc.hint else "") + "leave it out: --spec NAME "
                "for each experiment to compare",
            ) from None
    summary = None
    if len(analyses) > 1 and across is not False:
        first = analyses[0].comparison
        summary = across_experiments(
            [ExperimentResult(a.results.name, a.results.runs, a.comparison) for a in analyses],
            None if options.all_pairs else first.baseline,
            all_pairs=options.all_pairs,
            alternative=first.paired.alternative,
            alpha=first.paired.alpha,
        )
        summary.warnings[:0] = notes
    else:  # --no-across: each experiment's tables say which baseline they share, and why
        for analysis in analyses:
            analysis.comparison.warnings[:0] = notes
    return FolderAnalysis(analyses, summary)


def _shared_baseline(tables) -> tuple[str | None, list[str]]:
    """The baseline every experiment is compared against: the specs' own when they agree, else
    the default rule over the activations all of them have (said in a note)."""

    def own_baseline(table):  # the spec's, or the default rule over its own activations
        settings = (table.spec or {}).get("compare") or {}
        activations = list(dict.fromkeys(table.runs["activation"]))
        return settings.get("baseline") or (default_baseline(activations) if activations else None)

    own = {t.name: own_baseline(t) for t in tables}
    named = {b for b in own.values() if b}
    if len(named) == 1 and all(own.values()):
        return named.pop(), []
    shared = [
        a
        for a in dict.fromkeys(tables[0].runs["activation"])
        if all(a in set(t.runs["activation"]) for t in tables)
    ]
    if not shared:
        return None, []
    chosen = default_baseline(shared)
    if not named:
        return chosen, []
    said = ", ".join(f"{name}: {b}" for name, b in own.items())
    return chosen, [
        f"the specs name different baselines ({said}); every table here uses {chosen} "
        "(--baseline chooses another)"
    ]
