"""The one seeding rule: every random stream of a run (weights per layer, data order and
augmentation per epoch, dropout, synthetic images) draws from a seed derived from the run's
seed and the stream's name, so streams never shift one another. Pure Python."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (unlike hash(), the same in every process)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
