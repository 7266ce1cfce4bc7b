#!/usr/bin/env bash
# Every GPU path of elubench, checked and measured in one sitting of at most 8 minutes, for the
# first (and any) GPU a session is lent. The logic is benchmarks/gpu.py (standard library only,
# so it runs before anything is installed); this is its entry.
#
# 1. Here, where PyPI is reachable (once; the folder is git-ignored, ~24 MiB for CPython 3.11):
#
#        bash benchmarks/gpu.sh --fetch-wheels .gpu-wheels
#
#    (--python 3.12 for another Python on the GPU machine; --digits adds scikit-learn for the
#    quick start's real data, ~45 MiB more: over the device tool's 64 MiB carry with numpy.)
#
# 2. On the GPU machine (no network: it installs from the carried folder into .gpu-venv, over
#    the machine's own torch), from the repository root, with .gpu-wheels carried:
#
#        bash benchmarks/gpu.sh                 # report in $OUT, else give --out DIR
#
#    It writes gpu.json and gpu.md (and logs/) to $OUT or --out after every step. On a machine
#    without CUDA it refuses in one line (exit 2); `--dry-run` runs every step on the CPU at toy
#    sizes (under 2 minutes on 2 cores; CI runs it: tests/benchmarks/test_gpu_script.py).
#    Exit 0: every step ok; 1: a step failed or overran (the report says which); 2: refused.
#    --only STEP,... / --skip STEP,... rerun a part; --budget STEP=SECONDS changes a timeout.
#
# The steps in order, each with its budget: estimated seconds on one H200 with 16 cores,
# start-up included, not yet measured (no GPU has run this). A step over its budget is killed
# and recorded, and the next one starts; none starts past the 480 s deadline.
#
#   step                 seconds
#   environment               10
#   install                   40
#   pairing                   25
#   activations               10
#   precision                 25
#   resume                    30
#   bench-fp32                30
#   bench-bf16                25
#   bench-fp32-compile        75
#   bench-bf16-compile        70
#   parallel                  75
#   memory                    25
#   deterministic             30
#   total                    470
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "${PYTHON:-python3}" "$here/gpu.py" "$@"
