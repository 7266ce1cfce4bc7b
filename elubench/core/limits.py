"""The largest values a spec may hold (docs/spec.md, "Limits"), in one place.

Every bound is far past any published experiment and small enough that a typo or a hostile file
is one located message at load time, never a hang, a MemoryError or an allocator's traceback
later. Pure Python: no torch.
"""

from __future__ import annotations

from typing import TypeGuard

# reading the YAML (elubench.spec.safe_yaml)
MAX_BYTES = 256 * 1024  # a spec file; a real one is 1-5 KiB
MAX_DEPTH = 32  # nesting, also once aliases expand; a real spec nests 6 deep
MAX_NODES = 10_000  # values, also once aliases expand; a real spec has a few hundred
MAX_DIGITS = 30  # digits of a whole number in the YAML or a --set value

# the notation (elubench.spec.notation) and the net (elubench.spec.layout)
MAX_COUNT = 1000  # layers in one `AxUxK` entry
MAX_UNITS = 65_536  # units of a layer, also after model.width scales them
MAX_KERNEL = 1024  # receptive field; also at most twice the map's side plus one
MAX_LAYERS = 10_000  # conv and FC layers in the whole net

# the schema (elubench.spec)
MAX_SEEDS = 10_000  # seeds in a matrix (a count or a list)
MAX_SEED = 2**31 - 1  # a seed's value (compare.seeds, data.synthetic.seed)
# paired seeds an exact signed-rank test takes (its 2**n sign assignments fit in int64): the
# most the sequential design may train (compare.max_seeds; stats.paired.EXACT_MAX_N)
MAX_EXACT_PAIRS = 50
MAX_ITERATIONS = 10**9  # train.iterations, eval_every, a schedule's `every` and keys
MAX_EPOCHS = 10**6
MAX_BATCH = 65_536  # train.batch_size, train.probe_size
MAX_IMAGES = 10**8  # synthetic train/test sizes, train/test limits
MAX_SIDE = 4096  # image channels, height, width; crop, resize, pad, stride
MAX_CLASSES = 100_000
MAX_WIDTH = 64.0  # model.width
MAX_LIST = 256  # compare.activations, model.stacks


def check_seeds(value: object) -> object:
    """compare.seeds before the schema types it: one message for a count or list out of bounds
    (rather than one per branch of the count-or-list union)."""

    def number(x: object) -> TypeGuard[int | float]:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if (
        number(value)
        and value < 1
        or isinstance(value, list)
        and any(number(seed) and seed < 0 for seed in value)
    ):
        raise ValueError(f"seeds is a count from 1 to {MAX_SEEDS:,} or a list of seeds >= 0")
    if number(value) and value > MAX_SEEDS:
        raise ValueError(
            f"at most {MAX_SEEDS:,} seeds, got {value:,.0f} (a matrix that large "
            "would train for years)"
        )
    if isinstance(value, list) and len(value) > MAX_SEEDS:
        raise ValueError(f"at most {MAX_SEEDS:,} seeds, got a list of {len(value):,}")
    for seed in value if isinstance(value, list) else ():
        if number(seed) and seed > MAX_SEED:
            raise ValueError(f"a seed must be below 2**31, got {seed:,.0f}")
    return value
