"""The run record: the one definition of what `run.json` holds, and the one validating reader
of every file a run leaves (run.json, metrics.jsonl, claim.json).

The trainer builds it for runs that end (ok or diverged), the runner builds its failed form
(`RunRecord.failed`), the store writes it and every reader validates what it reads against it
(`read_record`), so a record that lacks a key or holds a wrong type is named as corrupt instead
of surfacing later as a traceback. Pure Python (pydantic): `compare` reads records without torch.
"""

from __future__ import annotations

import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails

from elubench.core.errors import StoreError
from elubench.core.files import finite
from elubench.core.units import Task
from elubench.spec.matrix import RunConfig
from elubench.spec.schema import Alternative

STATUSES = ("ok", "diverged", "failed")
Status = Literal["ok", "diverged", "failed"]
BAD_RECORD_HINT = (
    "move the file away (`run` then trains that run again); `compare` and "
    "`report` can leave it out with --skip-bad"
)
BAD_METRICS_HINT = (
    "restore it from a copy, or move it away together with the run's "
    "checkpoint.pt and run.json (`run` then trains that run again from its start); "
    "`compare` and `report` can leave the run out with --skip-bad"
)

LayerStats = dict[str, dict[str, float | None]]


class RunRecord(RunConfig):
    """One run's record: what was run (its RunConfig, the identity every table and export reads)
    and how it ended. Fields without a default are the contract every run.json has (tools may
    rely on them; null where a run has no such result); the others are details a newer or older
    elubench may lack. Unknown keys (from a newer elubench) are kept, never dropped."""

    model_config = ConfigDict(extra="allow", strict=True)

    # what was run, as older records may lack it (spec.matrix.RunConfig has the rest)
    init: str = "he"
    # The configuration's label in tables (spec.config_label). Every new run has one (RunConfig
    # requires it), but records written before the field existed lack it, so a record reads it
    # as optional: wider than RunConfig's `str`, an override mypy rightly reports (code typed
    # for a RunConfig may meet None here). Readers of records fall back on a label of their
    # own (store.reader); an optional base field would loosen what a new run is checked for.
    config: str | None = None  # type: ignore[assignment]

    # how it ended
    status: Status
    reason: str | None = None  # why it diverged or failed
    traceback: str | None = None  # failed runs: where
    task: Task = "classification"
    test_errors: int | None  # misclassified test images (classification)
    test_size: int | None
    test_error: float | None  # fraction (classification) or reconstruction MSE
    test_loss: float | None
    train_loss: float | None  # mean over the iterations since the previous evaluation
    iterations: int | None  # trained (a diverged run: up to the first bad loss)
    total_iterations: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    wall_seconds: float | None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    images_per_second: float | None
    init_hash: str | None
    activation_stats: LayerStats | None = None  # bias shift at the last evaluation
    prelu_slopes: LayerStats | None = None
    # a custom activation (docs/custom-activations.md): what it is (qualified name, parameters,
    # code identity; its reference, with a file's absolute path, is `activation_ref`) and the
    # values of its learned parameters at the end, per `layer.parameter`
    activation_source: dict[str, Any] | None = None
    activation_params: LayerStats | None = None
    # random in training (rrelu, a noisy custom one): its noise came from a stream of its own,
    # seeded by the seed, layer and call (activations.modules.PrivateRandom)
    activation_stochastic: bool | None = None

    # the conditions it ran under
    device: str | None = None
    device_name: str | None = None
    precision: str | None = None
    compiled: bool | None = None
    threads: int | None = None  # CPU intra-op threads of the run
    activation_impl: str | None = None  # whose kernel: elubench | torch | torch (compiled)
    allocator: str | None = None  # runtime.keep_freed_memory's setting on the CPU
    executor: str | None = None  # serial | local | ray | slurm
    runs_at_once: int | None = None  # runs training at once beside it (null: unknown)
    deterministic: bool | None = None
    host: str | None = None
    versions: dict[str, str] | None = None
    data: dict[str, Any] | None = None
    resumed_at: list[int] | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @model_validator(mode="after")
    def _ok_means_a_result(self):
        """A run that says ok holds its result; one that does not is corrupt, never a run that
        statistics would quietly leave out."""
        if self.status == "ok":
            if self.test_error is None or not math.isfinite(self.test_error):
                raise ValueError(
                    f"status is ok but test_error is {self.test_error!r}: the record "
                    "holds no result"
                )
            if self.task == "classification" and (
                self.test_errors is None or self.test_size is None
            ):
                raise ValueError(
                    "status is ok but test_errors or test_size is missing: the record "
                    "holds no result"
                )
        return self

    @classmethod
    def failed(
        cls,
        run: dict,
        *,
        reason: str,
        traceback: str,
        task: Task,
        device: str,
        wall_seconds: float,
        finished_at: float,
    ) -> RunRecord:
        """The record of a run that crashed: who it was, why, and no result."""
        return cls(
            **run,
            status="failed",
            reason=reason,
            traceback=traceback,
            task=task,
            test_errors=None,
            test_size=None,
            test_error=None,
            test_loss=None,
            train_loss=None,
            iterations=None,
            wall_seconds=wall_seconds,
            images_per_second=None,
            init_hash=None,
            device=device,
            finished_at=finished_at,
        )

    def to_json(self) -> dict:
        """Plain data for run.json: strict JSON (non-finite numbers as null)."""
        return finite(self.model_dump(mode="json"))

    def get(self, key: str, default=None):
        """Dict-style access, so code that only reads a record takes a RunRecord or its JSON."""
        return getattr(self, key, default)

    def __getitem__(self, key: str):
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None


def _scalar(annotation) -> bool:
    """A str/int/float/bool field, optional or not: one table cell per run."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_scalar(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) is Literal:
        return True
    return annotation in (str, int, float, bool)


# A run's results as numbers (what tables coerce to numbers and exports show as `final/<name>`).
RESULT_NUMBERS = ("test_errors", "test_size", "test_error", "test_loss", "train_loss", "iterations",
                  "wall_seconds", "train_seconds", "eval_seconds", "images_per_second")  # fmt: skip
REQUIRED_KEYS = tuple(name for name, f in RunRecord.model_fields.items() if f.is_required())
SCALAR_FIELDS = tuple(name for name, f in RunRecord.model_fields.items() if _scalar(f.annotation))


def parse_record(payload: Any, where: str) -> RunRecord:
    """Validate a record's JSON; StoreError names the file and what is wrong."""
    if not isinstance(payload, dict):
        raise StoreError(
            "corrupt run record (not a JSON object)", where=where, hint=BAD_RECORD_HINT
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise StoreError(
            f"run record lacks {', '.join(missing)}", where=where, hint=BAD_RECORD_HINT
        )
    try:
        return RunRecord.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors()[:3])
        raise StoreError(
            f"corrupt run record ({problems})", where=where, hint=BAD_RECORD_HINT
        ) from None


def _problem(error: ErrorDetails) -> str:
    if not error["loc"]:  # a check of the whole record
        return error["msg"].removeprefix("Value error, ")
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']} (got {error.get('input')!r:.40})"


def read_record(path: Path) -> RunRecord:
    """Read and validate one run.json; StoreError names the file if it is corrupt."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(
            f"corrupt run record ({exc.__class__.__name__}: {exc})",
            where=str(path),
            hint=BAD_RECORD_HINT,
        ) from None
    return parse_record(payload, str(path))


class MetricsRow(BaseModel):
    """One line of metrics.jsonl: an evaluation. `iteration` is the contract; the rest are the
    numbers tables and figures read (null where a run has none), and anything else is kept."""

    model_config = ConfigDict(extra="allow")

    iteration: int
    test_error: float | None = None
    train_loss: float | None = None
    lr: float | None = None
    seconds: float | None = None
    activations: LayerStats | None = None

    @model_validator(mode="after")
    def _sane(self):
        if self.iteration < 0:
            raise ValueError(f"iteration {self.iteration} is negative")
        return self


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl, each validated; [] when there is none.

    A torn last line (no newline: a crash mid-append) is dropped, as the run resumes from a
    checkpoint taken before it. Any other damage (bytes that are not UTF-8, a line that is not a
    JSON object of the row's shape, iterations that go back) raises StoreError naming the file
    and line, so no table or resumed run is built on half a log.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(
            f"cannot read the metrics log ({exc.strerror or exc})", where=str(path)
        ) from None
    lines = raw.split(b"\n")[:-1]  # what follows the last newline is b"" or a torn line
    rows: list[dict] = []
    for number, line in enumerate(lines, start=1):
        try:
            payload = json.loads(line.decode("utf-8"))
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
            row = MetricsRow.model_validate(payload)
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, ValidationError too
            raise StoreError(
                f"corrupt metrics log, line {number} ({_reason(exc)})",
                where=str(path),
                hint=BAD_METRICS_HINT,
            ) from None
        if rows and row.iteration < rows[-1]["iteration"]:
            raise StoreError(
                f"corrupt metrics log, line {number} (iteration {row.iteration} "
                f"after {rows[-1]['iteration']})",
                where=str(path),
                hint=BAD_METRICS_HINT,
            )
        rows.append(payload)
    return rows


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(_problem(e) for e in exc.errors()[:2])
    if isinstance(exc, UnicodeDecodeError):
        return f"bytes that are not UTF-8 text at offset {exc.start}"
    return f"{exc.__class__.__name__}: {str(exc)[:80]}"


class Claim(BaseModel):
    """claim.json: which process trains a run. Written whole (see store.RunDir.claim); one that
    does not read as this is stale: no live writer leaves it so."""

    host: str
    pid: int
    claimed: float | None = None  # when (the file's mtime is the heartbeat)


def read_claim(path: Path) -> Claim | None:
    """The claim's owner, or None when the file is empty, torn or not a claim."""
    try:
        return Claim.model_validate_json(Path(path).read_bytes())
    except (OSError, ValueError):
        return None


class SpecMeta(BaseModel):
    """spec.json: the spec a results folder holds runs of (`run` refuses to mix versions)."""

    model_config = ConfigDict(extra="allow")

    spec_hash: str
    spec_name: str | None = None
    spec: dict | None = None


def read_spec_meta(path: Path) -> SpecMeta | None:
    """A results folder's spec.json, validated; None when there is none."""
    return _read_file(
        path,
        SpecMeta,
        "restore it from a copy, or move the spec's folder away (a new `run` starts it again); "
        "`compare` and `report` go on without it with --skip-bad",
    )


def _read_file(path: Path, model: type[Any], hint: str) -> Any:
    """A results folder's JSON file read and validated as `model`; None when there is none,
    StoreError naming the file when it cannot be read or is damaged (`hint`: how to recover)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StoreError(
            f"cannot read {path.name} ({exc.strerror or exc})", where=str(path)
        ) from None
    try:
        return model.model_validate_json(raw)
    except ValueError as exc:
        raise StoreError(
            f"corrupt {path.name} ({_reason(exc)})", where=str(path), hint=hint
        ) from None


class SequentialPlan(BaseModel):
    """sequential.json: the design `run --until-decided` fixed before its first round (the
    family's alpha and side, the most seeds, the baseline, the seeds in the order it trains
    them and the configurations it compares). Every later driver of the folder must use the
    same design, and `compare` decides by it: a design changed halfway would void its error
    rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    design: Literal["group-sequential signed-rank"] = "group-sequential signed-rank"
    alpha: float
    alternative: Alternative
    max_seeds: int
    baseline: str
    seeds: list[int]
    configurations: list[str]

    def differences(self, other: SequentialPlan) -> list[str]:
        """What `other` changes of this design, as "field: stored -> asked" texts."""

        def shown(value) -> str:
            if isinstance(value, list) and len(value) > 6:
                return f"[{', '.join(map(str, value[:3]))}, ... ({len(value)})]"
            return str(value)

        return [
            f"{name}: {shown(getattr(self, name))} -> {shown(getattr(other, name))}"
            for name in type(self).model_fields
            if getattr(self, name) != getattr(other, name)
        ]


def read_sequential_plan(path: Path) -> SequentialPlan | None:
    """A results folder's sequential.json, validated; None when there is none."""
    return _read_file(
        path,
        SequentialPlan,
        "restore it from a copy: it holds the sequential design the runs were trained under; "
        "`compare` goes on without its decisions with --skip-bad",
    )
