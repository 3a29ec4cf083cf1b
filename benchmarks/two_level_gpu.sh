#!/usr/bin/env bash
# The two-level neck's trainings (issue 37, point 1; docs/two-level.md) on a GPU box, as tools/study_on_gpu.sh does
# it (wheels in .whl/, Debian's Fashion-MNIST .gz files in $LWDET_FMNIST_DIR, or datasets/fmnist-bench-s carried):
#   benchmarks/two_level_gpu.sh BLOCK OUT_DIR        BLOCK: fix | size-lr | all
# fix:     the fix's verdict at 160 px, lr0 0.01, 50 epochs: PP-LCNet-0.5 p45 with the engine's assigner, lwdet's
#          (lwdet.assign), the small-box DFL init (--box-init 1) and both, seeds 0 and 1; RepGhostNet-0.5 p45 and
#          PP-LCNet-0.5 lite, engine vs both (12 runs).
# size-lr: the engine's assigner, 50 epochs: both backbones x {p45, lite} at 320 px (lr0 0.01) and at 160 px with
#          lr0 0.02, and PP-LCNet-0.5 p45 at lr0 0.005 (9 runs).
# Every run trains in its own process at once (tools/gpu_queue.py; the GPU is shared; WORKERS data workers each,
# default 2), stopped at TRAIN_LIMIT_S (default 540 s). OUT_DIR gets each run's results.csv and log, and a summary table
# (benchmarks/two_level.py curves). Back here: docs/two-level.md says how to read it.
set -uo pipefail
block=$1 out=$2
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 LWDET_DATASETS=$PWD/datasets
[ -d datasets/fmnist-bench-s/images/train ] || python3 -m lwdet.data.benchmark datasets/fmnist-bench-s \
  --n-train 768 --n-val 192 --n-test 192 --workers "$(nproc)" > "$out/build.log" 2>&1

L=yolov5n-lcnet_050 R=yolov5n-repghostnet_050 P=p45pan-slimhead T=litepan-slimhead
E="epochs=50 device=${DEVICE:-0} workers=${WORKERS:-2} plots=False"
jobs=()
if [ "$block" = fix ] || [ "$block" = all ]; then
  for seed in 0 1; do
    jobs+=("$L-$P --name lcnet-p45-engine-s$seed $E imgsz=160 seed=$seed"
           "$L-$P --name lcnet-p45-lwdet-s$seed --assigner lwdet $E imgsz=160 seed=$seed"
           "$L-$P --name lcnet-p45-box1-s$seed --box-init 1 $E imgsz=160 seed=$seed"
           "$L-$P --name lcnet-p45-lwdet-box1-s$seed --assigner lwdet --box-init 1 $E imgsz=160 seed=$seed")
  done
  jobs+=("$R-$P --name repghost-p45-engine-s0 $E imgsz=160"
         "$R-$P --name repghost-p45-lwdet-box1-s0 --assigner lwdet --box-init 1 $E imgsz=160"
         "$L-$T --name lcnet-lite-engine-s0 $E imgsz=160"
         "$L-$T --name lcnet-lite-lwdet-box1-s0 --assigner lwdet --box-init 1 $E imgsz=160")
fi
if [ "$block" = size-lr ] || [ "$block" = all ]; then
  for m in "$L-$P lcnet-p45" "$L-$T lcnet-lite" "$R-$P repghost-p45" "$R-$T repghost-lite"; do
    set -- $m
    jobs+=("$1 --name $2-engine-320 $E imgsz=320" "$1 --name $2-engine-lr02 $E imgsz=160 lr0=0.02")
  done
  jobs+=("$L-$P --name lcnet-p45-engine-lr005 $E imgsz=160 lr0=0.005")  # the step size, the other way
fi
[ ${#jobs[@]} -gt 0 ] || { echo "unknown block '$block' (fix | size-lr | all)" >&2; exit 2; }

start=$(date +%s)
queue=$out/jobs.txt  # every run at once through tools/gpu_queue.py (the job runner for a GPU box without Ray)
: > "$queue"
for j in "${jobs[@]}"; do
  echo "$(sed -E 's/.*--name ([^ ]+).*/\1/' <<< "$j") :: python3 benchmarks/two_level_train.py $j --project $out/runs" >> "$queue"
done
python3 tools/gpu_queue.py "$queue" --slots "${#jobs[@]}" --stop-at "${TRAIN_LIMIT_S:-540}" --logs "$out"
status=$(awk -F'\t' '$2 != "0" {bad=1} END {print bad ? 1 : 0}' "$out/status.tsv")
echo "block $block: ${#jobs[@]} runs in $(( $(date +%s) - start )) s (exit $status)" | tee "$out/summary.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> "$out/summary.txt" 2>/dev/null || true
python3 benchmarks/two_level.py curves "$out"/runs/* >> "$out/summary.txt" 2>&1
find "$out/runs" -name '*.pt' -delete 2>/dev/null  # weights stay behind: results.csv carries the verdict
cat "$out/summary.txt"
exit $status
