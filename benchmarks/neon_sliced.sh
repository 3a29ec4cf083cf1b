#!/usr/bin/env bash
# Sliced vs letterbox inference on real aerial photos (../shared/datasets/neon-trees, read-only):
# tiles of one orthophoto train a tiny detector, the other orthophoto is evaluated full-size.
#
#   bash benchmarks/neon_sliced.sh [OUT=/tmp/neon-sliced] [EPOCHS=30]
#
# The same data as a data YAML: datasets/neon-trees.yaml (lwdet_import: tiles + the untiled val image, built on
# first use); a study over several detectors with full-size sliced accuracy: configs/study-neon.yaml.
# Steps: tiled import (train: 2299x2472 image; val: 1249x1035 image) and an untiled import (full-size val labels),
# yolov5n at imgsz 320 on 320 px tiles, mAP of the val image full-size through PyTorch (engine predictor) and
# through its ncnn export, then end-to-end timing of sliced ncnn inference on the large image.
set -euo pipefail
OUT="${1:-/tmp/neon-sliced}"
EPOCHS="${2:-30}"
PY="${PYTHON:-python}"
SRC="$(cd "$(dirname "$0")/.." && pwd)/../shared/datasets/neon-trees"
VAL=2019_YELL_2_541000_4977000_image_crop.png
BIG=2019_YELL_2_528000_4978000_image_crop2.png

mkdir -p "$OUT"
echo "$VAL" > "$OUT/val.txt"
[[ -d "$OUT/tiles" ]] || $PY -m lwdet.data import --format voc "$SRC" "$OUT/tiles" --val-list "$OUT/val.txt" \
    --tile 320 --overlap 64
[[ -d "$OUT/full" ]] || $PY -m lwdet.data import --format voc "$SRC" "$OUT/full" --val-list "$OUT/val.txt"
[[ -f "$OUT/runs/v5n/weights/best.pt" ]] || OMP_NUM_THREADS=1 $PY train.py --backbone yolov5n \
    --data "$OUT/tiles/data.yaml" --epochs "$EPOCHS" --imgsz 320 --batch 16 --workers 0 \
    --project "$OUT/runs" --name v5n --no-plots
$PY -m lwdet.cli.sliced_eval "$OUT/runs/v5n" --images "$OUT/full/images/val" --imgsz 320 --tile 320 \
    --overlap 64 --json "$OUT/sliced-eval-torch.json"
$PY -m lwdet.cli.sliced_eval "$OUT/runs/v5n" --images "$OUT/full/images/val" --imgsz 320 --tile 320 \
    --overlap 64 --full-image --no-coco --json "$OUT/sliced-eval-torch-full.json"
[[ -d "$OUT/runs/v5n/weights/best_ncnn_model" ]] || $PY export.py "$OUT/runs/v5n" --format ncnn --imgsz 320 --no-map
$PY -m lwdet.cli.sliced_eval "$OUT/runs/v5n/weights/best_ncnn_model" --images "$OUT/full/images/val" \
    --tile 320 --overlap 64 --json "$OUT/sliced-eval-ncnn.json"
$PY - "$OUT/runs/v5n/weights/best_ncnn_model" "$SRC/$BIG" <<'PYEOF'
import sys, cv2
from lwdet.edge.bench.sliced import bench_sliced
for threads in (1, 2):
    row = bench_sliced(sys.argv[1], cv2.imread(sys.argv[2]), tile=320, overlap=64, threads=threads, loops=5, warmup=1)
    print(f"sliced ncnn t{threads}: {row['image']} -> {row['tiles']} tiles, {row['sliced_median_ms']:.0f} ms/image "
          f"(median), {row['tiles_per_s']:.1f} tiles/s, {row['ms_per_tile']:.1f} ms/tile, {row['detections']} boxes")
PYEOF
