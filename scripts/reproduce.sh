#!/usr/bin/env bash
# The reproductions of docs/reproduction.md, as run there: the ELU paper's experiments A and B
# and the PReLU paper's initialization study, on real MNIST, sized for a 2-core CPU (about
# 1.5 hours in all). Documentation runs, not CI.
#
#   scripts/reproduce.sh DATA_DIR [RESULTS]
#
# DATA_DIR must hold MNIST in torchvision's layout (DATA_DIR/MNIST/raw/*-ubyte): `elubench data
# specs/mnist-mlp-8x128.yaml --data-dir DATA_DIR --download` fetches it on a networked machine.
# Already recorded runs are skipped, so the script resumes where it stopped.
set -euo pipefail
data=${1:?usage: scripts/reproduce.sh DATA_DIR [RESULTS]}
results=${2:-results-reproduction}
specs=$(cd "$(dirname "$0")/../specs" && pwd)
common=(--data-dir "$data" --results "$results")

# ELU paper, experiment A: 8x128 FC, ELU / ReLU / LReLU(0.1), 10 seeds, 30 of the paper's 300
# epochs (one evaluation, loss average and bias-shift probe per epoch).
elubench run "$specs/mnist-mlp-8x128.yaml" "${common[@]}" --set train.epochs=30

# PReLU paper, section 2.2: 30 layers, He vs Xavier, 6 seeds; and the signal at initialization.
elubench run "$specs/he-init-30layer-mnist.yaml" "${common[@]}"
elubench signal "$specs/he-init-30layer-mnist.yaml" --data-dir "$data" \
  --out "$results/he-init-30layer-mnist"

# ELU paper, experiment B: the autoencoder at rates 1e-2 and 1e-3, 7 seeds, 4 of 500 epochs.
for rate in 0.01:1e-2 0.001:1e-3; do
  elubench run "$specs/mnist-autoencoder.yaml" "${common[@]}" --seeds 7 \
    --set train.epochs=4 --set train.eval_every=937 --set "train.lr=${rate%:*}" \
    --set "name=mnist-autoencoder-lr${rate#*:}"
done

for name in mnist-mlp-8x128 he-init-30layer-mnist mnist-autoencoder-lr1e-2 mnist-autoencoder-lr1e-3; do
  elubench report "$results" --spec "$name" --no-across
done
