"""Runs as TensorBoard event files: DIR/<spec name>/<run id>/, one TensorBoard run each.

Each run's folder gets one event file (written through tensorboard's own EventFileWriter, no
TensorFlow or torch) holding:

- the HParams plugin's session start (the run's parameters, its status and elubench version)
  and end (SUCCESS for ok, FAILURE for diverged and failed), so the HParams view lists each
  run with every scalar's last value as its metrics;
- every numeric series of metrics.jsonl as a scalar against iteration (`export.numeric_series`);
- the record's results as `final/<field>` at the run's last iteration.

Beside it, `elubench-export.json` says which run and record digest the folder holds. A second
export skips a folder whose digest matches; one whose record changed is rewritten after its old
event file is removed. elubench removes only what it can tell is its own (event files named
`*.elubench`, its marker) and refuses a run folder that holds anything else.
"""

from __future__ import annotations

import json
from pathlib import Path

from elubench.core import __version__
from elubench.core.errors import ExportError
from elubench.core.files import write_json_atomic
from elubench.export.runs import ExportRun

MARKER = "elubench-export.json"
SUFFIX = ".elubench"  # elubench's event files end so; TensorBoard reads any *tfevents*
EVENTS_PREFIX = "events.out.tfevents."
INSTALL_HINT = "pip install 'elubench[tensorboard]'"


def _ours(name: str) -> bool:
    return name == MARKER or (name.startswith(EVENTS_PREFIX) and name.endswith(SUFFIX))


def _tensorboard():
    """tensorboard's writer and protos, or one message naming the extra to install."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as exc:
        raise ExportError(
            f"exporting to TensorBoard needs the tensorboard package ({exc})",
            where="--tensorboard",
            hint=INSTALL_HINT,
        ) from None
    return event_pb2, summary_pb2, api_pb2, metadata, plugin_data_pb2, summary_v2, EventFileWriter


class TensorBoardTarget:
    label = "TensorBoard"

    def __init__(self, logdir: Path):
        self.logdir = Path(logdir).expanduser()
        self.destination = str(self.logdir)
        (
            self._event_pb2,
            self._summary_pb2,
            self._api_pb2,
            self._metadata,
            self._plugin_data_pb2,
            self._summary_v2,
            self._writer,
        ) = _tensorboard()

    def folder(self, run: ExportRun) -> Path:
        return self.logdir / run.record.spec_name / run.record.run_id

    def check(self, runs: list[ExportRun]) -> None:
        """Refuse, before writing anything, a log folder that is a file or a run folder that
        holds files elubench did not write (they would be mixed into its run)."""
        if self.logdir.exists() and not self.logdir.is_dir():
            raise ExportError("is a file, not a folder", where=f"--tensorboard {self.logdir}")
        for run in runs:
            folder = self.folder(run)
            if not folder.is_dir():
                if folder.exists():
                    raise ExportError(
                        "is a file where a run's folder would go",
                        where=str(folder),
                        hint="choose another --tensorboard DIR",
                    )
                continue
            foreign = sorted(p.name for p in folder.iterdir() if not _ours(p.name))
            if foreign:
                raise ExportError(
                    f"holds {foreign[0]!r}, which elubench did not write, where run "
                    f"{run.name} would be exported",
                    where=str(folder),
                    hint="choose another --tensorboard DIR, or move that file away",
                )

    def export(self, run: ExportRun) -> str:
        folder = self.folder(run)
        marker = _read_marker(folder / MARKER)
        written = marker.get("event_files")
        if (
            marker.get("record_sha256") == run.digest
            and isinstance(written, list)
            and written
            and all(isinstance(n, str) and _ours(n) and (folder / n).is_file() for n in written)
        ):
            return "skipped"
        old = (
            sorted(p for p in folder.glob(EVENTS_PREFIX + "*") if _ours(p.name))
            if folder.is_dir()
            else []
        )
        # The marker goes first and comes back last: an export stopped half way leaves no marker
        # that matches, so the next one writes the run again (removing the half-written file).
        (folder / MARKER).unlink(missing_ok=True)
        for path in old:
            path.unlink()
        name = self._write_events(folder, run)
        write_json_atomic(
            folder / MARKER,
            {
                "spec_name": run.record.spec_name,
                "run_id": run.record.run_id,
                "spec_hash": run.record.spec_hash,
                "status": run.record.status,
                "record_sha256": run.digest,
                "event_files": [name],
                "exported_by": f"elubench {__version__}",
                "source": str(run.folder.resolve()),
            },
        )
        return "replaced" if old or marker else "exported"

    def _write_events(self, folder: Path, run: ExportRun) -> str:
        event_pb2 = self._event_pb2
        writer = self._writer(str(folder), filename_suffix=SUFFIX)
        try:
            hparams = {**run.params(), "status": run.record.status, "elubench": run.version()}
            start = self._summary_v2.hparams_pb(
                hparams, trial_id=run.name, start_time_secs=run.started
            )
            writer.add_event(event_pb2.Event(wall_time=run.started, step=0, summary=start))
            for step, wall_time, values in run.series():
                writer.add_event(
                    event_pb2.Event(wall_time=wall_time, step=step, summary=self._scalars(values))
                )
            final = run.final()
            if final:
                writer.add_event(
                    event_pb2.Event(
                        wall_time=run.finished, step=run.final_step, summary=self._scalars(final)
                    )
                )
            writer.add_event(
                event_pb2.Event(
                    wall_time=run.finished, step=run.final_step, summary=self._session_end(run)
                )
            )
        finally:
            writer.close()
        # the folder's files of ours were removed before, so the one there is the one just made
        [path] = [p for p in folder.glob(EVENTS_PREFIX + "*") if _ours(p.name)]
        return path.name

    def _scalars(self, values: dict[str, float]):
        # simple_value: the scalar form every TensorBoard and EventAccumulator.Scalars reads
        return self._summary_pb2.Summary(
            value=[
                self._summary_pb2.Summary.Value(tag=tag, simple_value=value)
                for tag, value in values.items()
            ]
        )

    def _session_end(self, run: ExportRun):
        """The HParams plugin's session end: how the run ended, when."""
        api = self._api_pb2
        status = api.STATUS_SUCCESS if run.record.status == "ok" else api.STATUS_FAILURE
        data = self._plugin_data_pb2.HParamsPluginData(
            session_end_info=self._plugin_data_pb2.SessionEndInfo(
                status=status, end_time_secs=run.finished
            )
        )
        summary = self._summary_pb2.Summary()
        summary.value.add(
            tag=self._metadata.SESSION_END_INFO_TAG,
            metadata=self._metadata.create_summary_metadata(data),
            tensor=self._metadata.NULL_TENSOR,
        )
        return summary

    def close(self) -> None:
        pass


def _read_marker(path: Path) -> dict:
    """What an earlier export left ({} when none, or unreadable: the run is written again)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}
