"""Writing the results tree (store.layout): run folders, claims (at most one process trains a
run), checkpoints, failed attempts kept, superseded runs, a killed writer's leftovers, and the
check that a folder holds runs of this version of the spec only. Nothing recorded is lost. It
reads what a writer needs through store.record's validating readers; store.reader reads
finished trees into tables. No torch here.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from elubench.core.errors import StoreError
from elubench.core.files import dumps, write_bytes_atomic, write_json_atomic
from elubench.store.layout import (
    CHECKPOINT,
    CLAIM,
    METRICS,
    RECORD,
    RUNS,
    SEQUENTIAL,
    SPEC_META,
    SPEC_YAML,
    SUPERSEDED,
    attempt_name,
    run_folder,
    spec_folder,
)
from elubench.store.record import (
    Claim,
    RunRecord,
    SequentialPlan,
    read_claim,
    read_metrics,
    read_record,
    read_sequential_plan,
    read_spec_meta,
)


def _pid_alive(pid: int) -> bool:
    """Whether process `pid` on this host is alive. A zombie (dead, not yet reaped by its
    parent) is not: it will never write or release its claim."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    try:  # Linux: the state is the field after the parenthesised command name
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


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
        while (self.path / attempt_name(n)).exists():
            n += 1
        os.replace(self.record_path, self.path / attempt_name(n))

    # --- claims: at most one process trains a run ------------------------------------------

    def claim(self, stale_seconds: float, *, take_over: bool = False) -> bool:
        """Claim the run; take over a stale claim (see `claim_holder`), or with `take_over` any
        claim but a live process's on this host. The claim is written whole to a temporary file
        and hard-linked into place, which fails if a claim exists: no reader ever sees an empty
        claim from a live writer, so an empty or unreadable one is a crash's leftover."""
        self.path.mkdir(parents=True, exist_ok=True)
        owner = Claim(host=socket.gethostname(), pid=os.getpid(), claimed=time.time())
        for _ in range(2):
            if self._create_claim(owner.model_dump_json().encode()):
                return True
            holder = self.claim_holder(stale_seconds)
            if holder is not None and not (take_over and not holder.here):
                return False
            try:  # rename, not unlink: of two racing takers only one wins the rename
                os.replace(self.claim_path, self.path / f".stale-claim-{os.getpid()}")
            except FileNotFoundError:
                return False
            (self.path / f".stale-claim-{os.getpid()}").unlink(missing_ok=True)
        return False

    def _create_claim(self, content: bytes) -> bool:
        """Create claim.json holding `content` unless one exists (False then)."""
        fd, tmp = tempfile.mkstemp(prefix=".claim.", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                os.fchmod(handle.fileno(), 0o644)
            try:
                os.link(tmp, self.claim_path)
                return True
            except FileExistsError:
                return False
            except OSError:  # a file system without hard links: exclusive create, then write
                try:
                    fd = os.open(self.claim_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as handle:
                    handle.write(content)
                return True
        finally:
            Path(tmp).unlink(missing_ok=True)

    def claim_holder(self, stale_seconds: float) -> Holder | None:
        """Who holds the run's claim, or None when nobody does or the claim is stale: empty or
        unreadable, its process dead on this host, or no heartbeat for `stale_seconds`."""
        try:
            age = time.time() - self.claim_path.stat().st_mtime
        except FileNotFoundError:
            return None
        owner = read_claim(self.claim_path)
        if owner is None:
            return None
        here = owner.host == socket.gethostname()
        if here and not _pid_alive(owner.pid):
            return None
        if age > stale_seconds:
            return None
        return Holder(owner.host, owner.pid, age, here)

    def heartbeat(self) -> None:
        """Show the claim is alive (its mtime is the heartbeat)."""
        try:
            os.utime(self.claim_path)
        except FileNotFoundError:
            pass

    def release(self) -> None:
        self.claim_path.unlink(missing_ok=True)

    def clean_leftovers(self) -> list[str]:
        """Remove what a killed writer leaves in the folder: temporary files of atomic writes
        and of claim take-overs. Only the claim's holder calls this, so none is in use."""
        removed = []
        for pattern in (".*.tmp", ".stale-claim-*"):
            for leftover in self.path.glob(pattern):
                leftover.unlink(missing_ok=True)
                removed.append(leftover.name)
        return removed


class Holder(NamedTuple):
    """A live claim's owner, as `run` reports a run it skips."""

    host: str
    pid: int
    heartbeat_age: float  # seconds since the claim's last heartbeat
    here: bool  # on this host (its pid is alive)

    def describe(self, stale_seconds: float) -> str:
        where = "this host" if self.here else f"host {self.host}"
        text = f"claimed by process {self.pid} on {where}, last heartbeat {self.heartbeat_age:.0f} s ago"
        if self.here:
            return text + "; it is training it"
        return (
            text + f"; taken over after {stale_seconds:.0f} s without a heartbeat, or now "
            "with --take-over if no process there trains it (a results folder copied from "
            "another machine)"
        )


class ResultsDir:
    """results/<spec name>/ for one spec: refuses to mix runs of different specs."""

    def __init__(self, root: Path, spec):
        self.root = Path(root)
        self.spec = spec
        self.path = spec_folder(self.root, spec.name)

    def run(self, run_id: str) -> RunDir:
        return RunDir(run_folder(self.path, run_id))

    def stored_hash(self) -> str | None:
        meta = read_spec_meta(self.path / SPEC_META)
        return None if meta is None else meta.spec_hash

    def _code_change(self) -> str:
        """What changed in the custom activations' code since the stored spec, in words ("" if
        nothing did, or the folder does not say)."""
        meta = read_spec_meta(self.path / SPEC_META)
        before = ((meta.spec if meta is not None else None) or {}).get("activation_code") or {}
        now = self.spec.activation_code
        for target in sorted(set(before) | set(now)):
            if target not in before:
                return f"; {target} is new to it"
            if target not in now:
                return f"; its runs include {target}, this spec does not"
            if before[target] != now[target]:
                return f"; the code of {target} changed ({before[target][:15]}… is now {now[target][:15]}…)"
        return ""

    def check(self, *, force: bool = False) -> None:
        """Refuse (without writing anything) a folder that holds another version's runs."""
        stored = self.stored_hash()
        if stored is not None and stored != self.spec.hash and not force:
            raise StoreError(
                f"holds runs of a different version of spec {self.spec.name!r} "
                f"(hash {stored}; this one is {self.spec.hash}): refusing to mix them"
                + self._code_change(),
                where=str(self.path),
                hint="use another --results DIR or another spec name, or --force to move the "
                "old runs aside (to superseded/) and start again",
            )

    def prepare(self, *, force: bool = False) -> None:
        """Create the folder, check it is writable and holds this spec's runs (or none)."""
        self.check(force=force)
        try:
            (self.path / RUNS).mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=self.path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(
                f"cannot write results here ({exc.strerror or exc})",
                where=str(self.path),
                hint="choose another folder with --results DIR",
            ) from None
        stored = self.stored_hash()
        if stored is not None and stored != self.spec.hash:
            self.supersede_all()  # only with force: check() refused otherwise
        if stored != self.spec.hash:
            write_json_atomic(
                self.path / SPEC_META,
                {
                    "spec_name": self.spec.name,
                    "spec_hash": self.spec.hash,
                    "spec": self.spec.model_dump(mode="json"),
                },
            )
            write_bytes_atomic(self.path / SPEC_YAML, self.spec.to_yaml().encode())

    def sequential_plan(self) -> SequentialPlan | None:
        """The sequential design this folder's runs were trained under (None: none)."""
        return read_sequential_plan(self.path / SEQUENTIAL)

    def fix_sequential_plan(self, plan: SequentialPlan) -> None:
        """Record the design before the first round; refuse (StoreError) a design that differs
        from the one recorded: its decisions would not be the ones its error rate is for."""
        stored = self.sequential_plan()
        if stored is None:
            write_json_atomic(self.path / SEQUENTIAL, plan.model_dump(mode="json"))
            return
        changed = stored.differences(plan)
        if changed:
            raise StoreError(
                "holds runs of a sequential design that differs from this one ("
                + "; ".join(changed)
                + "): its decisions are valid for the design fixed at its start only",
                where=str(self.path / SEQUENTIAL),
                hint="run with the stored design's options, or train the new design into "
                "another --results folder",
            )

    def _superseded(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path / SUPERSEDED / stamp
        n = 1
        while target.exists():
            n += 1
            target = self.path / SUPERSEDED / f"{stamp}-{n}"
        return target

    def supersede_all(self) -> Path:
        """Move every run and the old spec into superseded/<time>/ (a changed spec with --force)."""
        target = self._superseded()
        target.mkdir(parents=True)
        for name in (RUNS, SPEC_META, SPEC_YAML, SEQUENTIAL):
            if (self.path / name).exists():
                shutil.move(str(self.path / name), str(target / name))
        (self.path / RUNS).mkdir()
        return target

    def supersede_run(self, run_id: str) -> Path:
        """Move one run's folder into superseded/<time>/ (`run --force` on a done run)."""
        target = self._superseded() / run_id
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.run(run_id).path), str(target))
        return target
