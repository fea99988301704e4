#!/usr/bin/env bash
# Paper-scale training of the integration and attention reproductions on one GPU machine, in one timed pass.
#
#   OUT=/tmp/gpu BUDGET_S=480 bash bench/gpu_paper_scale.sh
#
# What it does, within BUDGET_S seconds of wall time:
#   1. records the machine (GPU, driver, torch, cores) in machine.txt;
#   2. trains every run of src/innerworks/repro/settings/attention_full.yaml and integration_full.yaml with `--train-only --jobs`
#      (all runs side by side: one small RNN leaves a GPU mostly idle), natural-data runs first;
#      a run that fails on CUDA is retried on the CPU cores;
#   3. meanwhile runs tests/test_cuda.py and `repro wide --quick --device cuda`;
#   4. stops whatever is still training (its run directory keeps the last checkpoint, so
#      `innerworks repro <lab> --out DIR` on another machine resumes and then analyses it), and packs the run
#      directories into OUT as <lab>_runs.tgz.* parts of at most 15 MB (unpack: cat PARTS | tar xz).
# Needs the package importable (PYTHONPATH=src or installed) and the data under $INNERWORKS_DATA; on the lent
# device machine the optional .whl/ (missing wheels) and .devdata/ (a copy of the needed corpora) are used.
set -u
OUT=${OUT:?set OUT to an output folder}
mkdir -p "$OUT"
DEADLINE=$(( $(date +%s) + ${BUDGET_S:-480} ))
left() { echo $(( DEADLINE - $(date +%s) )); }
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ -z "${SKIP_WHL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
if [ -d .devdata ]; then export INNERWORKS_DATA=$PWD/.devdata; fi
IW="python3 -m innerworks.cli"
RUNS=${RUNS:-/tmp/paper_scale}
LOGS=$RUNS/logs
mkdir -p "$LOGS"

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; echo "cores: $(nproc)";
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} > "$LOGS/machine.txt" 2>&1

# Integration runs, the slowest first (natural data, then the ordered task), so none waits behind the quick ones.
python3 - <<'EOF'
import yaml
src = yaml.safe_load(open("src/innerworks/repro/settings/integration_full.yaml"))
first = [n for n in src["runs"] if n.startswith(("ag_news", "sst5", "ordered"))]
src["runs"] = {n: src["runs"][n] for n in first + [n for n in src["runs"] if n not in first]}
yaml.safe_dump(src, open("src/innerworks/repro/settings/integration_full_gpu_order.yaml", "w"), sort_keys=False)
EOF

train_lab() {  # lab, extra args...: train on CUDA; retry what failed on the CPU cores while time is left
  local lab=$1; shift
  timeout -k 5 $(( $(left) - 45 )) $IW repro "$lab" --out "$RUNS/$lab" --device cuda --train-only --quiet "$@" \
    > "$LOGS/${lab}_train_cuda.txt" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && [ "$(left)" -gt 120 ]; then
    timeout -k 5 $(( $(left) - 45 )) $IW repro "$lab" --out "$RUNS/$lab" --device cpu --train-only --quiet "$@" \
      > "$LOGS/${lab}_train_cpu_retry.txt" 2>&1
  fi
}
train_lab attention --jobs 9 &
train_lab integration --jobs 8 --config src/innerworks/repro/settings/integration_full_gpu_order.yaml &

timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py > "$LOGS/test_cuda.txt" 2>&1
timeout $(( $(left) - 50 )) $IW repro wide --quick --device cuda --out "$RUNS/wide" --quiet > "$LOGS/wide_cuda.txt" 2>&1
wait
pkill -9 -f "innerworks[.]cli" 2>/dev/null; pkill -9 -f "multiprocessing[.]spawn" 2>/dev/null; sleep 1
nvidia-smi >> "$LOGS/machine.txt" 2>&1

# Unfinished runs with big checkpoints (natural-data vocabularies) cannot come back within the file limits.
find "$RUNS" -name checkpoint.safetensors -size +6M -print -delete > "$LOGS/dropped_checkpoints.txt"
cp "$RUNS/wide/results.json" "$LOGS/wide_results.json" 2>/dev/null
(cd "$RUNS" && tar czf "$OUT/logs.tgz" logs)
for lab in attention integration; do
  (cd "$RUNS" && tar czf - "$lab/runs" 2>/dev/null | split -b 15m - "$OUT/${lab}_runs.tgz.")
done
rm -f src/innerworks/repro/settings/integration_full_gpu_order.yaml
ls -la "$OUT"
