#!/usr/bin/env bash
# Train a share of a study's runs on a GPU box that has torch but not lwdet's other dependencies, then pack the run
# folders (best.pt, results.csv, TensorBoard events; no last.pt) for the machine that times them:
#   tools/study_on_gpu.sh CONFIG OUT_DIR RUN[,RUN...]
# Needs: wheels of ultralytics, ultralytics-thop, ultralytics-platform and timm in .whl/, Debian's Fashion-MNIST
# .gz files in $LWDET_FMNIST_DIR. Every run trains in its own process at once; the GPU is shared.
# Back here: untar into the repository root and run `python -m lwdet.study CONFIG`: trained runs are not retrained.
set -euo pipefail
config=$1 out=$2 runs=$3
logs=$(mktemp -d)
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
data=$(python3 -c "import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))['data'])" "$config")
[ -f "$data" ] || python3 -m lwdet.data.benchmark "$(dirname "$data")" --workers "$(nproc)" > "$logs/build.log" 2>&1
sed -e "s/device: cpu/device: ${DEVICE:-0}/" -e "s/workers: 2/workers: ${WORKERS:-2}/" "$config" > /tmp/study-gpu.yaml
start=$(date +%s)
pids=()
for run in ${runs//,/ }; do
  timeout "${TRAIN_LIMIT_S:-540}" python3 -m lwdet.study /tmp/study-gpu.yaml --train-only --only "$run" > "$logs/train-$run.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
echo "trained ${runs} in $(( $(date +%s) - start )) s (exit $status)" | tee "$out/summary.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> "$out/summary.txt" 2>/dev/null || true
folder=$(python3 -c "import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))['out'])" "$config")
tar -czf "$out/logs.tgz" -C "$logs" .
tar -cf - --exclude=last.pt $(for run in ${runs//,/ }; do echo "$folder/$run"; done) | split -b 15m - "$out/runs.tar."
exit $status
