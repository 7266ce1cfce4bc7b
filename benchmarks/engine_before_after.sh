#!/usr/bin/env bash
# The training loop before and after a change, interleaved in one sitting (a shared VM drifts
# by +-25 %, so only side-by-side figures mean anything). Usage, from the repository root with
# its virtualenv active:
#
#     benchmarks/engine_before_after.sh BASE_COMMIT [PAIRS]
#
# It checks BASE_COMMIT out into a temporary git worktree, then alternates before / after
# `elubench run` of 8 quick-start runs (relu, elu x BN off/on x 2 seeds, the base commit's
# quickstart spec, so both train the same thing), and prints each sitting's summed
# train_seconds (training only: no start-up, no evaluation) and their medians.
set -euo pipefail
base=${1:?give the commit to compare against}
pairs=${2:-4}
work=$(mktemp -d)
git worktree add --detach "$work/base" "$base" >/dev/null
trap 'git worktree remove --force "$work/base"; rm -rf "$work"' EXIT
spec="$work/base/specs/quickstart.yaml"
# One run at a time on every core on both sides (the layout before issue 16): where a side
# knows --threads, ask for it, so that both train under the same conditions.
layout() {
  if PYTHONPATH=$1 python -m elubench run --help | grep -q -- "--threads"; then
    echo "--executor serial --threads $(nproc)"
  fi
}
for i in $(seq "$pairs"); do
  for side in before after; do
    pythonpath=""; [ "$side" = before ] && pythonpath="$work/base"
    # shellcheck disable=SC2046
    PYTHONPATH=$pythonpath python -m elubench run "$spec" -a relu,elu --batchnorm both --seeds 2 \
      --results "$work/$side-$i" $(layout "$pythonpath") > /dev/null
  done
done
python - "$work" "$pairs" <<'PY'
import glob, json, statistics, sys
work, pairs = sys.argv[1], int(sys.argv[2])
for side in ("before", "after"):
    sums = [sum(json.load(open(p))["train_seconds"]
                for p in glob.glob(f"{work}/{side}-{i}/*/runs/*/run.json")) for i in range(1, pairs + 1)]
    print(side, [round(s, 1) for s in sums], "median", round(statistics.median(sums), 1))
PY
