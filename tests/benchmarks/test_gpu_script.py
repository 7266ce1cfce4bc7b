"""benchmarks/gpu.sh, the script a lent GPU runs first: its budget, its refusals, its report,
and the whole of it end to end on the CPU (--dry-run), so a GPU's minutes are never spent on
a mistake of the script. No network: the wheel folder is faked where one is needed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu  # noqa: E402  (benchmarks/ is not a package: the scripts import each other by name)
import gpu_env  # noqa: E402
from gpu_checks import VARIANTS  # noqa: E402

from elubench.activations.registry import DEFINITIONS  # noqa: E402


def _script(*args, env=None, timeout=600, shell=False):
    """benchmarks/gpu.py with this interpreter, or (shell) its entry gpu.sh as a user runs it."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable, **(env or {})}
    environ.pop("OUT", None)
    entry = (
        ["bash", str(BENCHMARKS / "gpu.sh")]
        if shell
        else [sys.executable, str(BENCHMARKS / "gpu.py")]
    )
    return subprocess.run(
        [*entry, *map(str, args)],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=timeout,
    )


def test_the_budget_fits_eight_minutes_and_the_header_lists_it():
    budgets = {name: seconds for name, seconds, _ in gpu.STEPS}
    assert sum(budgets.values()) <= 480 and gpu.DEADLINE == 480
    header = (BENCHMARKS / "gpu.sh").read_text()
    listed = dict(re.findall(r"^#   ([a-z0-9-]+) +(\d+)$", header, re.M))
    total = listed.pop("total")
    assert {name: int(s) for name, s in listed.items()} == budgets
    assert int(total) == sum(budgets.values())
    assert list(listed) == list(budgets)  # in the order they run


def test_every_step_but_install_has_its_process_function():
    assert set(gpu.step_functions()) == {name for name, _, _ in gpu.STEPS} - {"install"}


def test_the_wheels_are_pyprojects_requirements_without_torch():
    wanted = gpu_env.requirements(gpu_env.NEEDED + gpu_env.DIGITS)
    assert "pydantic>=2.5,<3" in wanted and "scikit-learn>=1.3" in wanted
    assert not [r for r in wanted if r.startswith("torch")]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU")
def test_refuses_in_one_line_without_cuda(tmp_path):
    proc = _script("--out", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("gpu.sh: no CUDA GPU here") and proc.stderr.count("\n") == 1
    assert "--dry-run" in proc.stderr and not (tmp_path / "out").exists()


def test_refuses_without_a_report_folder_or_with_an_unknown_step(tmp_path):
    proc = _script("--dry-run")
    assert (
        proc.returncode == 2
        and proc.stderr == "gpu.sh: give the report's folder: --out DIR (or set $OUT)\n"
    )
    proc = _script("--dry-run", "--out", tmp_path, "--only", "pairing,bogus")
    assert proc.returncode == 2 and proc.stderr.startswith("gpu.sh: no step bogus: the steps are")


def _fake_preflight(monkeypatch, tmp_path, manifest: dict | None, missing=("typer",)):
    """A machine with a GPU and torch, lacking `missing`, and a wheel folder as given."""
    probe = {
        "version": "3.11",
        "missing": list(missing),
        "torch": "2.9",
        "cuda": "12.8",
        "available": True,
    }
    monkeypatch.setattr(gpu_env, "probe_python", lambda python, modules=(): probe)
    monkeypatch.setattr(gpu_env, "nvidia_gpus", lambda: ["GPU 0: NVIDIA H200"])
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    if manifest is not None:
        (wheels / gpu_env.MANIFEST).write_text(json.dumps(manifest))
    return wheels


def test_refuses_wheels_for_another_python_and_a_missing_wheel_folder(monkeypatch, tmp_path):
    wheels = _fake_preflight(monkeypatch, tmp_path, {"python": "3.12", "tag": "cp312"})
    with pytest.raises(
        gpu_env.Refusal,
        match=r"for Python 3\.12 \(cp312\) but this Python is 3\.11.*--python 3\.11",
    ):
        gpu_env.preflight("python3", tmp_path / "venv", wheels)
    (wheels / gpu_env.MANIFEST).unlink()
    with pytest.raises(
        gpu_env.Refusal, match="lacks typer and there is no wheel folder.*--fetch-wheels"
    ):
        gpu_env.preflight("python3", tmp_path / "venv", wheels)


def test_a_matching_wheel_folder_plans_the_install(monkeypatch, tmp_path):
    wheels = _fake_preflight(monkeypatch, tmp_path, {"python": "3.11", "tag": "cp311"})
    plan = gpu_env.preflight("python3", tmp_path / "venv", wheels)
    assert plan["install"] and plan["python"] == "python3"


@pytest.mark.parametrize("fetched, install", [(True, True), (False, False)])
def test_with_nothing_missing_the_wheels_still_install_where_they_fit(
    monkeypatch, tmp_path, fetched, install
):
    """An installed package may be too old for pyproject (pydantic 1): pip settles it."""
    manifest = {"python": "3.11", "tag": "cp311"} if fetched else None
    wheels = _fake_preflight(monkeypatch, tmp_path, manifest, missing=())
    assert gpu_env.preflight("python3", tmp_path / "venv", wheels)["install"] is install


def test_a_step_over_its_budget_is_killed_recorded_and_the_rest_go_on(tmp_path):
    out = tmp_path / "out"
    proc = _script(
        "--dry-run",
        "--out",
        out,
        "--work",
        tmp_path / "work",
        "--only",
        "activations,install",
        "--budget",
        "activations=0.5",
    )
    assert proc.returncode == 1, proc.stderr
    steps = {s["name"]: s for s in json.loads((out / "gpu.json").read_text())["steps"]}
    killed = steps["activations"]
    assert (
        killed["status"] == "timeout" and killed["over_budget"] and killed["timeout_seconds"] == 0.5
    )
    assert killed["error"] == "killed at its 0.5 s timeout"
    assert steps["install"]["status"] == "ok" and steps["pairing"]["status"] == "skipped"
    assert "| activations | timeout |" in (out / "gpu.md").read_text()


@pytest.mark.slow
def test_bench_without_torchvision_measures_the_engine_alone(tmp_path, monkeypatch):
    """Where the GPU machine's torch comes without torchvision (bench's reference loop)."""
    import gpu_measure
    from gpu_common import Step

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    step = Step("bench-fp32", "cpu", tmp_path, tmp_path / "result.json", dry_run=True)
    result = gpu_measure.engine_only(step, "fp32", False)
    assert (
        result["reference_images_per_second"] is None and result["elubench_images_per_second"] > 0
    )
    assert set(result["activation_time_ratio"]) == {"relu", "elu"} and result["peak_fraction"] > 0


@pytest.mark.slow
def test_the_dry_run_runs_every_step_and_reports_each(tmp_path):
    """Every step on the CPU at toy sizes, as CI runs it: each ok, the JSON's keys, one
    Markdown row per step and the figures' tables."""
    out = tmp_path / "out"
    proc = _script("--dry-run", "--out", out, "--work", tmp_path / "work", shell=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "gpu.json").read_text())
    assert {
        "schema",
        "dry_run",
        "device",
        "deadline_seconds",
        "budget_seconds",
        "environment",
        "steps",
        "summary",
        "wall_seconds",
        "started_at",
    } <= set(report)
    assert report["dry_run"] is True and report["device"] == "cpu"
    assert report["wall_seconds"] < report["deadline_seconds"]
    names = [name for name, _, _ in gpu.STEPS]
    steps = {s["name"]: s for s in report["steps"]}
    assert [s["name"] for s in report["steps"]] == names
    assert report["summary"] == {"ok": len(names), "failed": 0, "timeout": 0, "skipped": 0}
    for name, step in steps.items():
        assert step["status"] == "ok" and step["error"] is None, (name, step)
        assert step["result"]["headline"] and step["seconds"] > 0 or name == "install"
        assert {"budget_seconds", "timeout_seconds", "over_budget", "log"} <= set(step)
        assert all(check["ok"] for check in step["result"].get("checks", {}).values()), name
    env = report["environment"]
    assert {"torch", "python", "elubench", "elubench_file", "cuda_available"} <= set(env)
    rows = steps["activations"]["result"]["activations"]
    assert len(rows) == len(DEFINITIONS) + len(VARIANTS)
    assert rows["rrelu"]["stream"] == {
        "reproducible": True,
        "global_stream_untouched": True,
        "ok": True,
    }
    assert steps["resume"]["result"]["resumed_at"][0] > 0
    for name in ("bench-fp32", "bench-bf16", "bench-fp32-compile", "bench-bf16-compile"):
        figures = steps[name]["result"]["figures"]
        assert figures["elubench_images_per_second"] > 0 and figures["peak_fraction"] > 0, name
    assert steps["bench-fp32"]["result"]["figures"]["activation_time_ratio"]["elu"] > 0
    assert steps["bench-fp32-compile"]["result"]["figures"]["compile_seconds"]["relu"] > 0
    assert [r["parallel"] for r in steps["parallel"]["result"]["layouts"]] == [2]
    assert all(c["measured_peak_bytes"] > 0 for c in steps["memory"]["result"]["cases"])
    assert steps["deterministic"]["result"]["step_time_ratio"] > 0
    text = (out / "gpu.md").read_text()
    for name in names:
        assert re.search(rf"^\| {re.escape(name)} \| ok \| [\d.,]+ \| \d+ \| .+ \|$", text, re.M), (
            name
        )
    for heading in (
        "| run | B img/s |",
        "| --parallel | runs |",
        "| run | measured peak |",
        "| setting | img/s, second half |",
    ):
        assert heading in text
    assert (out / "logs" / "resume.log").exists()
