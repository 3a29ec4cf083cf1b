#!/usr/bin/env bash
# The pretrained NEON study's trainings (issue 36) on a lent GPU box with torch but none of lwdet's other
# dependencies, in one call: install the carried wheels, import the NEON datasets, run the jobs of
# tools/neon_gpu_jobs.txt through tools/gpu_queue.py, evaluate every run on the full-size val orthophoto (sliced),
# and pack the small outputs (results.csv, args, logs, evaluations; best.pt of the small detectors) for this repo.
#   tools/neon_on_gpu.sh OUT_DIR           (from the repository root; .gpu/ carries whl/ and neon-trees/)
# Env: STOP_AT (s, default 470): trainings still running then are stopped (best.pt = best epoch so far, partial);
# SLOTS (default 16) jobs at once.
set -uo pipefail
out=$1
logs=/tmp/neon-gpu-logs  # packed into runs.tgz: the box sends back only a few files
t0=$(date +%s)
mkdir -p "$out" /tmp/site "$logs"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 YOLO_OFFLINE=1
mkdir -p ../shared/datasets && { [ -e ../shared/datasets/neon-trees ] || cp -r .gpu/neon-trees ../shared/datasets/neon-trees; }
python3 -c "from lwdet.data import ensure_dataset; ensure_dataset('datasets/neon-trees.yaml')" > "$out/data.log" 2>&1
python3 benchmarks/neon_recipe_split.py datasets/neon-trees-recipe >> "$out/data.log" 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/machine.txt" 2>&1
python3 -c "import torch, ultralytics, timm; print('torch', torch.__version__, 'ultralytics', ultralytics.__version__, 'timm', timm.__version__)" >> "$out/machine.txt" 2>&1
nproc >> "$out/machine.txt"
# MPS lets the jobs' small kernels share the GPU at once; without it (or if a client cannot start) time-slicing
if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d 2>/dev/null; then
  if timeout 60 python3 -c "import torch; torch.zeros(1).cuda()" 2>/dev/null; then echo "MPS on" >> "$out/machine.txt"
  else echo quit | nvidia-cuda-mps-control; echo "MPS failed; off" >> "$out/machine.txt"; fi
else echo "MPS off" >> "$out/machine.txt"; fi
echo "setup $(( $(date +%s) - t0 )) s" | tee -a "$out/machine.txt"
python3 tools/gpu_queue.py "${JOBS:-tools/neon_gpu_jobs.txt}" --slots "${SLOTS:-16}" --stop-at "$(( ${STOP_AT:-470} - ($(date +%s) - t0) ))" \
    --no-start-after "$(( ${STOP_AT:-470} - 120 - ($(date +%s) - t0) ))" --logs "$logs" | tee "$out/queue.log"
echo "trained at $(( $(date +%s) - t0 )) s" | tee -a "$out/machine.txt"
# every run with a best.pt: full-size val orthophoto, sliced over the import's 320 px / 64 px grid at the run's input
for run in runs/gpu/*/; do
  name=$(basename "$run")
  [ -f "$run/weights/best.pt" ] || continue
  imgsz=$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['imgsz'])" "$run/args.yaml")
  python3 -m lwdet sliced-eval "$run" --images datasets/neon-trees/images/val-full --tile 320 --overlap 64 \
      --imgsz "$imgsz" --no-coco --json "$run/sliced.json" > "$logs/sliced-$name.log" 2>&1 &
done
wait
echo "evaluated at $(( $(date +%s) - t0 )) s" | tee -a "$out/machine.txt"
# small outputs: everything but weights; best.pt of the runs under 3 MB and of the teacher
tar -czf "$out/runs.tgz" --exclude='*.pt' --exclude='events.out.*' runs/gpu "$logs" 2>/dev/null
find runs/gpu -name best.pt \( -size -3M -o -path "*effl0-pre-s0/*" -o -path "*nbs16*" \) | tar -cf - -T - | split -b 15m - "$out/best.tar."
ls -la "$out"
