"""The runs an export writes: this module finds the runs of a results folder and derives what
every target shows: the
numeric series of metrics.jsonl against iteration, the run's configuration as parameters, its
final results, and a digest of its record. The targets (`export_tensorboard`,
`export_mlflow`) write one run at a time in their own form and keep the digest beside what
they wrote, so a second export skips runs whose record is unchanged and replaces only those
whose record changed (a failed run tried again, a run trained again with --force).

It reads records through elubench.store.record's validating readers and writes nothing into the
results folder; it imports neither torch nor the training code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from elubench.core.errors import StoreError
from elubench.spec.matrix import IDENTITY
from elubench.store.layout import METRICS, RECORD, SPEC_META, spec_folder_of
from elubench.store.reader import read_records, spec_names
from elubench.store.record import RESULT_NUMBERS, RunRecord, SpecMeta, read_metrics, read_spec_meta

# Part of every digest: raise it when what an export writes changes, so that the next export
# writes every run again instead of skipping it as already exported.
EXPORT_FORMAT = 1

# The record's results, shown as `final/<name>` beside the curves: what compare and the
# HParams view rank configurations by (null ones, as a diverged run's test error, are left out).
FINAL_FIELDS = tuple(name for name in RESULT_NUMBERS if name != "test_size")

# The record's fields that say what was run (its identity, spec.matrix.RunConfig) and where
# (the rest of a run's parameters come from its spec's data, model and train sections).
# The spec's name is the parameter `spec`.
RUN_PARAMS = (
    *(name for name in IDENTITY if name != "spec_name"),
    "task",
    "init_hash",
    "device",
    "precision",
    "threads",
    "compiled",
    "executor",
    "deterministic",
)
SPEC_SECTIONS = ("data", "model", "train")

Value = bool | int | float | str


def metric_name(path: str) -> str:
    """A series' name as both targets accept it: MLflow allows letters, digits and `_-./ :`
    in names (layer names always fit; anything else becomes `_`)."""
    return re.sub(r"[^\w\-./ :]", "_", path)


def numeric_series(row: dict) -> dict[str, float]:
    """Every number of one metrics.jsonl line but its iteration, by key path joined with `/`:
    `test_error`, `lr`, `activations/s1_conv1/mean` (bias shift), `prelu/s1_conv1/min`,
    `activation_params/s1_conv1.alpha/mean`. Nulls, booleans and text are not series."""
    out: dict[str, float] = {}

    def walk(path: str, value) -> None:
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            out[metric_name(path)] = float(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{path}/{key}", item)

    for key, value in row.items():
        if key != "iteration":
            walk(key, value)
    return out


def _flat(prefix: str, value, out: dict[str, Value]) -> None:
    """A spec section as dotted parameters; lists and mappings (stacks, an lr schedule) as
    compact text, nulls left out."""
    import json

    if value is None:
        return
    if isinstance(value, dict) and not (prefix.endswith(".lr") or prefix == "lr"):
        for key, item in value.items():
            _flat(f"{prefix}.{key}", item, out)
    elif isinstance(value, (dict, list)):
        out[prefix] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        out[prefix] = value


@dataclass(frozen=True)
class ExportRun:
    """One recorded run, as every target exports it."""

    record: RunRecord
    folder: Path  # results/<spec>/runs/<run_id>/
    metrics: tuple  # metrics.jsonl's lines (empty: none, or left out with --skip-bad)
    spec: dict | None  # the resolved spec, when spec.json describes this run's version
    digest: str  # sha256 of EXPORT_FORMAT, run.json and metrics.jsonl

    @property
    def name(self) -> str:
        """`<spec name>/<run id>`: unique in a results tree, and already a safe folder name."""
        return f"{self.record.spec_name}/{self.record.run_id}"

    @property
    def started(self) -> float:
        """When it started (seconds since the epoch); what a target needs for a clock."""
        r = self.record
        return r.started_at or ((r.finished_at or 0.0) - (r.wall_seconds or 0.0))

    @property
    def finished(self) -> float:
        return self.record.finished_at or self.started + (self.record.wall_seconds or 0.0)

    def series(self) -> list[tuple[int, float, dict[str, float]]]:
        """(iteration, wall time, {name: value}) per evaluation. The wall time is the run's
        start plus its training and evaluation seconds so far: the same on every export."""
        return [
            (
                int(row["iteration"]),
                self.started + float(row.get("seconds") or 0.0),
                numeric_series(row),
            )
            for row in self.metrics
        ]

    @property
    def final_step(self) -> int:
        if self.record.iterations is not None:
            return self.record.iterations
        return int(self.metrics[-1]["iteration"]) if self.metrics else 0

    def final(self) -> dict[str, float]:
        """The record's results as `final/<field>` (the ones it has)."""
        values = {f"final/{name}": self.record.get(name) for name in FINAL_FIELDS}
        return {k: float(v) for k, v in values.items() if v is not None and not isinstance(v, bool)}

    def params(self) -> dict[str, Value]:
        """What was run: the record's configuration and conditions, and its spec's data, model
        and train sections as dotted names (`train.lr`, `model.stacks`). Its status is not one:
        each target shows it where its kind belongs (a tag, an hparam)."""
        r = self.record
        out: dict[str, Value] = {"spec": r.spec_name}
        for name in RUN_PARAMS:
            value = r.get(name)
            if value is not None:
                out[name] = value
        for section in SPEC_SECTIONS:
            _flat(section, (self.spec or {}).get(section), out)
        return out

    def version(self) -> str:
        """The elubench that recorded the run ("unknown" for a record that does not say)."""
        return (self.record.versions or {}).get("elubench", "unknown")


def _digest(folder: Path) -> str:
    hasher = hashlib.sha256(f"elubench export {EXPORT_FORMAT}\n".encode())
    for name in (RECORD, METRICS):
        try:
            data = (folder / name).read_bytes()
        except FileNotFoundError:
            data = b""
        hasher.update(len(data).to_bytes(8, "big") + data)
    return hasher.hexdigest()


def find_runs(
    root: Path, *, specs: list[str] | None = None, skip_bad: bool = False
) -> tuple[list[ExportRun], list[str]]:
    """Every run under `root` (or of the specs named), in order of spec name and run id, and
    (with skip_bad) a warning per damaged file left out. StoreError for a folder that does not
    exist or holds no record, a damaged file without skip_bad, an unknown spec name, and two
    records of one run (two results trees under one folder: export each on its own)."""
    records, folders, skipped = read_records(root, skip_bad)
    warnings = [f"left out: {text}" for _, text in skipped]
    if specs:
        names = spec_names(records, specs, root)
        keep = [i for i, r in enumerate(records) if r.spec_name in names]
        records, folders = [records[i] for i in keep], [folders[i] for i in keep]
    seen: dict[tuple[str, str], Path] = {}
    for record, folder in zip(records, folders):
        key = (record.spec_name, record.run_id)
        if key in seen:
            raise StoreError(
                f"two records of run {record.run_id} of spec {record.spec_name!r}: "
                f"{seen[key]} and {folder}",
                where=str(root),
                hint="an export names runs by spec and run id: export each results "
                "folder on its own",
            )
        seen[key] = folder
    metas: dict[Path, SpecMeta | None] = {}
    runs = []
    for record, folder in sorted(
        zip(records, folders), key=lambda p: (p[0].spec_name, p[0].run_id)
    ):
        spec_dir = spec_folder_of(folder)
        if spec_dir not in metas:
            metas[spec_dir] = _spec_meta(spec_dir, skip_bad, warnings)
        meta = metas[spec_dir]
        spec = meta.spec if meta is not None and meta.spec_hash == record.spec_hash else None
        try:
            metrics = tuple(read_metrics(folder / METRICS))
        except StoreError as exc:
            if not skip_bad:
                raise
            warnings.append(f"{record.run_id}: exported without its curves: {exc.render()}")
            metrics = ()
        runs.append(ExportRun(record, folder, metrics, spec, _digest(folder)))
    return runs, warnings


def _spec_meta(spec_dir: Path, skip_bad: bool, warnings: list[str]) -> SpecMeta | None:
    try:
        return read_spec_meta(spec_dir / SPEC_META)
    except StoreError as exc:
        if not skip_bad:
            raise
        warnings.append(f"runs exported without their spec's parameters: {exc.render()}")
        return None


class Target(Protocol):
    """Where runs go. `check` looks before anything is written (a mistake is one message, with
    nothing exported); `export` writes one run and says what it did."""

    label: str  # "TensorBoard", "MLflow"
    destination: str  # the folder or tracking URI, as the summary shows it

    def check(self, runs: list[ExportRun]) -> None: ...

    def export(self, run: ExportRun) -> str: ...  # "exported", "replaced" or "skipped"

    def close(self) -> None: ...
