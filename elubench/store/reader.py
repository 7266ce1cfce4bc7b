"""Reading a results tree into pandas tables for `compare` and `report`.

Every run.json is validated against the run record (`elubench.store.record`); metrics.jsonl files
give the per-evaluation curves and bias-shift statistics. The writing side is `elubench.store.rundir`.
No torch here: compare reads thousands of runs in a second or two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from elubench.core.errors import StoreError
from elubench.spec.matrix import IDENTITY
from elubench.spec.schema import config_label
from elubench.store.layout import METRICS, SEQUENTIAL, SPEC_META, find_records, spec_folder_of
from elubench.store.record import (
    RESULT_NUMBERS,
    SCALAR_FIELDS,
    RunRecord,
    SequentialPlan,
    read_metrics,
    read_record,
    read_sequential_plan,
    read_spec_meta,
)

if TYPE_CHECKING:  # pandas loads when a tree is read, not when this module is imported
    import pandas as pd

# The columns of RunTables.runs: every scalar field of the run record, and torch's version; the
# metrics and activations tables name each row's run by its identity (spec.matrix.RunConfig).
RUN_COLUMNS = (*SCALAR_FIELDS, "torch")
CONFIG_COLUMNS = list(IDENTITY)
# The numbers of an evaluation (a metrics.jsonl line) that RunTables.metrics keeps, beside the
# run's identity, its label and the iteration.
EVALUATION_COLUMNS = (
    "epoch",
    "test_error",
    "test_errors",
    "test_loss",
    "train_loss",
    "lr",
    "seconds",
)
# floats, NaN where a run has none (test_errors: pandas' nullable integers, exact counts)
NUMERIC_COLUMNS = tuple(name for name in RESULT_NUMBERS if name != "test_errors")


@dataclass
class RunTables:
    """Every run of one spec found under a folder, as pandas tables.

    Each table names a run's configuration as data (activation, batchnorm, init) beside its
    label (`config`, for display): code that needs to know what a configuration is reads the
    columns, never the label."""

    runs: pd.DataFrame  # one row per run (RUN_COLUMNS)
    metrics: pd.DataFrame  # one row per evaluation: CONFIG_COLUMNS, iteration, test_error, ...
    activations: pd.DataFrame  # one row per evaluation and hidden layer (bias shift)
    spec: dict | None  # the resolved spec (spec.json), when the tree has it
    skipped: list[str] = field(default_factory=list)  # corrupt records left out with --skip-bad
    folder: Path | None = None  # results/<spec name>/ (where REPORT.md goes)
    partial: list[str] = field(
        default_factory=list
    )  # damaged curves / spec.json left out (--skip-bad)
    sequential: SequentialPlan | None = None  # the design of `run --until-decided`, if any

    @property
    def name(self) -> str:
        return str(self.runs["spec_name"].iloc[0])


def _label(record) -> str:
    return record.config or config_label(record.activation, record.batchnorm)


def read_records(root: Path, skip_bad: bool):
    """Every run record under `root`, its folder, and (with skip_bad) the corrupt ones as
    (path, message). StoreError when `root` does not exist or holds no record."""
    root = Path(root)
    if not root.exists():
        raise StoreError(
            "no such results folder",
            where=str(root),
            hint="give the folder `elubench run` wrote (default results/)",
        )
    records, folders, skipped = [], [], []
    for path in find_records(root):
        try:
            records.append(read_record(path))
        except StoreError as exc:
            if not skip_bad:
                raise
            skipped.append((path, exc.render()))
            continue
        folders.append(path.parent)
    if not records:
        raise StoreError(
            "no run records (run.json) here",
            where=str(root),
            hint="train some first: elubench run SPEC --results " + str(root),
        )
    return records, folders, skipped


def load_results(
    root: Path, *, spec: str | None = None, skip_bad: bool = False, detail: bool = True
) -> RunTables:
    """Read every run.json (and, with `detail`, metrics.jsonl) under `root` for one spec.

    Raises StoreError for an empty tree, a corrupt record (unless skip_bad), or runs of several
    specs without `spec` naming one.
    """
    records, folders, skipped = read_records(root, skip_bad)
    names = sorted({r.spec_name for r in records})
    if spec is not None:
        keep = [i for i, r in enumerate(records) if r.spec_name == spec]
        if not keep:
            raise StoreError(
                f"no runs of spec {spec!r} here",
                where=str(root),
                hint=f"specs found: {', '.join(names)}",
            )
        records, folders = [records[i] for i in keep], [folders[i] for i in keep]
    elif len(names) > 1:
        raise StoreError(
            f"runs of {len(names)} specs are here: {', '.join(names)}",
            where=str(root),
            hint="pick one with --spec NAME, or point at results/<name>",
        )
    return _tables(root, records, folders, [text for _, text in skipped], skip_bad, detail)


def spec_names(records: list[RunRecord], specs: list[str] | None, root: Path) -> list[str]:
    """The experiments `specs` names, in that order (else every one the records hold, by name);
    StoreError for a name no record has."""
    names = sorted({r.spec_name for r in records})
    unknown = [name for name in specs or () if name not in names]
    if unknown:
        raise StoreError(
            f"no runs of spec{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))} here",
            where=str(root),
            hint=f"specs found: {', '.join(names)}",
        )
    return list(dict.fromkeys(specs)) if specs else names


def load_experiments(
    root: Path, *, specs: list[str] | None = None, skip_bad: bool = False, detail: bool = True
) -> list[RunTables]:
    """Every experiment (spec) under `root`, or those `specs` names, in that order (else by
    name): one RunTables each. Experiments are identified by spec name, so results folders
    merged by copying keep theirs. A corrupt record (with skip_bad) is reported with the
    experiment whose folder holds it."""
    records, folders, skipped = read_records(root, skip_bad)
    names = spec_names(records, specs, root)
    out = []
    for name in names:
        keep = [i for i, r in enumerate(records) if r.spec_name == name]
        spec_dirs = {spec_folder_of(folders[i]) for i in keep}
        own = [text for path, text in skipped if spec_folder_of(path.parent) in spec_dirs]
        out.append(
            _tables(
                root, [records[i] for i in keep], [folders[i] for i in keep], own, skip_bad, detail
            )
        )
    homeless = [
        text
        for path, text in skipped
        if not any(spec_folder_of(path.parent) == t.folder for t in out)
    ]
    if homeless and out:
        out[0].skipped += homeless
    return out


def runs_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Records as the table of runs (RunTables.runs): one row each, RUN_COLUMNS."""
    import pandas as pd

    rows = []
    for r in records:
        row = {key: getattr(r, key) for key in SCALAR_FIELDS}
        row["config"] = _label(r)
        row["torch"] = (r.versions or {}).get("torch")
        rows.append(row)
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    runs["test_errors"] = runs["test_errors"].astype("Int64")
    runs["seed"] = runs["seed"].astype(int)
    runs["batchnorm"] = runs["batchnorm"].astype(bool)
    for column in NUMERIC_COLUMNS:
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    return runs


def _tables(root, records, folders, skipped, skip_bad: bool, detail: bool) -> RunTables:
    """One spec's records as RunTables (refusing two versions of the spec mixed)."""
    import pandas as pd

    hashes = sorted({r.spec_hash for r in records})
    if len(hashes) > 1:
        raise StoreError(
            f"runs of {len(hashes)} versions of spec {records[0].spec_name!r} "
            f"(hashes {', '.join(hashes)}) are mixed here",
            where=str(root),
            hint="keep one version's runs in this tree (elubench run refuses to mix them)",
        )

    runs = runs_frame(records)

    metric_rows, layer_rows, partial = [], [], []
    if detail:
        for r, folder in zip(records, folders):
            try:
                lines = read_metrics(folder / METRICS)
            except StoreError as exc:
                if not skip_bad:
                    raise
                partial.append("its curve left out: " + exc.render())  # its result stays
                continue
            base = {**{key: getattr(r, key) for key in IDENTITY}, "config": _label(r)}
            for line in lines:
                at = {**base, "iteration": line.get("iteration")}
                metric_rows.append({**at, **{key: line.get(key) for key in EVALUATION_COLUMNS}})
                for layer, stats in (line.get("activations") or {}).items():
                    layer_rows.append(
                        {
                            **at,
                            "layer": layer,
                            "mean": stats.get("mean"),
                            "median": stats.get("median"),
                        }
                    )
    metrics = pd.DataFrame(metric_rows, columns=[*CONFIG_COLUMNS, "iteration", *EVALUATION_COLUMNS])
    activations = pd.DataFrame(
        layer_rows, columns=[*CONFIG_COLUMNS, "iteration", "layer", "mean", "median"]
    )
    spec_dir = spec_folder_of(folders[0])

    def optional(read, name: str, what: str):
        """A file of the spec's folder; a tree without it (records copied alone) still
        compares, and a damaged one is left out with --skip-bad."""
        try:
            return read(spec_dir / name)
        except StoreError as exc:
            if not skip_bad:
                raise
            partial.append(f"{what} left out: " + exc.render())
            return None

    meta = optional(read_spec_meta, SPEC_META, "the spec's description")
    plan = optional(read_sequential_plan, SEQUENTIAL, "the sequential design")
    resolved = meta.spec if meta is not None else None
    return RunTables(runs, metrics, activations, resolved, skipped, spec_dir, partial, plan)
