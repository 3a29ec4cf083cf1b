#!/usr/bin/env bash
# Does scaling the engine's epoch-count settings to a short budget help? (issue 13, section 4)
# The demo's budget (ghostnet, 10 epochs, 160 px, the embedded set) trained twice per seed: with lwdet's scaled
# defaults (close_mosaic 1, warmup_epochs 1: lwdet.training.budget_defaults) and with the engine's fixed ones
# (close_mosaic 10: no mosaic at all in a 10-epoch run; warmup_epochs 3), then the final val mAP of each.
#
#   bash benchmarks/short_budget.sh [OUT=runs/short-budget] [SEEDS="0 1"]
#
# Resumable: a finished run is not trained again.
set -euo pipefail
OUT="${1:-runs/short-budget}"
SEEDS="${2:-0 1}"
PY="${PYTHON:-python}"
COMMON=(--backbone ghostnet --epochs 10 --imgsz 160 --batch 16 --no-plots --project "$OUT")
for seed in $SEEDS; do
    for recipe in scaled engine; do
        name="$recipe-s$seed"
        [[ -f "$OUT/$name/weights/best.pt" ]] && continue
        rm -rf "${OUT:?}/$name"
        extra=()
        [[ $recipe == engine ]] && extra=(--close-mosaic 10 --warmup-epochs 3)
        $PY train.py "${COMMON[@]}" --seed "$seed" --name "$name" "${extra[@]}" > "$OUT.$name.log" 2>&1
    done
done
$PY - "$OUT" <<'PYEOF'
import csv, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = {}
for run in sorted(p for p in out.iterdir() if (p / "results.csv").is_file()):
    rec = list(csv.DictReader((run / "results.csv").open()))
    last = rec[-1]
    rows.setdefault(run.name.split("-s")[0], []).append(
        (run.name, float(last["metrics/mAP50(B)"]), float(last["metrics/mAP50-95(B)"]))
    )
print("| recipe | run | final mAP50 | final mAP50-95 |\n|---|---|---:|---:|")
for recipe, rs in rows.items():
    for name, m50, m in rs:
        print(f"| {recipe} | {name} | {m50:.4f} | {m:.4f} |")
    print(f"| {recipe} | mean of {len(rs)} | {statistics.mean(r[1] for r in rs):.4f} | "
          f"{statistics.mean(r[2] for r in rs):.4f} |")
PYEOF
