"""The results tree: one folder per run, written so that nothing recorded is lost.

    results/<spec name>/spec.yaml            the resolved spec (written by the first run)
    results/<spec name>/spec.json            its name and hash: a later spec must match it
    results/<spec name>/runs/<run_id>/run.json       the final record, written once, atomically
    results/<spec name>/runs/<run_id>/metrics.jsonl  one line per evaluation
    results/<spec name>/runs/<run_id>/checkpoint.pt  the latest checkpoint of an unfinished run
    results/<spec name>/runs/<run_id>/claim.json     who trains it now (exclusive create)
    results/<spec name>/superseded/<time>/...        records moved aside by --force, never deleted

A run is done when its run.json exists and reads. No torch here: compare reads the tree fast.
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

RECORD = "run.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
CLAIM = "claim.json"

# Keys every run.json has (the contract; tools may rely on them).
RECORD_KEYS = ("run_id", "spec_name", "spec_hash", "activation", "batchnorm", "seed", "status",
               "test_errors", "test_size", "test_error", "test_loss", "train_loss", "iterations",
               "wall_seconds", "images_per_second", "init_hash")
STATUSES = ("ok", "diverged", "failed")
BAD_RECORD_HINT = ("move the file away (`run` then trains that run again); `compare` and "
                   "`report` can leave it out with --skip-bad")


def write_json_atomic(path: Path, payload) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=True)
    write_bytes_atomic(path, (text + "\n").encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict:
    """Read and check one run.json; StoreError names the file if it is corrupt."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"corrupt run record ({exc.__class__.__name__}: {exc})", where=str(path),
                         hint=BAD_RECORD_HINT) from None
    if not isinstance(record, dict):
        raise StoreError("corrupt run record (not a JSON object)", where=str(path))
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise StoreError(f"run record lacks {', '.join(missing)}", where=str(path),
                         hint=BAD_RECORD_HINT)
    if record["status"] not in STATUSES:
        raise StoreError(f"run record has unknown status {record['status']!r}", where=str(path))
    return record


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

    def record(self) -> dict | None:
        """The finished record, or None while the run is not done."""
        if not self.record_path.exists():
            return None
        return read_record(self.record_path)

    def write_record(self, record: dict) -> None:
        write_json_atomic(self.record_path, record)

    def append_metrics(self, row: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def metrics(self) -> list[dict]:
        return read_metrics(self.metrics_path)

    def truncate_metrics(self, last_iteration: int) -> None:
        """Keep the evaluations up to a checkpoint's iteration (a resumed run redoes the rest)."""
        rows = [r for r in self.metrics() if r.get("iteration", 0) <= last_iteration]
        write_bytes_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows).encode())

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


# --- reading a results tree for compare and report ------------------------------------------

RUN_COLUMNS = ("run_id", "spec_name", "spec_hash", "config", "activation", "batchnorm", "init",
               "seed", "status", "reason", "task", "test_errors", "test_size", "test_error",
               "test_loss", "train_loss", "iterations", "wall_seconds", "images_per_second",
               "init_hash", "device_name")


class Results:
    """Every run of one spec found under a folder, as pandas tables."""

    def __init__(self, runs, metrics, activations, spec: dict | None, skipped: list[str],
                 folder: Path | None = None):
        self.runs = runs                # one row per run (RUN_COLUMNS)
        self.metrics = metrics          # one row per evaluation: run_id, config, seed, iteration, ...
        self.activations = activations  # one row per evaluation and hidden layer (bias shift)
        self.spec = spec                # the resolved spec (spec.json), when the tree has it
        self.skipped = skipped          # corrupt files left out with --skip-bad
        self.folder = folder            # results/<spec name>/ (where REPORT.md goes)

    @property
    def name(self) -> str:
        return str(self.runs["spec_name"].iloc[0])


def _config_of(record: dict) -> str:
    from elubench.spec import config_label
    return record.get("config") or config_label(record["activation"], bool(record["batchnorm"]))


def load_results(root: Path, *, spec: str | None = None, skip_bad: bool = False,
                 detail: bool = True) -> Results:
    """Read every run.json (and, with `detail`, metrics.jsonl) under `root` for one spec.

    Raises StoreError for an empty tree, a corrupt record (unless skip_bad), or runs of several
    specs without `spec` naming one.
    """
    import pandas as pd

    root = Path(root)
    if not root.exists():
        raise StoreError("no such results folder", where=str(root),
                         hint="give the folder `elubench run` wrote (default results/)")
    records, skipped = [], []
    for path in find_records(root):
        try:
            record = read_record(path)
        except StoreError as exc:
            if not skip_bad:
                raise
            skipped.append(exc.render())
            continue
        record["_dir"] = path.parent
        records.append(record)
    if not records:
        raise StoreError("no run records (run.json) here", where=str(root),
                         hint="train some first: elubench run SPEC --results " + str(root))
    names = sorted({r["spec_name"] for r in records})
    if spec is not None:
        records = [r for r in records if r["spec_name"] == spec]
        if not records:
            raise StoreError(f"no runs of spec {spec!r} here", where=str(root),
                             hint=f"specs found: {', '.join(names)}")
    elif len(names) > 1:
        raise StoreError(f"runs of {len(names)} specs are here: {', '.join(names)}", where=str(root),
                         hint="pick one with --spec NAME, or point at results/<name>")
    hashes = sorted({r["spec_hash"] for r in records})
    if len(hashes) > 1:
        raise StoreError(f"runs of {len(hashes)} versions of spec {records[0]['spec_name']!r} "
                         f"(hashes {', '.join(hashes)}) are mixed here", where=str(root),
                         hint="keep one version's runs in this tree (elubench run refuses to mix them)")

    rows = []
    for r in records:
        row = {key: r.get(key) for key in RUN_COLUMNS}
        row["config"] = _config_of(r)
        row["init"] = r.get("init") or "he"
        row["batchnorm"] = bool(r["batchnorm"])
        row["task"] = r.get("task") or "classification"
        rows.append(row)
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    runs["test_errors"] = runs["test_errors"].astype("Int64")
    runs["seed"] = runs["seed"].astype(int)
    for column in ("test_size", "test_error", "test_loss", "train_loss", "iterations",
                   "wall_seconds", "images_per_second"):
        runs[column] = pd.to_numeric(runs[column], errors="coerce")

    metric_rows, layer_rows = [], []
    if detail:
        for r in records:
            config = _config_of(r)
            for line in read_metrics(r["_dir"] / METRICS):
                base = {"run_id": r["run_id"], "config": config, "seed": r["seed"],
                        "iteration": line.get("iteration")}
                metric_rows.append({**base, "test_error": line.get("test_error"),
                                    "train_loss": line.get("train_loss"), "lr": line.get("lr"),
                                    "seconds": line.get("seconds")})
                for layer, stats in (line.get("activations") or {}).items():
                    layer_rows.append({**base, "layer": layer, "mean": stats.get("mean"),
                                       "median": stats.get("median")})
    metrics = pd.DataFrame(metric_rows, columns=["run_id", "config", "seed", "iteration",
                                                 "test_error", "train_loss", "lr", "seconds"])
    activations = pd.DataFrame(layer_rows, columns=["run_id", "config", "seed", "iteration",
                                                    "layer", "mean", "median"])
    spec_dir = records[0]["_dir"].parent.parent
    resolved = None
    try:
        resolved = json.loads((spec_dir / "spec.json").read_text()).get("spec")
    except (OSError, json.JSONDecodeError, AttributeError):
        pass  # a tree without spec.json (records copied alone) still compares
    return Results(runs, metrics, activations, resolved, skipped, spec_dir)
