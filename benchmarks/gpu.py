"""benchmarks/gpu.sh's logic: every GPU path of elubench checked and measured in one sitting.

    python benchmarks/gpu.py [--out DIR] [--dry-run] [--only A,B] [--skip A,B]
                             [--budget STEP=SECONDS ...] [--deadline SECONDS]
    python benchmarks/gpu.py --fetch-wheels DIR [--python 3.11] [--digits]

The steps and their budgets are STEPS below (gpu.sh's header lists the same table; a test
keeps the two equal). Each step runs in its own process with its budget as a timeout: a step
over it is killed (with its whole process group) and recorded as `timeout`, a step that fails
is recorded with its error, and the next one starts; no step starts past the overall
deadline. After every step the report is written again, to DIR/gpu.json and DIR/gpu.md (DIR:
--out, else $OUT), so a session cut short still leaves what was measured.

This file and gpu_env.py, gpu_report.py are standard library only: they run on the GPU machine
before anything is installed (gpu_env.py makes the virtualenv). `--step NAME` is the entry of
one step's process (gpu_checks.py, gpu_measure.py, gpu_memory.py, sharing gpu_common.py),
which imports torch and elubench.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gpu_env import (
    ROOT,
    Refusal,
    check_wheels,
    fetch_wheels,
    install,
    preflight,
    step_environment,
)
from gpu_report import write_reports

HERE = Path(__file__).resolve().parent
# (name, budget: estimated seconds on one H200 with 16 cores, start-up included, and the
# step's timeout; what it does). Estimates, not measurements: no GPU has run this yet.
STEPS = (
    ("environment", 10, "GPU, driver, torch, CUDA, cuDNN and Python as the steps see them"),
    ("install", 40, "a venv over the machine's torch, the carried wheels, elubench"),
    ("pairing", 25, "quick start on the GPU: one init hash per seed, the CPU's; kernels"),
    ("activations", 10, "every built-in activation forward + backward, GPU against CPU"),
    ("precision", 25, "fp32 and bf16 ELU runs (quick start, 11-layer net): finite losses"),
    ("resume", 30, "SIGKILL mid-run, the same command again: the record completes"),
    ("bench-fp32", 30, "elubench bench, 11-layer net, full width, fp32, ELU against ReLU"),
    ("bench-bf16", 25, "the same in bf16 autocast"),
    ("bench-fp32-compile", 75, "the same compiled (ReLU): a first compile's seconds"),
    ("bench-bf16-compile", 70, "bf16 compiled"),
    ("parallel", 75, "quick-start matrix (16 runs) at --parallel 1, 2, 4, 8: runs/minute"),
    ("memory", 25, "peak GPU memory of short runs and of the probe against the estimate"),
    ("deterministic", 30, "11-layer net, --deterministic against the default"),
)
DEADLINE = 480  # seconds for all of it, install included: a lent GPU comes for ~15 minutes
MIN_START = 5  # a step is not started with less time than this left before the deadline
DRY_RUN_SLACK = 3  # the dry run's timeouts are the budgets x this: 2 busy CPU cores are no GPU


def _parse(argv):
    parser = argparse.ArgumentParser(prog="benchmarks/gpu.sh", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="the report's folder (default: $OUT)")
    parser.add_argument("--dry-run", action="store_true", help="every step on the CPU, toy sizes")
    parser.add_argument("--only", help="comma-separated steps to run (the others are skipped)")
    parser.add_argument("--skip", help="comma-separated steps to skip")
    parser.add_argument("--budget", action="append", default=[], metavar="STEP=SECONDS")
    parser.add_argument("--deadline", type=float, default=DEADLINE, help="seconds for all steps")
    parser.add_argument(
        "--jobs", type=int, default=2, help="--dry-run: steps at once (on a GPU always 1)"
    )
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--venv", type=Path, default=ROOT / ".gpu-venv")
    parser.add_argument("--wheels", type=Path, help="the carried wheels (default: .gpu-wheels)")
    parser.add_argument("--fetch-wheels", type=Path, metavar="DIR")
    parser.add_argument("--python", default="3.11", help="--fetch-wheels: the GPU's Python")
    parser.add_argument("--digits", action="store_true", help="--fetch-wheels: scikit-learn too")
    # one step's process (internal)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def step_functions() -> dict:
    """Each step's function in its own process (install runs here, in the orchestrator)."""
    import gpu_checks
    import gpu_measure
    import gpu_memory

    return {
        "environment": gpu_checks.environment,
        "pairing": gpu_checks.pairing,
        "activations": gpu_checks.activations,
        "precision": gpu_checks.precision,
        "resume": gpu_checks.resume,
        "bench-fp32": lambda s: gpu_measure.bench(s, "fp32", False),
        "bench-bf16": lambda s: gpu_measure.bench(s, "bf16", False),
        "bench-fp32-compile": lambda s: gpu_measure.bench(s, "fp32", True),
        "bench-bf16-compile": lambda s: gpu_measure.bench(s, "bf16", True),
        "parallel": gpu_measure.parallel,
        "memory": gpu_memory.memory,
        "deterministic": gpu_measure.deterministic,
    }


def _step_process(args) -> int:
    """One step: run its function, record its error or failed checks, exit 0 or 1."""
    import traceback

    from gpu_common import Step, StepFailed

    step = Step(args.step, args.device, args.work, args.result, args.dry_run)
    try:
        step_functions()[args.step](step)
    except StepFailed as exc:
        step.set(error=str(exc))
    except Exception as exc:  # whatever broke, the report names it and the next step runs
        traceback.print_exc()
        step.set(error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
    if "error" not in step.result and step.failed_checks():
        step.set(error="failed: " + "; ".join(step.failed_checks()))
    if "error" in step.result:
        print(f"step {args.step}: {step.result['error']}", file=sys.stderr)
        return 1
    return 0


def _spawn(command, env, log: Path, timeout: float) -> tuple[int | None, float, float]:
    """Run `command` in its own process group, output appended to `log`; past `timeout` the
    whole group is killed (an elubench run's workers too). Returns the exit code (None when
    killed), the wall seconds and the CPU seconds of it and the children it waited for (what
    the step costs a machine: the dry run's time on 2 cores is mostly this)."""
    start = time.monotonic()
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(map(str, command))}\n")
        handle.flush()
        proc = subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        code: int | None = None
        while True:  # os.wait4, not Popen.wait: it also gives the process's resource usage
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                code = proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - start >= timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.05)
    return code, time.monotonic() - start, usage.ru_utime + usage.ru_stime


def _log_tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class Session:
    """The steps in order within the deadline, and the report after each."""

    def __init__(self, args, out: Path, work: Path, plan: dict, start: float):
        self.args, self.out, self.work, self.plan = args, out, work, plan
        self.wheels = (args.wheels or ROOT / ".gpu-wheels").absolute()
        self.device = "cpu" if args.dry_run else "cuda"
        # the clock started before the preflight: the deadline is for all of it
        self.start, self.started_at = start, time.time() - (time.monotonic() - start)
        self.python = plan["python"]  # the install step may replace it with its venv's
        self.jobs = args.jobs if args.dry_run else 1
        self.lock = threading.Lock()
        self.budgets: dict[str, float] = {name: budget for name, budget, _ in STEPS}
        slack = DRY_RUN_SLACK if args.dry_run else 1
        self.timeouts = {name: budget * slack for name, budget in self.budgets.items()}
        for item in args.budget:
            name, _, seconds = item.partition("=")
            if name not in self.budgets or not seconds.replace(".", "", 1).isdigit():
                raise Refusal(
                    f"--budget {item}: give STEP=SECONDS with a step of {', '.join(self.budgets)}"
                )
            self.budgets[name] = self.timeouts[name] = float(seconds)
        self.report: dict = {
            "schema": "elubench-gpu-check/1",
            "dry_run": args.dry_run,
            "device": self.device,
            "command": ["benchmarks/gpu.sh", *sys.argv[1:]],
            "deadline_seconds": args.deadline,
            "jobs": self.jobs,
            "budget_seconds": sum(self.budgets.values()),
            "environment": {"nvidia_smi": plan.get("nvidia_smi"), "preflight": plan.get("probe")},
            "steps": [],
        }
        (out / "logs").mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.args.deadline - (time.monotonic() - self.start)

    def run_all(self, selected: set[str]) -> None:
        """Every step in STEPS' order (install first: it may change the Python of the rest).
        On the GPU one at a time, as measurements must be; the dry run may run `jobs` at once
        (its figures mean nothing, and start-up dominates it on 2 cores)."""
        entries = []
        for name, _, what in STEPS:
            entry = {
                "name": name,
                "what": what,
                "budget_seconds": self.budgets[name],
                "status": "pending",
                "seconds": 0.0,
                "error": None,
                "result": {},
            }
            if name not in selected:
                entry.update(status="skipped", error="not selected (--only / --skip)")
            entries.append(entry)
        self.report["steps"] = entries
        first = [e for e in entries if e["name"] in ("environment", "install")]
        for entry in first:
            self.run(entry)
        rest = [e for e in entries if e not in first]
        if self.jobs == 1:
            for entry in rest:
                self.run(entry)
            return
        with ThreadPoolExecutor(self.jobs) as pool:
            list(pool.map(self.run, rest))

    def run(self, entry: dict) -> None:
        name = entry["name"]
        if entry["status"] == "skipped":
            return self.write()
        timeout = min(self.timeouts[name], self.left())
        if self.left() < MIN_START:
            entry["status"] = "skipped"
            entry["error"] = (
                f"not started: {max(self.left(), 0):.0f} s left of the {self.args.deadline:.0f} s deadline"
            )
        else:
            entry["timeout_seconds"] = timeout
            log = self.out / "logs" / f"{name}.log"
            entry["log"] = f"logs/{name}.log"
            (self._install if name == "install" else self._step)(name, entry, timeout, log)
            # against the timeout: the dry run's budgets are the GPU's, times DRY_RUN_SLACK
            entry["over_budget"] = entry["seconds"] > timeout or entry["status"] == "timeout"
        print(
            f"[{time.monotonic() - self.start:5.0f} s] {name}: {entry['status']}"
            + (f" ({entry['seconds']:.1f} s)" if entry["seconds"] else "")
            + (f": {entry['error']}" if entry["error"] else ""),
            flush=True,
        )
        self.write()

    def _step(self, name, entry, timeout, log) -> None:
        result = self.work / "results" / f"{name}.json"
        result.parent.mkdir(parents=True, exist_ok=True)
        command = [self.python, str(HERE / "gpu.py"), "--step", name, "--device", self.device]
        command += ["--work", str(self.work), "--result", str(result)]
        if self.args.dry_run:
            command.append("--dry-run")
        environment = step_environment(self.work, self.args.dry_run, name)
        code, entry["seconds"], entry["cpu_seconds"] = _spawn(command, environment, log, timeout)
        try:
            entry["result"] = json.loads(result.read_text())
        except (OSError, ValueError):
            entry["result"] = {}
        if code is None:
            entry["status"] = "timeout"
            entry["error"] = f"killed at its {timeout:g} s timeout"
        elif code == 0:
            entry["status"] = "ok"
        else:
            entry["status"] = "failed"
            lines = [line for line in _log_tail(log).splitlines() if line.strip()]
            entry["error"] = entry["result"].get("error") or (
                lines[-1] if lines else f"exit {code}"
            )
        if entry["status"] != "ok":
            entry["log_tail"] = _log_tail(log)
        if name == "environment":
            self.report["environment"].update(entry["result"].get("environment", {}))

    def _install(self, name, entry, timeout, log) -> None:
        start = time.monotonic()

        def run(command):
            code, _, _ = _spawn(command, None, log, timeout - (time.monotonic() - start))
            if code != 0:
                lines = [line for line in _log_tail(log, 600).splitlines() if line.strip()]
                why = "timed out" if code is None else f"exit {code}"
                raise RuntimeError(
                    f"{Path(command[0]).name} {' '.join(map(str, command[1:4]))} ... {why}: "
                    + (lines[-1] if lines else "")
                )

        try:
            if self.args.dry_run and not self.plan["install"]:
                entry["result"] = {"headline": f"dry run: the steps use {self.python} as it is"}
            elif not self.plan["install"]:
                entry["result"] = {
                    "headline": f"nothing to install: {self.python} has every dependency"
                }
            else:
                done = install(self.plan["python"], self.args.venv.absolute(), self.wheels, run)
                self.python = done["python"]
                entry["result"] = {
                    **done,
                    "headline": f"{'made' if done['created'] else 'reused'} "
                    f"{done['venv']}, installed from {self.wheels}",
                }
            entry["status"] = "ok"
        except RuntimeError as exc:
            entry["status"] = "timeout" if "timed out" in str(exc) else "failed"
            entry["error"] = str(exc)
            entry["log_tail"] = _log_tail(log)
        entry["seconds"] = time.monotonic() - start

    def write(self) -> None:
        with self.lock:  # steps of a dry run may end together
            statuses = [s["status"] for s in self.report["steps"]]
            self.report.update(
                started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
                wall_seconds=time.monotonic() - self.start,
                cpu_seconds=sum(s.get("cpu_seconds", 0.0) for s in self.report["steps"]),
                summary={s: statuses.count(s) for s in ("ok", "failed", "timeout", "skipped")},
            )
            write_reports(self.report, self.out)


def _selection(args) -> set[str]:
    names = [name for name, _, _ in STEPS]
    chosen = set(args.only.split(",")) if args.only else set(names)
    skipped = set(args.skip.split(",")) if args.skip else set()
    unknown = (chosen | skipped) - set(names)
    if unknown:
        raise Refusal(f"no step {', '.join(sorted(unknown))}: the steps are {', '.join(names)}")
    return chosen - skipped


def main(argv=None) -> int:
    start = time.monotonic()
    args = _parse(argv)
    if args.step:
        return _step_process(args)
    try:
        if args.fetch_wheels:
            manifest = fetch_wheels(args.fetch_wheels, args.python, args.digits)
            mib = manifest["total_bytes"] / 2**20
            print(
                f"{len(manifest['files'])} wheels, {mib:.1f} MiB, for CPython {args.python} on linux "
                f"x86_64 in {args.fetch_wheels}"
                + ("" if manifest["fits_carry"] else ": over the 64 MiB a device run carries")
            )
            return 0
        out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
        if out is None:
            raise Refusal("give the report's folder: --out DIR (or set $OUT)")
        selected = _selection(args)
        wheels = (args.wheels or ROOT / ".gpu-wheels").absolute()
        if not args.dry_run:
            plan = preflight(sys.executable, args.venv.absolute(), wheels)
        else:  # with --wheels, the install itself is checked on the CPU too
            plan = {"python": sys.executable, "install": args.wheels is not None}
            if args.wheels is not None:
                check_wheels(wheels, "{}.{}".format(*sys.version_info[:2]), "--wheels was given")
        work = args.work or Path(tempfile.mkdtemp(prefix="elubench-gpu-"))
        session = Session(args, out, work, plan, start)
    except Refusal as exc:
        print(f"gpu.sh: {exc}", file=sys.stderr)
        return 2
    session.run_all(selected)
    if args.work is None:  # the logs and figures are in the report; the runs' scratch goes
        shutil.rmtree(work, ignore_errors=True)
    summary = session.report["summary"]
    print(
        f"{summary['ok']} ok, {summary['failed']} failed, {summary['timeout']} over budget, "
        f"{summary['skipped']} skipped in {session.report['wall_seconds']:.0f} s: "
        f"{out / 'gpu.json'}, {out / 'gpu.md'}"
    )
    bad = summary["failed"] + summary["timeout"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
