"""benchmarks/gpu.py's report: everything as gpu.json, and gpu.md with one row per step and
the figures docs/performance.md's GPU section takes. Standard library only."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _cell(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _mib(n) -> str:
    return "–" if n is None else f"{n / 2**20:,.0f} MiB"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _steps(report) -> dict:
    return {s["name"]: s for s in report["steps"]}


def markdown(report: dict) -> str:
    env = report["environment"]
    steps = _steps(report)
    summary = report.get("summary", {})
    title = (
        "elubench on a GPU" if not report["dry_run"] else "elubench GPU script, dry run on the CPU"
    )
    lines = [
        f"# {title}: benchmarks/gpu.sh",
        "",
        f"{report.get('started_at', '?')}; {env.get('gpu') or 'no GPU'}"
        f" (driver {env.get('driver') or '–'}), torch {env.get('torch', '–')}"
        f" (CUDA {env.get('torch_cuda') or '–'}, cuDNN {env.get('cudnn') or '–'}),"
        f" Python {env.get('python', '–')}, {env.get('cpu_cores', '?')} CPU cores,"
        f" torchvision {env.get('torchvision') or 'missing'}.",
        "",
        f"{report.get('wall_seconds', 0):.0f} s of the {report['deadline_seconds']:.0f} s deadline"
        f" ({report.get('cpu_seconds', 0):.0f} CPU seconds)"
        f" (budgets sum to {report['budget_seconds']:.0f} s): {summary.get('ok', 0)} ok,"
        f" {summary.get('failed', 0)} failed, {summary.get('timeout', 0)} over budget,"
        f" {summary.get('skipped', 0)} skipped.",
        "",
    ]
    rows = [
        [
            s["name"],
            s["status"],
            _cell(s["seconds"]),
            _cell(s["budget_seconds"], 0),
            _cell(s["error"] if s["status"] != "ok" else s["result"].get("headline", "")),
        ]
        for s in report["steps"]
    ]
    lines += _table(["step", "status", "seconds", "budget (s)", "result"], rows)
    lines += [
        "",
        "## Figures",
        "",
        "`elubench bench specs/elu-cifar100-11.yaml` (synthetic images"
        " of its shape), full width on a GPU; B is elubench's engine, A a plain PyTorch loop:",
        "",
    ]
    bench_rows = []
    for name in ("bench-fp32", "bench-bf16", "bench-fp32-compile", "bench-bf16-compile"):
        f = steps.get(name, {}).get("result", {}).get("figures")
        if not f:
            bench_rows.append(
                [name, "no figure (" + steps.get(name, {}).get("status", "not run") + ")"]
                + [""] * 5
            )
            continue
        ratio = (f.get("activation_time_ratio") or {}).get("elu")
        compiled = f.get("compile_seconds") or {}
        bench_rows.append(
            [
                name,
                _cell(f["elubench_images_per_second"], 0),
                _cell(f.get("reference_images_per_second"), 0),
                _cell(f.get("speedup"), 2),
                _cell(f["peak_fraction"], 2),
                _cell(ratio, 3),
                _cell(max(compiled.values()) if compiled else None),
            ]
        )
    lines += _table(
        ["run", "B img/s", "A img/s", "B/A", "of peak", "ELU/ReLU step", "compile (s)"], bench_rows
    )
    layouts = steps.get("parallel", {}).get("result", {}).get("layouts", [])
    lines += [
        "",
        "Quick-start matrix: whole command (start-up included), and from the first run's"
        " start to the last one's end:",
        "",
    ]
    lines += _table(
        ["--parallel", "runs", "wall (s)", "runs/min", "runs/min once started"],
        [
            [
                str(r["parallel"]),
                str(r["runs"]),
                _cell(r["wall_seconds"]),
                _cell(r["runs_per_minute"]),
                _cell(r["runs_per_minute_in_span"]),
            ]
            for r in layouts
        ]
        or [["no figure", "", "", "", ""]],
    )
    memory = steps.get("memory", {}).get("result", {})
    lines += [
        "",
        f"Peak memory ({memory.get('meter', '–')}) against elubench.net.memory's estimate:",
        "",
    ]
    cases = [c for c in memory.get("cases", []) if "error" not in c]
    lines += _table(
        ["run", "measured peak", "estimate", "estimate / measured", "probe pass", "probe estimate"],
        [
            [
                f"{c['spec']} {c['config']} {c['precision']}",
                _mib(c["measured_peak_bytes"]),
                _mib(c["estimate_bytes"]),
                _cell(c["estimate_over_measured"], 2),
                _mib(c["probe_measured_bytes"]),
                _mib(c["probe_estimate_bytes"]),
            ]
            for c in cases
        ]
        or [["no figure", "", "", "", "", ""]],
    )
    det = steps.get("deterministic", {}).get("result", {})
    lines += ["", "`--deterministic` (11-layer net, training images/s):", ""]
    figures = det.get("figures", {})
    lines += _table(
        ["setting", "img/s, second half", "img/s, whole run", "command (s)"],
        [
            [
                label,
                _cell(f.get("second_half_images_per_second"), 0),
                _cell(f["images_per_second"], 0),
                _cell(f["command_seconds"]),
            ]
            for label, f in figures.items()
        ]
        or [["no figure", "", "", ""]],
    )
    if det.get("step_time_ratio"):
        lines += [
            "",
            f"Step time with `--deterministic`: {det['step_time_ratio']:.2f} × the default's.",
        ]
    return "\n".join(lines) + "\n"


def write_reports(report: dict, out: Path) -> None:
    """gpu.json and gpu.md in `out`, each replaced whole (a reader never sees half a file).
    A figure the Markdown cannot lay out never costs the session its JSON or its next step."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        md = markdown(report)
    except Exception as exc:
        md = f"# benchmarks/gpu.sh\n\ngpu.md could not be laid out ({type(exc).__name__}: {exc}); gpu.json has everything.\n"
    for name, text in (
        ("gpu.json", json.dumps(report, indent=2, default=str) + "\n"),
        ("gpu.md", md),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
