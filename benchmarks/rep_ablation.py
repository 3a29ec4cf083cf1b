"""The --rep ablation from a study's results CSV: a detector with and without the re-parameterizable neck and head,
every seed of each, val / test mAP50-95 and the ncnn latency the study measured.

python benchmarks/rep_ablation.py docs/study-frontier/data/results.csv --model yolov5n-repghostnet_050-litepan-slimhead
"""

import argparse
import csv
import re
import statistics
from pathlib import Path

from lwdet.models import REP_SUFFIX


def _f(row: dict, key: str) -> float | None:
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="a study's results.csv (docs/<study>/data/results.csv)")
    ap.add_argument("--model", required=True, help="the plain detector's run name (its -rep twin is found by name)")
    args = ap.parse_args()
    rows = list(csv.DictReader(args.results.open()))
    print("| variant | seed | val mAP50 | val mAP50-95 | test mAP50-95 | ncnn ms, 1 thread | params M | GFLOPs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    means = {}
    for name in (args.model, args.model + REP_SUFFIX):
        runs = [r for r in rows if re.fullmatch(re.escape(name) + r"(-seed\d+)?", r["model"])]
        if not runs:
            raise SystemExit(f"error: {args.results}: no run named {name} (or {name}-seed<N>)")
        for r in sorted(runs, key=lambda r: int(r["seed"])):
            print(
                f"| {name} | {r['seed']} | {_f(r, 'map50'):.3f} | {_f(r, 'map5095'):.3f} | "
                f"{_f(r, 'test_map5095'):.3f} | {_f(r, 'latency_ms_t1'):.2f} | {_f(r, 'params_m'):.3f} | "
                f"{_f(r, 'gflops'):.3f} |"
            )
        means[name] = [statistics.mean(_f(r, k) for r in runs) for k in ("map5095", "test_map5095", "latency_ms_t1")]
        print(
            f"| {name}, mean of {len(runs)} | | | {means[name][0]:.3f} | {means[name][1]:.3f} | {means[name][2]:.2f} | | |"
        )
    plain, rep = means[args.model], means[args.model + REP_SUFFIX]
    print(
        f"\n--rep vs plain: val mAP50-95 {rep[0] - plain[0]:+.3f}, test {rep[1] - plain[1]:+.3f}, "
        f"latency x{rep[2] / plain[2]:.3f} (the study's per-row medians; side by side: benchmarks/edge_latency.py)"
    )


if __name__ == "__main__":
    main()
