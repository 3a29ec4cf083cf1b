"""The same 4-row study run one row after another, then with --ray on a local Ray with two one-CPU workers: wall clock.

    python benchmarks/ray_study.py --out build/ray-study --epochs 5 --imgsz 128

Both runs train the same four detectors (fresh folders each time, same seed) on the embedded dataset with the
same budget; the sequential run uses `lwdet study` as a user would (the engine then trains on every core), the Ray
run `lwdet study --ray` with `ray: {num_cpus: 2, cpus_per_row: 1}` (two rows at a time, one thread each). Both end
with the side-by-side timing pass and the report. Prints the two wall-clock times, their ratio and each row's span
(from results.csv), and writes them to --out/summary.json. Run it on an otherwise idle machine.
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    {"backbone": "shufflenetv2_050", "neck": "lite", "head": "slim"},
    {"backbone": "repghostnet_050", "neck": "lite", "head": "slim"},
    {"backbone": "lcnet_050", "neck": "lite", "head": "slim"},
    {"backbone": "mobilenetv3_small", "neck": "lite", "head": "slim"},
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "ray-study")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--imgsz", type=int, default=128)
    args = ap.parse_args()
    if args.out.exists():
        sys.exit(f"error: {args.out} exists; move it away or name another --out (nothing is overwritten)")
    summary = {}
    for mode in ("sequential", "ray"):
        folder = args.out / mode
        folder.mkdir(parents=True)
        config = folder / "study.yaml"
        cfg = {
            "name": f"ray-study-{mode}",
            "out": str(folder / "out"),
            "report": str(folder / "report"),
            "budget": {"epochs": args.epochs, "imgsz": args.imgsz, "batch": 16, "workers": 0},
            "detectors": ROWS,
            "bench": {"threads": [1], "loops": 20, "warmup": 3, "parts": False, "onnx": False},
            "export": {"map_check": False},
        }
        if mode == "ray":
            cfg["ray"] = {"num_cpus": 2, "cpus_per_row": 1, "object_store_mb": 100}
        config.write_text(yaml.safe_dump(cfg))
        t0 = time.time()
        with (folder / "log.txt").open("w") as log:
            subprocess.run([sys.executable, "-m", "lwdet.study", str(config)], cwd=ROOT, check=True, stdout=log,
                           stderr=subprocess.STDOUT)  # fmt: skip
        wall = time.time() - t0
        with (folder / "out" / "results.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        summary[mode] = {
            "wall_s": wall,
            "rows": {r["model"]: {k: r[k] for k in ("started", "finished", "node", "map5095", "status")} for r in rows},
        }
        print(f"{mode}: {wall:.0f} s")
    summary["ratio_ray_to_sequential"] = summary["ray"]["wall_s"] / summary["sequential"]["wall_s"]
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"--ray / sequential wall clock: {summary['ratio_ray_to_sequential']:.2f}  ({args.out / 'summary.json'})")


if __name__ == "__main__":
    main()
