"""The results tree's layout: every name in it and how a path in it is found, in one place.

    results/<spec name>/spec.yaml            the resolved spec (written by the first run)
    results/<spec name>/spec.json            its name and hash: a later spec must match it
    results/<spec name>/sequential.json      the design of `run --until-decided`, fixed at its start
    results/<spec name>/runs/<run_id>/run.json       the final record, written once, atomically
    results/<spec name>/runs/<run_id>/metrics.jsonl  one line per evaluation
    results/<spec name>/runs/<run_id>/checkpoint.pt  the latest checkpoint of an unfinished run
    results/<spec name>/runs/<run_id>/claim.json     who trains it now (exclusive create)
    results/<spec name>/runs/<run_id>/attempt-N.json a failed attempt's record, kept
    results/<spec name>/superseded/<time>/...        records moved aside by --force, never deleted
    results/<spec name>/.stop/<driver>               a driver's request to its workers to stop
    results/<spec name>/slurm/<job id>/              Slurm jobs' logs (submitit)

A run is done when its run.json exists and reads. Pure Python.
"""

from __future__ import annotations

from pathlib import Path

RECORD = "run.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
CLAIM = "claim.json"
SPEC_META = "spec.json"
SPEC_YAML = "spec.yaml"
SEQUENTIAL = "sequential.json"
RUNS = "runs"
SUPERSEDED = "superseded"
STOP = ".stop"
SLURM_LOGS = "slurm"


def attempt_name(n: int) -> str:
    """The file a failed run's n-th record is kept as when it is tried again."""
    return f"attempt-{n}.json"


def spec_folder(results: Path, spec_name: str) -> Path:
    """results/<spec name>/: one spec's runs."""
    return Path(results) / spec_name


def run_folder(spec_dir: Path, run_id: str) -> Path:
    """results/<spec name>/runs/<run id>/."""
    return Path(spec_dir) / RUNS / run_id


def spec_folder_of(run_dir: Path) -> Path:
    """The spec's folder a run's folder (or any file in it, given as its folder) sits in."""
    return Path(run_dir).parent.parent


def find_records(root: Path) -> list[Path]:
    """Every run.json under root (a results tree, one spec's folder, or several merged); records
    moved aside to superseded/ are not results."""
    root = Path(root)
    if root.is_file() and root.name == RECORD:
        return [root]
    return sorted(p for p in root.rglob(RECORD) if SUPERSEDED not in p.relative_to(root).parts)
