"""Seconds per training epoch on the embedded dataset, detectors side by side in one run (ratios to the first).

python benchmarks/epoch_time.py --backbones yolov5n ghostnet shufflenetv2 --epochs 3 --imgsz 160
"""

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=["yolov5n", "ghostnet", "shufflenetv2"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=160)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in args.backbones:
            cmd = [
                sys.executable,
                str(ROOT / "train.py"),
                "--backbone",
                backbone,
                "--epochs",
                str(args.epochs),
                "--imgsz",
                str(args.imgsz),
                "--batch",
                str(args.batch),
                "--no-plots",
                "--project",
                tmp,
                "--name",
                backbone,
            ]
            subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            epochs = [float(r["time/epoch_s"]) for r in csv.DictReader(open(Path(tmp) / backbone / "results.csv"))]
            # The first epoch carries data-loader start-up; report the median of the rest when there is one.
            rows.append((backbone, epochs, statistics.median(epochs[1:] or epochs)))
    base = rows[0][2]
    print(f"| backbone | s/epoch (median, epochs 2..{args.epochs}) | ratio to {rows[0][0]} | all epochs (s) |")
    print("|---|---:|---:|---|")
    for name, epochs, med in rows:
        print(f"| {name} | {med:.1f} | {med / base:.2f} | {', '.join(f'{e:.1f}' for e in epochs)} |")


if __name__ == "__main__":
    main()
