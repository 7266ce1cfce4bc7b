"""The experiment spec: a YAML file validated by pydantic.

Sections: ``data``, ``model``, ``train``, ``compare``, ``reference`` (see docs/spec.md).
This module is the schema; ``elubench.spec.loader`` reads files and overrides into it with
located errors. Pure Python: no torch.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal, get_args

import yaml
from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from elubench.activations.names import CustomRef, hash_key, parse_activation
from elubench.activations.registry import Activation
from elubench.core.errors import ElubenchError
from elubench.core.limits import (
    MAX_EXACT_PAIRS,
    MAX_LIST,
    MAX_SEED,
    MAX_SEEDS,
    MAX_SIDE,
    MAX_WIDTH,
    check_seeds,
)
from elubench.spec.data_section import Data, Strict
from elubench.spec.notation import Layer, format_stack, parse_architecture, parse_stack
from elubench.spec.train_section import Train

PoolName = Literal["max2", "avg2", "none"]
InitName = Literal["he", "he-aware", "xavier", "torch-default"]
# The side of every paired test, on d = err(a) - err(b): "less" = a has the lower error.
Alternative = Literal["two-sided", "less", "greater"]
ALTERNATIVES: tuple[str, ...] = get_args(Alternative)


# --- model ------------------------------------------------------------------------------------


class Model(Strict):
    stacks: list[str] = Field(max_length=MAX_LIST)
    dropout: float | list[float] = 0.0
    pool: PoolName | list[PoolName] = "max2"
    spp: list[Annotated[int, Field(ge=1, le=64)]] | None = Field(None, max_length=16)
    stride: list[Annotated[int, Field(ge=1, le=MAX_SIDE)]] | None = (
        None  # per stack: its first layer's
    )
    width: float = Field(
        1.0, gt=0, le=MAX_WIDTH
    )  # scales every layer's units but the output layer's

    @field_validator("stacks", mode="before")
    @classmethod
    def _canonical_stacks(cls, value):
        """One canonical text per stack ("1x192x1, 1x240x3"), so `×` or `x`, spaces and brackets
        do not change the spec hash. Text that does not parse is kept for validate_spec to
        report with its location (a whole bracket string that does not parse is kept as one
        item)."""
        if isinstance(value, str):  # "[1x192x5] [1x192x1, 1x240x3]": split into stacks
            try:
                return [format_stack(layers) for layers in parse_architecture(value)]
            except ElubenchError:
                return [value]
        if isinstance(value, list):
            out = []
            for text in value:
                try:
                    out.append(format_stack(parse_stack(text)))
                except ElubenchError:
                    out.append(text)
            return out
        return value

    @field_validator("stacks")
    @classmethod
    def _some_stacks(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a model needs at least one stack")
        return value  # parsed (with located errors) by validate_spec

    @field_validator("dropout")
    @classmethod
    def _dropout_range(cls, value):
        for rate in value if isinstance(value, list) else [value]:
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"a dropout rate must be in [0, 1), got {rate}")
        return value

    def layers(self) -> list[list[Layer]]:
        return [parse_stack(text) for text in self.stacks]

    def dropout_rates(self) -> list[float]:
        if isinstance(self.dropout, list):
            return list(self.dropout)
        return [self.dropout] * (len(self.stacks) - 1) + [0.0]


# --- compare ----------------------------------------------------------------------------------


def config_label(activation: str, batchnorm: bool, init: str | None = None) -> str:
    """A configuration's name in tables: `relu`, `relu+bn`, `relu+bn/xavier`. Labels are for
    display: code that needs a configuration's activation, BN or init reads those fields of the
    record, never the label (which nothing parses)."""
    label = f"{activation}+bn" if batchnorm else activation
    return f"{label}/{init}" if init else label


def default_baseline(activations: list[str]) -> str:
    """The baseline activation when none is given: relu if the matrix has it, else the first.
    Each activation is compared with it at the same BN setting. The one place this rule lives
    (spec, compare and report all use it)."""
    return "relu" if "relu" in activations else activations[0]


class Compare(Strict):
    activations: list[str] = Field(["elu", "relu", "lrelu", "srelu"], max_length=MAX_LIST)
    batchnorm: list[bool] = [False, True]
    seeds: (
        Annotated[int, Field(ge=1, le=MAX_SEEDS)] | list[Annotated[int, Field(ge=0, le=MAX_SEED)]]
    ) = 10  # a count, or the seeds themselves
    init: InitName | list[InitName] = "he"
    baseline: str | None = (
        None  # an activation (compared at each BN setting) or a configuration label; default relu
    )
    alpha: float = Field(0.05, gt=0, lt=1)
    alternative: Alternative = "two-sided"
    # The region of practical equivalence of the Bayesian signed-rank test, in the unit of
    # differences (percentage points of test error; core.units): differences within ±rope
    # count as "equivalent" (docs/statistics.md).
    rope: float = Field(0.5, ge=0, allow_inf_nan=False)
    # The sequential design (`run --until-decided`; docs/statistics.md): seeds 0, 1, ... are
    # trained in rounds until every comparison is decided or futile, at most `max_seeds`
    # (exact tests: 50 at most). `seeds` is then the fixed design's count, not used.
    until_decided: bool = False
    max_seeds: int = Field(20, ge=1, le=MAX_EXACT_PAIRS)

    # How `compare` tests, whatever the matrix: what `compare` and `report` take from the spec
    # stored with the runs (reporting.analysis), where no flag overrides it.
    TEST_OPTIONS: ClassVar[tuple[str, ...]] = ("alpha", "alternative", "rope")

    @field_validator("activations")
    @classmethod
    def _canonical_activations(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one activation")
        canonical = []
        for text in value:
            try:
                name = str(parse_activation(text))
            except ElubenchError as exc:
                raise ValueError(exc.render()) from None
            if name in canonical:
                raise ValueError(f"{text!r} is listed twice (as {name!r})")
            canonical.append(name)
        return canonical

    @field_validator("batchnorm")
    @classmethod
    def _batchnorm_set(cls, value: list[bool]) -> list[bool]:
        if not value or len(set(value)) != len(value):
            raise ValueError(
                "batchnorm is a list of distinct booleans: [false], [true] or [false, true]"
            )
        return value

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_bounds(cls, value):
        return check_seeds(value)

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value):
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("seeds is a count or a list of distinct seeds")
        return value

    @field_validator("init")
    @classmethod
    def _distinct_inits(cls, value):
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("init is one scheme or a list of distinct schemes")
        return value

    @model_validator(mode="after")
    def _sequential_seeds_listed(self):
        if self.until_decided and isinstance(self.seeds, list) and len(self.seeds) < self.max_seeds:
            raise ValueError(
                f"until_decided trains up to max_seeds ({self.max_seeds}) seeds, but seeds lists "
                f"{len(self.seeds)}: list at least {self.max_seeds} seeds, or set max_seeds to "
                f"{len(self.seeds)} or fewer"
            )
        return self

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def sequential_seeds(self) -> list[int]:
        """The seeds `run --until-decided` may train, in the order it trains them: 0 ..
        max_seeds - 1, or the first max_seeds of a list of seeds."""
        if isinstance(self.seeds, int):
            return list(range(self.max_seeds))
        return list(self.seeds[: self.max_seeds])

    def init_list(self) -> list[str]:
        return [self.init] if isinstance(self.init, str) else list(self.init)

    def parsed_activations(self) -> list[Activation | CustomRef]:
        return [parse_activation(name) for name in self.activations]

    def labels(self) -> list[str]:
        inits = self.init_list()
        return [
            config_label(a, bn, i if len(inits) > 1 else None)
            for i in inits
            for a in self.activations
            for bn in self.batchnorm
        ]

    def baseline_label(self) -> str:
        if self.baseline is not None:
            return self.baseline
        return default_baseline(self.activations)

    @model_validator(mode="after")
    def _baseline_in_matrix(self):
        """The baseline is a configuration label of the matrix as `elubench compare` prints it
        (`relu+bn`, `relu/xavier`), or one of its activations in any spelling (`lrelu(0.1)`)."""
        if self.baseline is None or self.baseline in self.labels():
            return self
        try:
            canonical = str(parse_activation(self.baseline))
        except ElubenchError:
            canonical = None
        if canonical not in self.activations:
            raise ValueError(
                f"baseline {self.baseline!r} is not in the matrix; choose one of its "
                f"activations ({', '.join(self.activations)}) or configurations "
                f"({', '.join(self.labels())})"
            )
        object.__setattr__(self, "baseline", canonical)
        return self


class Reference(Strict):
    """A source's published numbers, printed beside ours: label -> [mean %, std %]."""

    test_error: dict[str, tuple[float, float]] = {}
    note: str = ""


# --- the spec ---------------------------------------------------------------------------------


class Spec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    source: str = ""
    task: Literal["classification", "autoencoder"] = "classification"
    data: Data
    model: Model
    train: Train
    compare: Compare = Compare()
    reference: Reference = Reference()
    # Filled in when a spec is read (elubench.activations.code.locate), never by hand: each
    # custom activation's target (`/abs/acts.py:isrlu`, `mypkg.acts:ISRLU`, a registered name)
    # to its code identity (`sha256:...`, `name==version`). The hash covers it.
    activation_code: dict[str, str] = Field({}, max_length=MAX_LIST)

    def run_defining(self) -> dict[str, Any]:
        """What determines one run's result: everything but the matrix's extent and the notes.

        Left out: `data.imagefolder.workers` (the number of DataLoader processes does not change
        the batches, see elubench.data.StreamData) and `train.threads` (a run condition that every
        record states and `compare` checks pair by pair). Added, so that runs of a net built under an
        older layout rule never join a results folder of the new one: `model.width_rounding`
        when `model.width` != 1 (scaled units are rounded half up, no longer by Python's
        banker's round()), and `model.spp_input` when `spp` is set with a single `pool` value
        (the last conv stack is no longer pooled before SPP). Other specs keep their hash.
        With custom activations, their code identities (a file by its name and SHA-256, not its
        folder), so results of an older version of a user's function are never mixed with the
        new one's; `train.optimizer.activation_weight_decay` when it is set.
        """
        dumped = self.model_dump(mode="json")
        data, model, train = dumped["data"], dumped["model"], dumped["train"]
        if data.get("imagefolder") is not None:
            data["imagefolder"].pop("workers", None)
        train.pop("threads")  # a run condition, recorded per run and checked by compare
        if train["optimizer"].get("activation_weight_decay") is None:
            train["optimizer"].pop("activation_weight_decay", None)
        if self.model.width != 1:
            model["width_rounding"] = "half-up"
        if self.model.spp and not isinstance(self.model.pool, list):
            model["spp_input"] = "last-conv-unpooled"
        defining = {"task": dumped["task"], "data": data, "model": model, "train": train}
        if self.activation_code:
            defining["activation_code"] = sorted(
                f"{hash_key(target)} {identity}"
                for target, identity in self.activation_code.items()
            )
        return defining

    @property
    def hash(self) -> str:
        """Hash of the run-defining part. Adding seeds or activations keeps it; changing the
        data, the net or the schedule changes it."""
        text = json.dumps(self.run_defining(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
