#!/usr/bin/env bash
# Ensemble training on one GPU against one process per run (issue 14, goal 4: >= 10x the throughput).
# 64 quick GRU-64 runs: train_many with 16 worker processes, each training one run on the GPU, against the same runs
# cut into 16 ensembles of 4 (--jobs 16), and against one ensemble of all 64 in one process.
# Needs a CUDA device; prints the same table as bench/ensemble.py (wall s, speed-up, accuracy gap, load).
#   bash bench/ensemble_gpu.sh            # K=64, 16 processes, 800 steps
#   K=16 JOBS=4 STEPS=200 bash bench/ensemble_gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'bench/ensemble_gpu.sh: no CUDA device')"
nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv || true
"$PY" bench/ensemble.py --device cuda --k "${K:-64}" --jobs "${JOBS:-16}" ${STEPS:+--steps "$STEPS"}
