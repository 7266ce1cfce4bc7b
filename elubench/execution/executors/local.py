"""The local executor: worker processes on this machine, one GPU each or a share of the cores."""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from elubench.core.errors import ExecutorError
from elubench.core.machine import visible_gpus
from elubench.execution.executors.base import ParallelExecutor, WorkerPayload, attempt
from elubench.spec.matrix import RunConfig


def assign_gpus(workers: int, gpus: list[str]) -> list[str | None]:
    """Worker k gets GPU k mod n (several workers may share one); None: no GPU."""
    return [gpus[k % len(gpus)] if gpus else None for k in range(workers)]


@contextmanager
def _main_left_alone() -> Iterator[None]:
    """While a worker is spawned, the parent's __main__ is hidden from it. A spawned process
    re-imports its parent's main module; when that is a user's script (elubench.run from
    Python) without an `if __name__ == "__main__":` guard, every worker would train the matrix
    again, and a script read from stdin cannot be found at all. The worker runs elubench's
    code only, which it imports by name."""
    main = sys.modules["__main__"]
    hidden = {name: getattr(main, name) for name in ("__file__", "__spec__") if hasattr(main, name)}
    for name in hidden:
        delattr(main, name)
    main.__spec__ = None  # read by spawn's preparation; absent would fail on some Pythons
    try:
        yield
    finally:
        if "__spec__" not in hidden:
            del main.__spec__
        for name, value in hidden.items():
            setattr(main, name, value)


def _local_worker(conn, work: WorkerPayload, gpu: str | None) -> None:
    """A worker process: train the runs the driver sends until it sends None or goes away.

    Ctrl-C reaches the whole process group; the worker ignores it and stops when the driver
    raises the stop flag, so a run is never cut between its checkpoint and its record. If the
    driver dies outright, the worker checkpoints its run and exits (the next `run` resumes it).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before anything initializes CUDA
    work = dataclasses.replace(work, stop=dataclasses.replace(work.stop, driver=os.getppid()))
    while True:
        try:
            cfg = conn.recv()
        except (EOFError, OSError):
            return
        if cfg is None:
            return
        outcome = attempt(work, cfg)
        try:
            conn.send(outcome)
        except (BrokenPipeError, OSError):
            return  # the driver is gone


def _receive(proc, conn) -> tuple[str, object] | None:
    """A worker's outcome if it sent one, ("lost", why) if it died first, None while busy."""
    alive = proc.is_alive()  # looked at first: what a dead worker sent is already in the pipe
    try:
        if conn.poll():
            return conn.recv()
    except (EOFError, OSError):
        pass
    else:
        if alive:
            return None
    proc.join()
    code = proc.exitcode
    how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return "lost", f"its worker process died ({how})"


class LocalExecutor(ParallelExecutor):
    """`workers` spawned processes on this machine, each pinned to one GPU when there are GPUs
    (worker k gets GPU k mod n); on a CPU each run uses its fixed thread count (train.threads)."""

    name = "local"
    on_this_machine = True

    def __init__(self, workers: int = 2, gpus: list[str] | None = None):
        if workers < 1:
            raise ExecutorError(f"needs at least one worker, not {workers}", where="--workers")
        self.workers = workers
        self.gpus = gpus

    def runs_at_once(self, todo: int) -> int:
        return max(1, min(self.workers, todo))

    def _gpus(self, device: str) -> list[str]:
        """GPUs to pin workers to: only when the device is left to CUDA as a whole."""
        if device not in ("auto", "cuda"):
            return []
        return self.gpus if self.gpus is not None else visible_gpus()

    def _outcomes(self, results, work, todo, reporter, stopping):
        context = multiprocessing.get_context("spawn")
        placement = assign_gpus(min(self.workers, len(todo)), self._gpus(work.settings.device))
        workers: dict[int, tuple] = {}

        def start(slot: int) -> None:
            here, there = context.Pipe()
            proc = context.Process(
                target=_local_worker,
                args=(there, work, placement[slot]),
                name=f"elubench-worker-{slot}",
                daemon=True,
            )
            with _main_left_alone():
                proc.start()
            there.close()
            workers[slot] = (proc, here)

        running: dict[int, RunConfig] = {}
        pending = deque(todo)
        try:
            for slot in range(len(placement)):
                start(slot)
            while running or pending:
                if stopping():
                    pending.clear()  # the runs in progress checkpoint; no new ones start
                for slot in range(len(placement)):
                    if slot not in running and pending:
                        running[slot] = pending.popleft()
                        workers[slot][1].send(running[slot])
                        reporter.run_start(running[slot], len(todo) - len(pending) - 1, len(todo))
                ends = [end for proc, conn in workers.values() for end in (proc.sentinel, conn)]
                multiprocessing.connection.wait(ends, timeout=0.5)
                for slot, cfg in list(running.items()):
                    outcome = _receive(*workers[slot])
                    if outcome is None:
                        continue
                    del running[slot]
                    if outcome[0] == "lost":
                        start(slot)  # a fresh worker takes the dead one's place
                    yield (cfg, *outcome)
        except BaseException:
            for proc, _ in workers.values():
                proc.terminate()  # a hard stop: their claims die with them and go stale
            raise
        finally:
            _close_workers(workers.values())


def _close_workers(workers) -> None:
    """Tell idle workers to finish, then wait for them (terminating any that hang)."""
    for _, conn in workers:
        try:
            conn.send(None)
        except OSError:
            pass
    for proc, conn in workers:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        conn.close()
