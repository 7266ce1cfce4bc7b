"""One training run: paired init, the SGD loop, evaluations, checkpoints and the record.

The trainer trains; where its evaluations and checkpoints are kept is a `RunSink` it is given
(store.RunDir is the one in use), so this module knows nothing of the results tree.

The hot loop never waits for the device: the loss of each step goes into a device-side window
that is read once every `sync_every` steps (for divergence checks and progress) and at
evaluations. Data batches come from `data.epoch_batches`, already on the device.
"""

from __future__ import annotations

import io
import itertools
import math
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch

from elubench.activations.binding import source_record
from elubench.core.errors import BadCheckpoint, Stopped
from elubench.core.seeds import derive_seed
from elubench.spec.matrix import RunConfig
from elubench.store.record import RunRecord
from elubench.training.runtime import (
    allocator_setting,
    device_name,
    synchronize,
    versions,
)
from elubench.training.steps import (
    LossWindow,
    activation_implementation,
    activation_params,
    activation_stats,
    build_for_training,
    eval_batch_size,
    evaluate,
    make_step,
    prelu_slopes,
)


class RunSink(Protocol):
    """Where one run's evaluations and checkpoints are kept (store.RunDir)."""

    def metrics(self) -> list[dict]: ...  # the lines recorded so far
    def truncate_metrics(self, last_iteration: int) -> None: ...
    def append_metrics(self, line: dict) -> None: ...
    def load_checkpoint(self) -> bytes | None: ...  # None: start from scratch
    def save_checkpoint(self, payload: bytes) -> None: ...


@dataclass
class LoopOptions:
    """How the training loop runs (not what it trains)."""

    device: torch.device
    checkpoint_seconds: float = 300.0  # at most this long between checkpoints (at evaluations)
    compile: bool = False
    sync_every: int = 100  # steps between host reads of the loss window
    should_stop: Callable[[], bool] = lambda: False
    progress: Callable[[dict], None] | None = None


@dataclass
class _State:
    """What a checkpoint must carry besides the model and optimizer to resume exactly."""

    iteration: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    wall_before: float = 0.0  # wall time of earlier attempts (resumed runs)
    images: int = 0
    window_loss_sum: float = 0.0  # training loss since the last evaluation
    window_loss_steps: int = 0
    resumed_at: list[int] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)


# --- one run ----------------------------------------------------------------------------------


def train_run(spec, cfg: RunConfig, data, sink: RunSink, options: LoopOptions) -> RunRecord:
    """Train one run to its end (or divergence) and return its record (not yet written)."""
    trainer = Trainer(spec, cfg, data, sink, options)
    diverged = trainer.train()
    return trainer.record(diverged)


class Trainer:
    """The state of one run and the named steps of its loop."""

    def __init__(self, spec, cfg: RunConfig, data, sink: RunSink, options: LoopOptions):
        self.wall_start = time.perf_counter()
        self.spec, self.cfg, self.data, self.sink, self.options = spec, cfg, data, sink, options
        self.train_cfg, self.task, self.device = spec.train, spec.task, options.device
        self.model, self.optimizer, self.init_hash, self.memory_format = build_for_training(
            spec, cfg, self.device
        )
        self.step = make_step(
            self.model,
            self.optimizer,
            self.task,
            self.train_cfg.precision,
            self.memory_format,
            options.compile,
        )
        self.batch_size = min(self.train_cfg.batch_size, data.train_size)
        self.steps_per_epoch = data.steps_per_epoch(self.batch_size)
        self.total = self.train_cfg.iterations or self.train_cfg.epochs * self.steps_per_epoch
        self.eval_every = self.train_cfg.eval_interval(self.total)
        self.probe = data.probe(min(self.train_cfg.probe_size, data.train_size))
        self.window = LossWindow(options.sync_every, self.device)
        # decided now, not at the first step: on a CPU it may time the kernels once (kernels.py)
        self.activation_impl = activation_implementation(self.model, self.device, options.compile)
        self.state = _State()
        self.last: dict = {"test_error": None}  # the latest metrics line
        self.lr: float | None = None

    # the loop

    def train(self) -> str | None:
        """Train to the last iteration; return why the run diverged, or None."""
        self._start_or_resume()
        last_checkpoint = time.perf_counter()
        self._progress("start", total=self.total)
        self.model.train()
        t_window = time.perf_counter()
        for x, y in self._batches():
            self._set_lr()
            self.window.add(self.step(x, y))
            self.state.iteration += 1
            self.state.images += self.batch_size
            at_eval = (
                self.state.iteration % self.eval_every == 0 or self.state.iteration == self.total
            )
            stop = self.options.should_stop()
            if not (self.window.full or at_eval or stop):
                continue
            diverged = self._read_window(t_window)
            if diverged:
                return diverged
            if at_eval:
                self._evaluation()
                if time.perf_counter() - last_checkpoint >= self.options.checkpoint_seconds:
                    self._save_checkpoint()
                    last_checkpoint = time.perf_counter()
            if stop and self.state.iteration < self.total:
                self._save_checkpoint()
                raise Stopped(
                    f"{self.cfg.run_id} stopped at iteration {self.state.iteration}; "
                    "its checkpoint is saved"
                )
            t_window = time.perf_counter()
        return None

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches from the current iteration to the last: the epoch's draws, from (seed, epoch)."""
        while self.state.iteration < self.total:
            epoch, offset = divmod(self.state.iteration, self.steps_per_epoch)
            batches = self.data.epoch_batches(epoch, self.cfg.seed, self.batch_size)
            for batch in itertools.islice(batches, offset, None):
                if self.state.iteration >= self.total:
                    return
                yield batch

    def _set_lr(self) -> None:
        rate = self.train_cfg.lr_at(self.state.iteration)
        if rate != self.lr:
            self.lr = rate
            for group in self.optimizer.param_groups:
                group["lr"] = rate

    def _read_window(self, since: float) -> str | None:
        """Read the window's losses (the one host sync, so the time since `since` includes the
        device's queued work); say why if one is not finite."""
        losses = self.window.read()
        seconds = time.perf_counter() - since
        self.state.train_seconds += seconds
        bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        if bad is not None:
            first_bad = self.state.iteration - len(losses) + bad + 1
            self.state.iteration = first_bad
            return f"non-finite training loss ({losses[bad]}) at iteration {first_bad}"
        self.state.window_loss_sum += sum(losses)
        self.state.window_loss_steps += len(losses)
        self._progress(
            "progress",
            loss=sum(losses) / len(losses),
            test_error=self.last["test_error"],
            images_per_second=len(losses) * self.batch_size / max(seconds, 1e-9),
        )
        return None

    def _evaluation(self) -> None:
        self.last = self._evaluate()
        self.state.window_loss_sum, self.state.window_loss_steps = 0.0, 0
        self._progress("eval", test_error=self.last["test_error"])

    def _progress(self, event: str, **values) -> None:
        if self.options.progress:
            self.options.progress(
                {"event": event, "iteration": self.state.iteration, "total": self.total, **values}
            )

    # evaluations

    def _evaluate(self) -> dict:
        """Evaluate on the test set and the probe, append a metrics line and return it."""
        synchronize(self.device)
        t0 = time.perf_counter()
        precision = self.train_cfg.precision
        result = evaluate(
            self.model,
            self.data,
            self.task,
            eval_batch_size(self.batch_size),
            precision,
            self.memory_format,
        )
        stats = activation_stats(self.model, self.probe, precision, self.memory_format)
        self.model.train()
        state = self.state
        state.eval_seconds += time.perf_counter() - t0
        train_loss = (
            state.window_loss_sum / state.window_loss_steps if state.window_loss_steps else None
        )
        line = {
            "iteration": state.iteration,
            "epoch": state.iteration / self.steps_per_epoch,
            "lr": self.train_cfg.lr_at(max(state.iteration - 1, 0)),
            "train_loss": train_loss,
            **result,
            "activations": stats,
            "prelu": prelu_slopes(self.model),
            "seconds": state.train_seconds + state.eval_seconds,
        }
        learned = activation_params(self.model)
        if learned is not None:
            line["activation_params"] = learned
        self.sink.append_metrics(line)
        return line

    # checkpoints

    def _start_or_resume(self) -> None:
        """Resume from the sink's checkpoint (dropping later metrics lines), or start afresh
        with an evaluation at iteration 0. The dropout stream is seeded per seed, so every
        activation sees the same masks."""
        torch.manual_seed(derive_seed(self.cfg.seed, "torch"))
        payload = self.sink.load_checkpoint()
        if payload is None:
            self.sink.truncate_metrics(-1)
            self.last = self._evaluate()
            return
        self._restore(payload)
        self.state.resumed_at.append(self.state.iteration)
        self.sink.truncate_metrics(self.state.iteration)
        lines = self.sink.metrics()
        self.last = lines[-1] if lines else {"test_error": None}

    def _save_checkpoint(self) -> None:
        wall = self.state.wall_before + time.perf_counter() - self.wall_start
        cuda = self.device.type == "cuda"
        payload = {
            "run_id": self.cfg.run_id,
            "spec_hash": self.cfg.spec_hash,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "state": {**asdict(self.state), "wall_before": wall},
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(self.device) if cuda else None,
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        self.sink.save_checkpoint(buffer.getvalue())

    def _restore(self, raw: bytes) -> None:
        try:
            payload = torch.load(io.BytesIO(raw), map_location=self.device, weights_only=True)
            if payload["run_id"] != self.cfg.run_id or payload["spec_hash"] != self.cfg.spec_hash:
                raise ValueError("it belongs to another run or spec")
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            torch.set_rng_state(payload["rng_cpu"].cpu())
            if payload["rng_cuda"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(payload["rng_cuda"].cpu(), self.device)
            self.state = _State(**payload["state"])
        except Exception as exc:  # whatever is wrong, the user resolves it (runner says how)
            raise BadCheckpoint(f"{exc.__class__.__name__}: {exc}") from None

    # the record

    def record(self, diverged: str | None) -> RunRecord:
        """The record of a run that ended: its last evaluation's result unless it diverged."""
        state, data = self.state, self.data
        result: dict[str, Any] = dict.fromkeys(
            ("test_errors", "test_error", "test_loss", "train_loss", "activation_stats")
        )
        if not diverged:
            result.update(
                {key: self.last[key] for key in result if key in self.last},
                activation_stats=self.last["activations"],
            )
        return RunRecord(
            **self.cfg.model_dump(),
            **result,
            status="diverged" if diverged else "ok",
            reason=diverged,
            task=self.task,
            test_size=data.test_size,
            iterations=state.iteration,
            total_iterations=self.total,
            epochs=state.iteration / self.steps_per_epoch,
            batch_size=self.batch_size,
            wall_seconds=state.wall_before + time.perf_counter() - self.wall_start,
            train_seconds=state.train_seconds,
            eval_seconds=state.eval_seconds,
            images_per_second=state.images / state.train_seconds if state.train_seconds else None,
            init_hash=self.init_hash,
            prelu_slopes=prelu_slopes(self.model),
            activation_source=source_record(self.model.activation),
            activation_params=activation_params(self.model),
            activation_stochastic=self.model.activation.stochastic,
            device=str(self.device),
            device_name=device_name(self.device),
            precision=self.train_cfg.precision,
            compiled=self.options.compile,
            threads=torch.get_num_threads(),
            allocator=allocator_setting(self.device),
            activation_impl=self.activation_impl,
            host=socket.gethostname(),
            versions=versions(),
            data=data.info,
            resumed_at=state.resumed_at,
            started_at=state.started_at,
            finished_at=time.time(),
        )
