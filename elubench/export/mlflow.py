"""Runs into an MLflow tracking store: one experiment per spec (named after it), one MLflow run
per elubench run (named by its run id).

Each MLflow run gets the run's parameters (`ExportRun.params`), every numeric series of
metrics.jsonl by step (iteration) and the record's results as `final/<field>`, tags a search can
use (activation, batchnorm, init, seed, config, spec, spec_hash, status, the elubench version
that recorded it), run.json and metrics.jsonl as artifacts, and MLflow's own status (FINISHED
for ok, FAILED for diverged and failed runs, whose reason becomes the run's note).

A run is found again by its tag `elubench.run_id` in its spec's experiment. One whose tag
`elubench.record_sha256` matches the record's digest is skipped; one that does not (its record
changed, or an export stopped before it finished: the digest is its last tag) is deleted the
way MLflow deletes (restorable until `mlflow gc`) and written again. Runs elubench did not tag
are never touched.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from elubench.core import __version__
from elubench.core.errors import ExportError
from elubench.export.runs import ExportRun
from elubench.store.layout import METRICS, RECORD

RUN_ID_TAG = "elubench.run_id"
DIGEST_TAG = "elubench.record_sha256"
INSTALL_HINT = "pip install 'elubench[mlflow]'"
# MLflow's limits per log_batch call, and on a value's length (2.9 and later)
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000
PARAM_LENGTH, TAG_LENGTH = 6000, 5000


def store_folder(uri: str) -> Path | None:
    """The folder of a file store (a `file:` URI or a plain path), else None (a database, a
    server: passed to MLflow as given)."""
    parsed = urlparse(uri)
    if parsed.scheme == "":
        return Path(uri).expanduser()
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path)).expanduser()
    return None


def _mlflow():
    """MLflow's client and entities, or one message naming the extra to install."""
    try:
        from mlflow.entities import Metric, Param, ViewType
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ExportError(
            f"exporting to MLflow needs the mlflow-skinny (or mlflow) package ({exc})",
            where="--mlflow",
            hint=INSTALL_HINT,
        ) from None
    return MlflowClient, Metric, Param, ViewType, MlflowException


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _text(value) -> str:
    return str(value)[:PARAM_LENGTH]


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MlflowTarget:
    label = "MLflow"

    def __init__(self, uri: str):
        folder = store_folder(uri)
        if folder is not None:
            # MLflow 3 refuses file stores unless told it may (it prefers a database); an
            # export into ./mlruns is what the user asked for, so say yes for this process only.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = folder.resolve().as_uri()
        self.uri = self.destination = uri
        (client_type, self._metric, self._param, self._view_type, self._mlflow_error) = _mlflow()
        try:
            self.client = client_type(tracking_uri=uri)
        except self._mlflow_error as exc:  # a refused file store, a store this MLflow lacks
            raise self._fail(exc, "open the store") from None
        self.experiments: dict[str, str] = {}  # spec name -> experiment id
        self.existing: dict[tuple[str, str], list] = {}  # (spec name, run id) -> MLflow runs

    def _fail(self, exc: Exception, doing: str) -> ExportError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        scheme = urlparse(self.uri).scheme
        hint = (
            None
            if scheme in ("file", "http", "https")
            else "a database store needs the full MLflow (pip install mlflow), not mlflow-skinny"
        )
        return ExportError(
            f"MLflow could not {doing}: {first}", where=f"--mlflow {self.uri}", hint=hint
        )

    def check(self, runs: list[ExportRun]) -> None:
        """Find each spec's experiment and the runs an earlier export made there; refuse an
        experiment MLflow has deleted (its name is taken until it is restored or purged)."""
        try:
            for name in sorted({run.record.spec_name for run in runs}):
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    continue
                if experiment.lifecycle_stage == "deleted":
                    raise ExportError(
                        f"MLflow experiment {name!r} is deleted, and holds its name",
                        where=f"--mlflow {self.uri}",
                        hint=f"restore it (mlflow experiments restore --experiment-id "
                        f"{experiment.experiment_id}) or purge it (mlflow gc), then export again",
                    )
                self.experiments[name] = experiment.experiment_id
                for found in self._search(experiment.experiment_id):
                    run_id = found.data.tags.get(RUN_ID_TAG)
                    if run_id is not None:
                        self.existing.setdefault((name, run_id), []).append(found)
        except self._mlflow_error as exc:
            raise self._fail(exc, "read its experiments") from None

    def _search(self, experiment_id: str):
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                run_view_type=self._view_type.ACTIVE_ONLY,
                max_results=1000,
                page_token=token,
            )
            yield from page
            token = page.token
            if not token:
                return

    def _experiment(self, name: str) -> str:
        if name not in self.experiments:
            self.experiments[name] = self.client.create_experiment(
                name, tags={"elubench.exported_by": f"elubench {__version__}"}
            )
        return self.experiments[name]

    def export(self, run: ExportRun) -> str:
        try:
            return self._export(run)
        except self._mlflow_error as exc:
            raise self._fail(exc, f"write run {run.name}") from None

    def _export(self, run: ExportRun) -> str:
        record = run.record
        previous = self.existing.get((record.spec_name, record.run_id), [])
        current = [found for found in previous if found.data.tags.get(DIGEST_TAG) == run.digest]
        for stale in previous:
            if stale not in current:  # an older record's export, or one stopped half way
                self.client.delete_run(stale.info.run_id)
        if current:
            return "skipped"
        created = self.client.create_run(
            self._experiment(record.spec_name),
            start_time=_ms(run.started),
            tags=self._tags(run),
            run_name=record.run_id,
        )
        mlflow_id = created.info.run_id
        params = [self._param(key, _text(value)) for key, value in run.params().items()]
        for batch in _batches(params, PARAMS_PER_BATCH):
            self.client.log_batch(mlflow_id, params=batch)
        metrics = [
            self._metric(key, value, _ms(wall_time), step)
            for step, wall_time, values in run.series()
            for key, value in values.items()
        ]
        metrics += [
            self._metric(key, value, _ms(run.finished), run.final_step)
            for key, value in run.final().items()
        ]
        for batch in _batches(metrics, METRICS_PER_BATCH):
            self.client.log_batch(mlflow_id, metrics=batch)
        for name in (RECORD, METRICS):
            if (run.folder / name).is_file():
                self.client.log_artifact(mlflow_id, str(run.folder / name))
        self.client.set_terminated(
            mlflow_id, "FINISHED" if record.status == "ok" else "FAILED", end_time=_ms(run.finished)
        )
        self.client.set_tag(mlflow_id, DIGEST_TAG, run.digest)  # last: the export is whole
        return "replaced" if previous else "exported"

    def _tags(self, run: ExportRun) -> dict[str, str]:
        record = run.record
        tags = {
            "activation": record.activation,
            "batchnorm": str(record.batchnorm),
            "init": record.init,
            "seed": str(record.seed),
            "config": record.config or "",
            "spec": record.spec_name,
            "spec_hash": record.spec_hash,
            "status": record.status,
            RUN_ID_TAG: record.run_id,
            "elubench.version": run.version(),
            "elubench.exported_by": f"elubench {__version__}",
        }
        if record.reason:
            tags["mlflow.note.content"] = f"{record.status}: {record.reason}"[:TAG_LENGTH]
        return tags

    def close(self) -> None:
        pass
