"""Expand a spec into its run matrix: activation × batchnorm × init × seed, with stable ids."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from elubench.activations.names import CustomRef, parse_activation
from elubench.activations.registry import activation_slug
from elubench.core.errors import ElubenchError, SpecError
from elubench.core.limits import MAX_SEEDS
from elubench.spec.schema import Spec, config_label


class RunConfig(BaseModel):
    """One training run of the matrix: what identifies a run, in one place. Its record
    (store.record.RunRecord) is this plus how the run ended; plain, picklable data for workers."""

    model_config = ConfigDict(frozen=True)

    run_id: str  # stable across machines and matrix changes (filled in: see `_run_id`)
    spec_name: str
    spec_hash: str
    activation: str  # canonical text, e.g. "lrelu(a=0.2)"; a custom activation's label
    batchnorm: bool
    init: str
    seed: int
    config: str  # the configuration's label in tables: "relu+bn", "relu/xavier"
    # A custom activation's reference, with its file's absolute path ("/abs/acts.py:isrlu"):
    # what a worker resolves (activations.code.activation_for); None for a built-in.
    activation_ref: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _run_id(cls, values: Any) -> Any:
        """A new config's run id, from what it trains (adding seeds or activations keeps the old
        ones); a record read back keeps the id it was written with."""
        if isinstance(values, dict) and "run_id" not in values:
            slug = activation_slug(values["activation"])
            bn = "bn" if values["batchnorm"] else "nobn"
            values = {**values, "run_id": f"{slug}-{bn}-{values['init']}-s{values['seed']:03d}"}
        return values

    @classmethod
    def new(
        cls,
        *,
        spec_name: str,
        spec_hash: str,
        activation: str,
        batchnorm: bool,
        init: str,
        seed: int,
        config: str,
        activation_ref: str | None = None,
    ) -> RunConfig:
        """A new config of the matrix: every field but `run_id`, which `_run_id` fills in (the
        same validation as `RunConfig(...)`; typed, so a checker does not ask for run_id)."""
        return cls.model_validate(
            {
                "spec_name": spec_name,
                "spec_hash": spec_hash,
                "activation": activation,
                "batchnorm": batchnorm,
                "init": init,
                "seed": seed,
                "config": config,
                "activation_ref": activation_ref,
            }
        )


IDENTITY = tuple(RunConfig.model_fields)  # a run's identity fields: table columns, parameters


def expand(
    spec: Spec,
    *,
    activations: list[str] | None = None,
    batchnorm: list[bool] | None = None,
    seeds: int | list[int] | None = None,
) -> list[RunConfig]:
    """The matrix in seed-major order, so a stopped matrix leaves complete, paired seeds.

    `activations`, `batchnorm` and `seeds` (a count: 0..N-1, or the seeds) narrow or extend
    the spec's `compare` section.
    """
    compare = spec.compare
    names = [str(parse_activation(text)) for text in activations or compare.activations]
    labels = _labels(spec, list(dict.fromkeys(names)))
    bns = compare.batchnorm if batchnorm is None else batchnorm
    if isinstance(seeds, int) and not 1 <= seeds <= MAX_SEEDS:
        raise SpecError(f"seeds is a count from 1 to {MAX_SEEDS:,}, got {seeds:,}", where="--seeds")
    if seeds is None:
        seed_list = compare.seed_list()
    else:
        seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    inits = compare.init_list()
    return [
        RunConfig.new(
            spec_name=spec.name,
            spec_hash=spec.hash,
            activation=label,
            batchnorm=bn,
            init=init,
            seed=seed,
            config=config_label(label, bn, init if len(inits) > 1 else None),
            activation_ref=ref,
        )
        for seed in seed_list
        for init in inits
        for label, ref in labels
        for bn in bns
    ]


def _labels(spec: Spec, names: list[str]) -> list[tuple[str, str | None]]:
    """(label, reference) per activation: a built-in is its own label; a custom one is
    resolved (its code imported) for its label, and two of one label are refused."""
    if not any(isinstance(parse_activation(name), CustomRef) for name in names):
        return [(name, None) for name in names]
    from elubench.activations.binding import check_labels
    from elubench.activations.code import resolve

    resolved = [resolve(name, spec) for name in names]
    check_labels([(str(a), name) for a, name in zip(resolved, names)])
    return [(str(a), a.ref) for a in resolved]


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based I) -> (I, N)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise SpecError(
            f"cannot read shard {text!r}",
            where="--shard",
            hint="write I/N with 1 <= I <= N, e.g. --shard 2/4",
        )
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise SpecError(
            f"shard {index}/{count} is out of range",
            where="--shard",
            hint="write I/N with 1 <= I <= N, e.g. --shard 2/4",
        )
    return index, count


def shard(configs: list[RunConfig], index: int, count: int) -> list[RunConfig]:
    """The index-th (1-based) of `count` round-robin slices; stable when seeds are appended."""
    return [c for k, c in enumerate(configs) if k % count == index - 1]


BATCHNORM_FLAG = {"on": [True], "off": [False], "both": [False, True]}


def select(
    spec: Spec,
    *,
    activations: list[str] | None = None,
    batchnorm: str | None = None,
    seeds: int | None = None,
    shard_text: str | None = None,
) -> list[RunConfig]:
    """The runs `elubench run`'s selection flags ask for: --activations, --batchnorm
    on|off|both, --seeds N and --shard I/N over the spec's matrix. With the sequential design
    (compare.until_decided) the runs it may train: every configuration at its max_seeds seeds
    (it trains them in rounds, only as many as its decisions need)."""
    if batchnorm is not None and batchnorm not in BATCHNORM_FLAG:
        raise ElubenchError(
            f"unknown value {batchnorm!r}", where="--batchnorm", hint="use on, off or both"
        )
    pool: int | list[int] | None = seeds
    if spec.compare.until_decided:
        for given, flag in ((seeds, "--seeds"), (shard_text, "--shard")):
            if given is not None:
                raise SpecError(
                    f"{flag} does not go with --until-decided (compare.until_decided): the "
                    "sequential design decides how many seeds each configuration trains",
                    where=flag,
                    hint="set the most seeds with --max-seeds N; two drivers of one results "
                    "folder share the rounds through their claims, no shard needed",
                )
        pool = spec.compare.sequential_seeds()
    configs = expand(
        spec,
        activations=activations,
        seeds=pool,
        batchnorm=BATCHNORM_FLAG[batchnorm] if batchnorm else None,
    )
    if shard_text is not None:
        configs = shard(configs, *parse_shard(shard_text))
    return configs
