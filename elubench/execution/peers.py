"""Runs another driver is training: two `elubench run` of one spec into one results folder (on
two machines, two terminals, a Ray or Slurm driver beside a local one) split the matrix through
its claims, and each reaches the runs the other holds. Rather than call those runs missing, a
driver whose own work is done waits for them (`wait_for_peers`) while their claims are live (a
fresh heartbeat), takes their records as they land, and so ends with the matrix as it stands.

A claim that stops being live without a record (its process stopped or died; a stale heartbeat)
ends the wait for that run: it is reported without a record, with the reason, as before
(exit 4; docs/reliability.md). `run --no-wait` does not wait at all. Works the same whatever
executor trained this driver's runs: the claims live in the results folder every driver shares.
No torch.
"""

from __future__ import annotations

import time

from elubench.core.errors import StoreError
from elubench.execution.runner import STALE_SECONDS
from elubench.execution.state import Reporter
from elubench.spec.matrix import RunConfig
from elubench.store.record import RunRecord
from elubench.store.rundir import Holder, ResultsDir

WAIT_POLL_SECONDS = 1.0  # how often a waiting driver looks at the runs its peers hold


def held_by_peers(
    folder: ResultsDir, configs: list[RunConfig], records: list[RunRecord]
) -> dict[str, tuple[RunConfig, Holder | None]]:
    """The runs of `configs` without a record here whose claim is live, or that a peer has
    recorded since (holder None): run id -> (run, holder)."""
    done = {record.run_id for record in records}
    held: dict[str, tuple[RunConfig, Holder | None]] = {}
    for cfg in configs:
        if cfg.run_id in done:
            continue
        run = folder.run(cfg.run_id)
        holder = run.claim_holder(STALE_SECONDS)
        if holder is not None or run.record_path.exists():
            held[cfg.run_id] = (cfg, holder)
    return held


def waiting_text(holders: list[Holder]) -> str:
    """ "waiting for 2 runs that process 812 on this host is training" (and the others)."""
    by_process: dict[tuple[str, int, bool], int] = {}
    for holder in holders:
        key = (holder.host, holder.pid, holder.here)
        by_process[key] = by_process.get(key, 0) + 1
    parts = [
        f"{n} run{'s' * (n > 1)} that process {pid} on "
        f"{'this host' if here else 'host ' + host} is training"
        for (host, pid, here), n in by_process.items()
    ]
    return "waiting for " + " and ".join(parts)


def wait_for_peers(
    folder: ResultsDir,
    configs: list[RunConfig],
    records: list[RunRecord],
    reporter: Reporter,
    reasons: dict[str, str],
    *,
    poll: float = WAIT_POLL_SECONDS,
) -> list[RunRecord]:
    """Wait until every run of `configs` that a live peer holds has a record, or its claim is
    no longer live (no time limit: a run takes what it takes, and its heartbeat says it is
    alive); return `records` with those that landed. `reasons` (run id -> why it has no record)
    loses the runs that landed and gets the reason of those that did not."""
    records = list(records)
    waiting = held_by_peers(folder, configs, records)
    first = True
    while waiting:
        if not first:
            reporter.waiting([holder for _, holder in waiting.values() if holder is not None])
            time.sleep(poll)
        first = False  # the first look takes what the peers finished while this driver worked
        for run_id, (cfg, holder) in list(waiting.items()):
            run = folder.run(run_id)
            try:
                record = run.record()
            except StoreError as exc:  # the peer left a damaged record: the user's to look at
                reasons[run_id] = exc.render()
                del waiting[run_id]
                continue
            if record is not None:
                records.append(record)
                reasons.pop(run_id, None)
                reporter.peer_run_end(cfg, record, holder)
                del waiting[run_id]
                continue
            now = run.claim_holder(STALE_SECONDS)
            if now is not None:
                waiting[run_id] = (cfg, now)
                continue
            if holder is not None:  # the claim ended without a record
                where = "this host" if holder.here else f"host {holder.host}"
                reasons[run_id] = (
                    f"process {holder.pid} on {where} stopped training it without a record (it "
                    "stopped or died; a checkpoint, if any, is kept); run the same command again "
                    "to train it"
                )
            del waiting[run_id]
    reporter.waiting([])
    return records
