"""The results tree: one folder per run, written so that nothing recorded is lost.

    results/<spec name>/spec.yaml            the resolved spec (written by the first run)
    results/<spec name>/spec.json            its name and hash: a later spec must match it
    results/<spec name>/runs/<run_id>/run.json       the final record, written once, atomically
    results/<spec name>/runs/<run_id>/metrics.jsonl  one line per evaluation
    results/<spec name>/runs/<run_id>/checkpoint.pt  the latest checkpoint of an unfinished run
    results/<spec name>/runs/<run_id>/claim.json     who trains it now (exclusive create)
    results/<spec name>/superseded/<time>/...        records moved aside by --force, never deleted

A run is done when its run.json exists and reads. This module writes the tree (and reads what
a writer needs); `elubench.results` reads finished trees into tables. No torch here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from elubench.errors import StoreError
from elubench.files import dumps, write_bytes_atomic, write_json_atomic
from elubench.record import RunRecord, read_record

RECORD = "run.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
CLAIM = "claim.json"


def read_metrics(path: Path) -> list[dict]:
    """Rows of a metrics.jsonl; a torn last line (a crash mid-write) is ignored."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return rows
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDir:
    """The folder of one run: its record, metrics, checkpoint and claim."""

    def __init__(self, path: Path):
        self.path = path

    record_path = property(lambda self: self.path / RECORD)
    metrics_path = property(lambda self: self.path / METRICS)
    checkpoint_path = property(lambda self: self.path / CHECKPOINT)
    claim_path = property(lambda self: self.path / CLAIM)

    def record(self) -> RunRecord | None:
        """The finished record, or None while the run is not done."""
        if not self.record_path.exists():
            return None
        return read_record(self.record_path)

    def write_record(self, record: RunRecord) -> None:
        write_json_atomic(self.record_path, record.to_json())

    # --- what the trainer needs (train.RunSink) --------------------------------------------

    def append_metrics(self, row: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(dumps(row) + "\n")

    def metrics(self) -> list[dict]:
        return read_metrics(self.metrics_path)

    def truncate_metrics(self, last_iteration: int) -> None:
        """Keep the evaluations up to a checkpoint's iteration (a resumed run redoes the rest)."""
        rows = [r for r in self.metrics() if r.get("iteration", 0) <= last_iteration]
        write_bytes_atomic(self.metrics_path, "".join(dumps(r) + "\n" for r in rows).encode())

    def load_checkpoint(self) -> bytes | None:
        try:
            return self.checkpoint_path.read_bytes()
        except FileNotFoundError:
            return None

    def save_checkpoint(self, payload: bytes) -> None:
        write_bytes_atomic(self.checkpoint_path, payload)

    def archive_attempt(self) -> None:
        """Move a failed run's record aside (attempt-N.json) before it is tried again."""
        n = 1
        while (self.path / f"attempt-{n}.json").exists():
            n += 1
        os.replace(self.record_path, self.path / f"attempt-{n}.json")

    # --- claims: at most one process trains a run ------------------------------------------

    def claim(self, stale_seconds: float) -> bool:
        """Claim the run with an exclusive create; take over a claim whose owner is gone."""
        self.path.mkdir(parents=True, exist_ok=True)
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "claimed": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.claim_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._claim_is_stale(stale_seconds):
                    return False
                try:  # rename, not unlink: of two racing takers only one wins the rename
                    os.replace(self.claim_path, self.path / f".stale-claim-{os.getpid()}")
                except FileNotFoundError:
                    return False
                (self.path / f".stale-claim-{os.getpid()}").unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(owner, handle)
            return True
        return False

    def _claim_is_stale(self, stale_seconds: float) -> bool:
        try:
            owner = json.loads(self.claim_path.read_text())
            age = time.time() - self.claim_path.stat().st_mtime
        except FileNotFoundError:
            return True
        except (OSError, json.JSONDecodeError):
            # a claim being written right now, or torn by a crash: judge by its age alone
            try:
                return time.time() - self.claim_path.stat().st_mtime > stale_seconds
            except FileNotFoundError:
                return True
        if owner.get("host") == socket.gethostname() and not _pid_alive(int(owner.get("pid", -1))):
            return True
        return age > stale_seconds

    def heartbeat(self) -> None:
        """Show the claim is alive (its mtime is the heartbeat)."""
        try:
            os.utime(self.claim_path)
        except FileNotFoundError:
            pass

    def release(self) -> None:
        self.claim_path.unlink(missing_ok=True)


class ResultsDir:
    """results/<spec name>/ for one spec: refuses to mix runs of different specs."""

    def __init__(self, root: Path, spec):
        self.root = Path(root)
        self.spec = spec
        self.path = self.root / spec.name

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.path / "runs" / run_id)

    def stored_hash(self) -> str | None:
        meta = self.path / "spec.json"
        if not meta.exists():
            return None
        try:
            return json.loads(meta.read_text())["spec_hash"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            raise StoreError("corrupt spec.json", where=str(meta),
                             hint="restore it, or move the folder away") from None

    def check(self, *, force: bool = False) -> None:
        """Refuse (without writing anything) a folder that holds another version's runs."""
        stored = self.stored_hash()
        if stored is not None and stored != self.spec.hash and not force:
            raise StoreError(
                f"holds runs of a different version of spec {self.spec.name!r} "
                f"(hash {stored}; this one is {self.spec.hash}): refusing to mix them",
                where=str(self.path),
                hint="use another --results DIR or another spec name, or --force to move the "
                     "old runs aside (to superseded/) and start again")

    def prepare(self, *, force: bool = False) -> None:
        """Create the folder, check it is writable and holds this spec's runs (or none)."""
        self.check(force=force)
        try:
            (self.path / "runs").mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=self.path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(f"cannot write results here ({exc.strerror or exc})", where=str(self.path),
                             hint="choose another folder with --results DIR") from None
        stored = self.stored_hash()
        if stored is not None and stored != self.spec.hash:
            self.supersede_all()  # only with force: check() refused otherwise
        if stored != self.spec.hash:
            write_json_atomic(self.path / "spec.json", {
                "spec_name": self.spec.name, "spec_hash": self.spec.hash,
                "spec": self.spec.model_dump(mode="json")})
            write_bytes_atomic(self.path / "spec.yaml", self.spec.to_yaml().encode())

    def _superseded(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path / "superseded" / stamp
        n = 1
        while target.exists():
            n += 1
            target = self.path / "superseded" / f"{stamp}-{n}"
        return target

    def supersede_all(self) -> Path:
        """Move every run and the old spec into superseded/<time>/ (a changed spec with --force)."""
        target = self._superseded()
        target.mkdir(parents=True)
        for name in ("runs", "spec.json", "spec.yaml"):
            if (self.path / name).exists():
                shutil.move(str(self.path / name), str(target / name))
        (self.path / "runs").mkdir()
        return target

    def supersede_run(self, run_id: str) -> Path:
        """Move one run's folder into superseded/<time>/ (`run --force` on a done run)."""
        target = self._superseded() / run_id
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.run(run_id).path), str(target))
        return target


def find_records(root: Path) -> list[Path]:
    """Every run.json under root (a results tree, one spec's folder, or several merged)."""
    root = Path(root)
    if root.is_file() and root.name == RECORD:
        return [root]
    return sorted(p for p in root.rglob(RECORD) if "superseded" not in p.relative_to(root).parts)
