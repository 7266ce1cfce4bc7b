"""The run record (one definition, validated wherever it is read) and the one atomic writer."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

from elubench.core.errors import StoreError
from elubench.core.files import write_bytes_atomic, write_json_atomic
from elubench.store.record import REQUIRED_KEYS, SCALAR_FIELDS, RunRecord, parse_record, read_record

RUN = {
    "run_id": "elu-nobn-he-s000",
    "spec_name": "tiny",
    "spec_hash": "abc",
    "activation": "elu",
    "batchnorm": False,
    "init": "he",
    "seed": 0,
    "config": "elu",
}


def _ok(**changes) -> dict:
    record = {
        **RUN,
        "status": "ok",
        "task": "classification",
        "test_errors": 12,
        "test_size": 445,
        "test_error": 12 / 445,
        "test_loss": 0.3,
        "train_loss": 0.2,
        "iterations": 20,
        "wall_seconds": 1.5,
        "images_per_second": 900.0,
        "init_hash": "c562a4871c6f8466",
    }
    record.update(changes)
    return record


def _strict_loads(text: str):
    """json.loads that refuses NaN and Infinity, as JavaScript's JSON.parse does."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_the_contract_keys_are_the_required_fields():
    """Tools rely on these keys being in every run.json; changing them is a deliberate act."""
    assert REQUIRED_KEYS == (
        "run_id",
        "spec_name",
        "spec_hash",
        "activation",
        "batchnorm",
        "seed",
        "status",
        "test_errors",
        "test_size",
        "test_error",
        "test_loss",
        "train_loss",
        "iterations",
        "wall_seconds",
        "images_per_second",
        "init_hash",
    )
    assert {"config", "init", "task", "device_name", "threads", "allocator"} <= set(SCALAR_FIELDS)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"seed": "x"}, "seed"),
        ({"seed": None}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"batchnorm": "yes"}, "batchnorm"),
        ({"status": "done"}, "status"),
        ({"test_errors": "12"}, "test_errors"),
        ({"wall_seconds": [1]}, "wall_seconds"),
    ],
)
def test_wrong_types_are_a_corrupt_record_naming_the_field(tmp_path, change, words):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_ok(**change)))
    with pytest.raises(StoreError, match="corrupt run record") as info:
        read_record(path)
    assert words in info.value.message and str(path) in info.value.render()


def test_a_missing_contract_key_is_named(tmp_path):
    record = _ok()
    del record["init_hash"]
    with pytest.raises(StoreError, match="lacks init_hash"):
        parse_record(record, "run.json")


def test_unknown_keys_survive_a_round_trip():
    record = parse_record(_ok(from_a_newer_elubench={"x": 1}), "run.json")
    assert record.to_json()["from_a_newer_elubench"] == {"x": 1}
    assert record["test_errors"] == 12 and record.get("missing", "default") == "default"


def test_failed_form_is_a_valid_record_without_a_result():
    record = RunRecord.failed(
        RUN,
        reason="RuntimeError: boom",
        traceback="Traceback ...",
        task="classification",
        device="cpu",
        wall_seconds=0.5,
        finished_at=1.0,
    )
    again = parse_record(json.loads(json.dumps(record.to_json())), "run.json")
    assert again.status == "failed" and again.reason == "RuntimeError: boom"
    assert all(
        again[key] is None for key in ("test_errors", "test_error", "iterations", "init_hash")
    )
    assert set(REQUIRED_KEYS) <= set(record.to_json())


def test_records_are_strict_json_non_finite_numbers_become_null(tmp_path):
    """A diverged run's learned slopes may be NaN; run.json must still parse everywhere."""
    record = parse_record(
        _ok(
            status="diverged",
            test_errors=None,
            test_error=None,
            prelu_slopes={"s1_conv1": {"mean": math.nan, "min": -math.inf, "max": 0.25}},
        ),
        "run.json",
    )
    path = tmp_path / "run.json"
    write_json_atomic(path, record.to_json())
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert _strict_loads(text)["prelu_slopes"]["s1_conv1"] == {
        "mean": None,
        "min": None,
        "max": 0.25,
    }


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    """mkstemp creates 0600; a record must be readable by whoever the user's umask allows."""
    old = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "x" / "file", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x" / "file").stat().st_mode) == mode
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["file"]  # no temp file left


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "run.json"
    write_json_atomic(path, {"a": 1})

    class Unserializable:
        pass

    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": Unserializable()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
