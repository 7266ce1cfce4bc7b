"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The one writer every module uses (records, metrics rewrites, checkpoints, caches). Pure Python.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process's umask (reading it means setting it; put it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, fsync, os.replace.

    The file gets the mode a plain `open(path, "w")` would give (0666 less the umask), not
    mkstemp's private 0600, so others on a shared file system can read what elubench records.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float (at any depth) replaced by None, so that it
    serializes as strict JSON: JavaScript, Go and jq reject the NaN/Infinity tokens that
    Python's json module writes by default."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(payload: Any, **kwargs: Any) -> str:
    """Strict JSON text: non-finite numbers become null (see `finite`)."""
    return json.dumps(finite(payload), allow_nan=False, **kwargs)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Strict JSON (non-finite numbers as null), indented, written atomically."""
    write_bytes_atomic(path, (dumps(payload, indent=2) + "\n").encode())
