"""Issue 36, point 5: EfficientNet-Lite0 (lite PAN, slim head) pretrained on ImageNet vs from random weights on the
synthetic benchmark set (fmnist-bench-s, 50 epochs at 160 px, batch 16, one seed), beside the frontier's YOLOv5n
(same data and budget, three seeds, docs/study-frontier/data/results.csv).

    python benchmarks/synthetic_pretrained.py train      # the two runs (~1 h each alone on the 2-core VM; resumable)
    python benchmarks/synthetic_pretrained.py score      # best.pt of each on val and test -> the pair's CSV

The frontier's recipe for both (lwdet's defaults: SGD, lr0 0.01, nbs 64); ``nbs=64`` is given to the pretrained run
because ``--pretrained`` now defaults to nbs = batch (docs/training.md), so that the only difference between the two
runs is the backbone's initial weights. ``score`` reads each run's best.pt with the engine's validator (the study's
scoring) on the val and the test split and copies the epoch logs beside the CSV.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "synthetic-pretrained"
OUT = ROOT / "docs" / "neon-pretrained" / "data" / "synthetic"
DATA = ROOT / "datasets" / "fmnist-bench-s.yaml"
FRONTIER = ROOT / "docs" / "study-frontier" / "data" / "results.csv"
BUDGET = {"epochs": 50, "imgsz": 160, "batch": 16, "seed": 0}
RUNS_ARGS = {"efficientnet_lite0-pretrained": ["--pretrained", "nbs=64"], "efficientnet_lite0-scratch": []}
FIELDS = ["detector", "weights", "seeds", "val_map50", "val_map5095", "test_map50", "test_map5095", "x_yolov5n_test"]


def train() -> None:
    for name, extra in RUNS_ARGS.items():
        last = RUNS / name / "weights" / "last.pt"
        cmd = [sys.executable, "-m", "lwdet", "train", "--project", str(RUNS), "--name", name]
        if last.is_file():
            cmd.append("--resume")
        else:
            cmd += ["--backbone", "efficientnet_lite0", "--neck", "lite", "--head", "slim", "--data", str(DATA),
                    *[f"--{k}={v}" for k, v in BUDGET.items()], *extra]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=ROOT)


def _yolov5n() -> dict:
    with FRONTIER.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["model"] in ("yolov5n", "yolov5n-seed1", "yolov5n-seed2")]
    return {k: statistics.mean(float(r[k]) for r in rows) for k in ("map50", "map5095", "test_map50", "test_map5095")}


def score() -> Path:
    from lwdet.experiment.scoring import evaluate

    base = _yolov5n()
    rows = [{"detector": "yolov5n (frontier)", "weights": "random", "seeds": 3, "val_map50": base["map50"],
             "val_map5095": base["map5095"], "test_map50": base["test_map50"], "test_map5095": base["test_map5095"],
             "x_yolov5n_test": 1.0}]  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    for name in RUNS_ARGS:
        best = RUNS / name / "weights" / "best.pt"
        data = RUNS / name / "data.yaml"  # the run's engine copy of the data YAML (the dataset's folder resolved)
        val = evaluate(best, data, "val", BUDGET)
        test = evaluate(best, data, "test", BUDGET)
        rows.append({"detector": "efficientnet_lite0 lite slim", "weights": name.split("-")[-1].replace(
            "pretrained", "ImageNet"), "seeds": 1, "val_map50": val["map50"], "val_map5095": val["map5095"],
            "test_map50": test["map50"], "test_map5095": test["map5095"],
            "x_yolov5n_test": test["map5095"] / base["test_map5095"]})  # fmt: skip
        shutil.copyfile(RUNS / name / "results.csv", OUT / f"{name}.csv")
    path = OUT / "pair.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    print(path.read_text())
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("train", "score"))
    a = ap.parse_args()
    train() if a.what == "train" else score()
    return 0


if __name__ == "__main__":
    sys.exit(main())
