"""What benchmarks/gpu.py needs before its steps: the wheels carried to a machine without a
network, the checks that refuse at once (no CUDA, no torch, wheels for another Python), and
the virtualenv the steps run in. Standard library only: it runs before anything is installed.

The GPU machine has no network. So, where a package index is reachable:

    bash benchmarks/gpu.sh --fetch-wheels .gpu-wheels [--python 3.11] [--digits]

downloads the wheels of what the steps import (typer, rich, pydantic, pyyaml, numpy and their
dependencies; pip and setuptools to install and build; no torch or torchvision: hundreds of
MB, and they must match the machine's CUDA driver, so the machine's own are used). On the GPU
machine `bash benchmarks/gpu.sh` then makes .gpu-venv with --system-site-packages (the
machine's torch stays visible) and installs from the folder with --no-index.

scikit-learn (the quick start's digits) and scipy are left out unless --digits: with numpy
they come to about 66 MiB, over the 64 MiB a device run carries; without them the steps train
the quick start's synthetic twin (the same net, shapes and set sizes, so the same cost).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "gpu-wheels.json"
CARRY_LIMIT = 64 * 2**20  # what the device tool's `carry` takes, in all
NEEDED = ("typer", "rich", "pydantic", "pyyaml", "numpy")  # what `run` and `bench` import
DIGITS = ("scikit-learn",)  # the quick start's data; pulls in scipy
IMPORT_NAMES = {"pyyaml": "yaml", "scikit-learn": "sklearn"}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")  # pip widens 2_28 to older glibc


class Refusal(Exception):
    """Nothing can be measured here: the one line gpu.sh prints before exiting 2."""


def requirements(names) -> list[str]:
    """pyproject's requirement for each name (one home for the versions)."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M)
    assert block, "pyproject.toml has no dependencies list"
    found = {
        re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower(): r
        for r in re.findall(r'"([^"]+)"', block[1])
    }
    return [found[name] for name in names]


def fetch_wheels(folder: Path, python: str, digits: bool) -> dict:
    """Download the wheels for linux x86_64 and CPython `python` ("3.11") into `folder`, with
    a manifest the GPU machine checks its Python against. Returns the manifest."""
    tag = "cp" + python.replace(".", "")
    folder.mkdir(parents=True, exist_ok=True)
    wanted = requirements(NEEDED + (DIGITS if digits else ())) + ["pip", "setuptools>=64"]
    (folder / "requirements.txt").write_text("\n".join(wanted[:-2]) + "\n")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--only-binary=:all:",
        "--dest",
        str(folder),
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--abi",
        tag,
        "--abi",
        "abi3",
        "--abi",
        "none",
        *(f"--platform={p}" for p in PLATFORMS),
        *wanted,
    ]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise Refusal(f"pip download failed (exit {proc.returncode}): {tail}")
    files = sorted(folder.glob("*.whl"))
    total = sum(p.stat().st_size for p in files)
    manifest = {
        "python": python,
        "tag": tag,
        "platforms": list(PLATFORMS),
        "requirements": wanted[:-2],
        "digits": digits,
        "files": {p.name: p.stat().st_size for p in files},
        "total_bytes": total,
        "fits_carry": total <= CARRY_LIMIT,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def probe_python(python: str, modules=()) -> dict:
    """What `python` can import: torch with its CUDA, and which of `modules` are missing."""
    code = (
        "import importlib.util, json, sys\n"
        "out = {'version': '%d.%d' % sys.version_info[:2], 'missing': [m for m in sys.argv[1:]"
        " if importlib.util.find_spec(m) is None]}\n"
        "try:\n import torch\n out.update(torch=torch.__version__, cuda=torch.version.cuda,"
        " available=torch.cuda.is_available())\n"
        "except Exception as exc:\n out['torch_error'] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [python, "-c", code, *modules], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise Refusal(f"{python} does not run: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def nvidia_gpus() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.splitlines() if line.startswith("GPU ")]


def read_manifest(wheels: Path) -> dict | None:
    try:
        return json.loads((wheels / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def modules_needed() -> list[str]:
    return [IMPORT_NAMES.get(name, name) for name in NEEDED]


def preflight(python: str, venv: Path, wheels: Path) -> dict:
    """Refuse (Refusal: one line) where nothing can be measured; else say which Python the
    steps run with and whether the install step has work to do."""
    gpus = nvidia_gpus()
    ready = venv / "bin" / "python"
    chosen = str(ready) if ready.exists() else python
    probe = probe_python(chosen, modules_needed())
    if "torch" not in probe:
        carried = any(p.name.startswith("torch-") for p in wheels.glob("*.whl"))
        if not gpus:
            raise Refusal(
                "no CUDA GPU here: nvidia-smi lists none and this Python has no torch "
                "(`bash benchmarks/gpu.sh --dry-run` checks the script on the CPU)"
            )
        if not carried:
            raise Refusal(
                f"{chosen} cannot import torch ({probe['torch_error']}) and "
                f"{wheels} carries none: run with PYTHON=<a Python whose torch has CUDA>"
            )
    elif not probe["available"]:
        where = f"nvidia-smi lists {len(gpus)} GPU(s) but " if gpus else ""
        build = f"CUDA {probe['cuda']}" if probe["cuda"] else "a CPU-only build"
        raise Refusal(
            f"no CUDA GPU here: {where}torch {probe['torch']} ({build}) sees none "
            "(`bash benchmarks/gpu.sh --dry-run` checks the script on the CPU)"
        )
    missing = probe["missing"] + ([] if "torch" in probe else ["torch"])  # torch: the wheels'
    if missing:
        check_wheels(wheels, probe["version"], f"{chosen} lacks {', '.join(missing)}")
    # with wheels for this Python, install even when nothing is missing: an installed package
    # may be too old (pydantic 1), and pip leaves those that satisfy pyproject alone
    manifest = read_manifest(wheels)
    install = bool(missing) or manifest is not None and manifest["python"] == probe["version"]
    return {"python": chosen, "install": install, "probe": probe, "nvidia_smi": gpus}


def check_wheels(wheels: Path, version: str, why: str) -> None:
    """Refuse unless `wheels` holds a fetched folder for Python `version` ("3.11")."""
    manifest = read_manifest(wheels)
    if manifest is None:
        raise Refusal(
            f"{why} and there is no wheel folder at {wheels}: where PyPI is reachable run "
            f"`bash benchmarks/gpu.sh --fetch-wheels {wheels.name}`, and carry that folder"
        )
    if manifest["python"] != version:
        raise Refusal(
            f"the wheels in {wheels} are for Python {manifest['python']} ({manifest['tag']}) but "
            f"this Python is {version}: fetch them again with "
            f"`bash benchmarks/gpu.sh --fetch-wheels {wheels.name} --python {version}`"
        )


def install(python: str, venv: Path, wheels: Path, run) -> dict:
    """The steps' virtualenv: --system-site-packages (the machine's torch), then the carried
    wheels with --no-index, then elubench itself (editable, its dependencies not resolved:
    the wheels hold only what the steps import). `run(command)` runs one command within the
    step's budget and raises on failure. Returns the venv's Python and what was done."""
    created = False
    if not (venv / "bin" / "python").exists():
        created = True
        try:
            run([python, "-m", "venv", "--system-site-packages", str(venv)])
        except RuntimeError:
            # Debian's python3 without python3-venv has no ensurepip: a venv without pip,
            # then pip from its carried wheel (a wheel is a zip Python can run from)
            shutil.rmtree(venv, ignore_errors=True)
            run([python, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)])
            pip_wheel = next(iter(sorted(wheels.glob("pip-*.whl"))), None)
            if pip_wheel is None:
                raise RuntimeError(f"no ensurepip here and no pip wheel in {wheels}") from None
            vpython = str(venv / "bin" / "python")
            run(
                [
                    vpython,
                    f"{pip_wheel}/pip",
                    "install",
                    "--no-index",
                    "--find-links",
                    str(wheels),
                    "pip",
                ]
            )
    vpython = str(venv / "bin" / "python")
    pip = [
        vpython,
        "-m",
        "pip",
        "--isolated",  # no pip.conf, no PIP_* variables: only the carried wheels
        "install",
        "--no-index",
        "--find-links",
        str(wheels),
        "--disable-pip-version-check",
        "--quiet",
    ]
    run([*pip, "-r", str(wheels / "requirements.txt")])
    run([*pip, "--no-deps", "-e", str(ROOT)])
    return {"python": vpython, "venv": str(venv), "created": created}


def step_environment(work: Path, dry_run: bool, step: str) -> dict[str, str]:
    """The environment every step runs in: this working tree's elubench first on the path,
    fresh caches (so compile seconds are a first compile's and nothing of another session's
    is reused), matplotlib without a display."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["XDG_CACHE_HOME"] = str(work / "cache")
    env["ELUBENCH_DATA_DIR"] = str(work / "data")
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "160"
    if dry_run and "compile" in step:
        # the dry run checks the script, not inductor (tested in tests/training): a first
        # compile of the net on 2 CPU cores takes ~40 s, so --compile runs eagerly here
        env["TORCH_COMPILE_DISABLE"] = "1"
    return env
