#!/usr/bin/env bash
# Train, freeze and convert one bundled example model (single-threaded, deterministic seeds).
#
# Usage: [INIT_MODEL=ckpt.pt] tools/train_example/train.sh <input.json> <output.dp> [workdir]
#   e.g. tools/train_example/train.sh tools/train_example/input_se_e2_a.json examples/cu-emt/cu_se_e2_a.dp
# Needs the data from make_data.py in /tmp/halomd-train/data. Checkpoints stay in the workdir
# (default /tmp/halomd-train/<input name>), only the portable .dp lands in the repo.
# Run from anywhere; relative paths are resolved before the cd.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PY:-/work/venv/bin/python}"
DP="${DP:-$(dirname "$PY")/dp}"
IN="$(realpath "$1")"
OUTDP="$(realpath -m "$2")"
WORK="${3:-/tmp/halomd-train/$(basename "$IN" .json)}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 DP_INTRA_OP_PARALLELISM_THREADS=1 DP_INTER_OP_PARALLELISM_THREADS=1
export CUDA_VISIBLE_DEVICES=""
mkdir -p "$WORK"
cd "$WORK"
cp "$IN" input.json
start=$(date +%s)
# INIT_MODEL: continue from an earlier stage's checkpoint (weights and statistics; fresh lr schedule).
"$DP" --pt train input.json ${INIT_MODEL:+--init-model "$(realpath "$INIT_MODEL")"} 2>&1 | tee train.log
echo "training wall time: $(( $(date +%s) - start )) s" | tee -a train.log
"$DP" --pt freeze -o frozen.pth
"$DP" convert-backend frozen.pth "$OUTDP"
# Validation RMSE on the held-out frames, with the frozen model.
"$DP" --pt test -m frozen.pth -s /tmp/halomd-train/data/valid 2>&1 | tee test.log
ls -l "$OUTDP"
