"""The spec's train section: batch, optimizer, the learning-rate schedule, length, evaluations,
precision and threads. Pure Python: no torch."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from elubench.core.limits import (
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_ITERATIONS,
)
from elubench.spec.data_section import Strict
from elubench.spec.safe_yaml import short


class Optimizer(Strict):
    name: Literal["sgd"] = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0005, ge=0)
    nesterov: bool = False
    # Weight decay on the parameters an activation learns (PReLU's slopes, a custom
    # activation's): none unless set, as decay would pull them toward their zero (PReLU paper).
    activation_weight_decay: float | None = Field(None, ge=0)


class StepLR(Strict):
    """Start at `initial`, divide by `divide_by` every `every` iterations."""

    initial: PositiveFloat
    divide_by: float = Field(10.0, gt=1)
    every: PositiveInt = Field(le=MAX_ITERATIONS)


class Train(Strict):
    batch_size: PositiveInt = Field(100, le=MAX_BATCH)
    optimizer: Optimizer = Optimizer()
    lr: PositiveFloat | dict[int, float] | StepLR = Field(0.01, union_mode="left_to_right")
    iterations: PositiveInt | None = Field(None, le=MAX_ITERATIONS)
    epochs: PositiveInt | None = Field(None, le=MAX_EPOCHS)
    eval_every: PositiveInt | None = Field(
        None, le=MAX_ITERATIONS
    )  # default: ten evaluations a run
    precision: Literal["fp32", "bf16"] = "fp32"
    probe_size: PositiveInt = Field(
        500, le=MAX_BATCH
    )  # training images whose activations give the bias shift
    # CPU intra-op threads of one run (`--threads`). Fixed rather than "all cores" so that a run
    # gives the same numbers whatever executor trains it and however busy the machine is (the
    # thread count sets the order of float sums); `run` trains as many runs at once as the cores
    # allow instead. Recorded in every run; not in the spec hash, as `compare` checks it per pair.
    threads: PositiveInt = Field(1, le=1024)

    @field_validator("lr", mode="before")
    @classmethod
    def _lr_shape(cls, value):
        if isinstance(value, dict) and any(k in value for k in ("initial", "divide_by", "every")):
            try:
                return StepLR.model_validate(value)
            except ValidationError as exc:
                raise ValueError(
                    "a step schedule is {initial: 0.01, divide_by: 10, every: 35000}; "
                    + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                ) from None
        if isinstance(value, dict):
            table = {}
            for key, rate in value.items():
                if (
                    isinstance(key, bool)
                    or not isinstance(key, int)
                    and not (str(key) and all("0" <= char <= "9" for char in str(key)))
                    or len(str(key).lstrip("0")) > 10
                    or int(key) > MAX_ITERATIONS
                ):
                    raise ValueError(
                        f"a piecewise schedule maps iterations (whole numbers from 0 "
                        f"to {MAX_ITERATIONS:,}) to rates, got the key {short(key)}"
                    )
                if (
                    isinstance(rate, bool)
                    or not isinstance(rate, (int, float))
                    or not rate > 0
                    or not math.isfinite(rate)
                ):
                    raise ValueError(
                        f"the rate from iteration {key} must be a number > 0, got {rate!r}"
                    )
                table[int(key)] = float(rate)
            if 0 not in table:
                raise ValueError("a piecewise schedule must give the rate from iteration 0")
            return dict(sorted(table.items()))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                "lr is a number (constant), a table {iteration: rate, ...} starting "
                f"at 0, or {{initial, divide_by, every}}; got {value!r}"
            )
        if not value > 0 or not math.isfinite(value):
            raise ValueError(f"a learning rate must be a number > 0, got {value!r}")
        return float(value)

    @model_validator(mode="after")
    def _length(self):
        if (self.iterations is None) == (self.epochs is None):
            raise ValueError("give exactly one of train.iterations and train.epochs")
        return self

    def eval_interval(self, total: int) -> int:
        """Iterations between evaluations: `eval_every`, else a tenth of the run."""
        return self.eval_every or max(1, total // 10)

    def lr_at(self, iteration: int) -> float:
        """The learning rate used for the update at `iteration` (0-based)."""
        if isinstance(self.lr, StepLR):
            return self.lr.initial / self.lr.divide_by ** (iteration // self.lr.every)
        if isinstance(self.lr, dict):
            rate = self.lr[0]
            for start, value in self.lr.items():
                if iteration >= start:
                    rate = value
            return rate
        return float(self.lr)
