"""The pretrained NEON study (issue 36): read the runs trained by tools/neon_on_gpu.sh, score each on the full-size val
orthophoto (sliced), and tabulate the rows over their seeds.

    python benchmarks/neon_pretrained.py evaluate runs/gpu-neon --csv docs/neon-pretrained/data/runs.csv
    python benchmarks/neon_pretrained.py table docs/neon-pretrained/data/runs.csv --md docs/neon-pretrained/table.md

``evaluate``: per run folder (weights/best.pt, results.csv, args.yaml): the val-tile reading of best.pt (the epoch
the engine kept: the highest val mAP50-95 of results.csv), the training arguments that differ between rows, where the
backbone weights came from (backbone_weights.json), and the full-size val orthophoto through lwdet.sliced_eval
(sliced over the import's 320 px / 64 px grid, each tile at the run's input size; PyTorch here). Runs already in the
CSV are kept (resumable). ``table``: one line per row (a run's name without its -sN seed suffix): mean and range.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VAL_FULL = ROOT / "datasets" / "neon-trees" / "images" / "val-full"
FIELDS = [
    "run", "row", "seed", "model", "imgsz", "epochs", "lr0", "nbs", "optimizer", "freeze", "teacher", "weights",
    "weights_sha256", "best_epoch", "val_precision", "val_recall", "val_map50", "val_map5095", "val_f1",
    "sliced_map50", "sliced_map5095", "letterbox_map50", "data",
]  # fmt: skip


def best_epoch(results_csv: Path) -> dict:
    """The epoch the engine kept as best.pt: the highest val mAP50-95 (its fitness)."""
    from lwdet.report.rows import read_results

    curves = read_results(results_csv)
    i = max(range(len(curves["epoch"])), key=lambda k: curves["metrics/mAP50-95(B)"][k])
    return {
        "best_epoch": int(curves["epoch"][i]),
        "epochs": len(curves["epoch"]),
        "val_precision": curves["metrics/precision(B)"][i],
        "val_recall": curves["metrics/recall(B)"][i],
        "val_map50": curves["metrics/mAP50(B)"][i],
        "val_map5095": curves["metrics/mAP50-95(B)"][i],
        "val_f1": curves.get("metrics/F1(B)", [float("nan")] * (i + 1))[i],
    }


def describe(run: Path) -> dict:
    args = yaml.safe_load((run / "args.yaml").read_text())
    name = run.name
    row, _, seed = name.rpartition("-s")
    weights = run / "backbone_weights.json"
    record = json.loads(weights.read_text()) if weights.is_file() else {}
    teacher = args.get("distill_model")
    return {
        "run": name,
        "row": row if seed.isdigit() else name,
        "seed": args.get("seed"),
        "model": Path(str(args.get("model"))).stem,
        "imgsz": args.get("imgsz"),
        "lr0": args.get("lr0"),
        "nbs": args.get("nbs"),
        "optimizer": args.get("optimizer"),
        "freeze": args.get("freeze"),
        "teacher": Path(teacher).parents[1].name if teacher else "",
        "weights": record.get("source", "random"),
        "weights_sha256": record.get("sha256", ""),
        "data": Path(str(yaml.safe_load((run / "data.yaml").read_text()).get("path", ""))).name,
        **best_epoch(run / "results.csv"),
    }


def sliced(run: Path, imgsz: int) -> dict:
    from lwdet.sliced_eval import evaluate, load_detector, table

    det = load_detector(run, imgsz=imgsz)
    rows = {r["mode"]: r for r in table(evaluate(det, VAL_FULL, tile=320, overlap=64), coco=False)}
    return {
        "sliced_map50": rows["sliced"]["mAP50"],
        "sliced_map5095": rows["sliced"]["mAP50-95"],
        "letterbox_map50": rows["letterbox"]["mAP50"],
    }


def cmd_evaluate(args) -> int:
    done = {}
    if args.csv.is_file():
        with open(args.csv, newline="") as f:
            done = {r["run"]: r for r in csv.DictReader(f)}
    runs = sorted(p.parent for p in args.runs.glob("*/results.csv"))
    out = []
    for i, run in enumerate(runs, 1):
        if run.name in done and not args.redo:
            out.append(done[run.name])
            continue
        row = describe(run)
        if run.name in done:  # --redo: the description again, the (slow) sliced reading kept
            row.update({k: done[run.name].get(k, "") for k in ("sliced_map50", "sliced_map5095", "letterbox_map50")})
        if row["data"] == "neon-trees-recipe":  # the recipe runs are read on their held-out strip only
            row.update(sliced_map50="", sliced_map5095="", letterbox_map50="")
        elif not row.get("sliced_map50") and (run / "weights" / "best.pt").is_file():
            row.update(sliced(run, int(row["imgsz"])))
        logging.info(
            "%d/%d %s: val mAP50 %.3f sliced %s", i, len(runs), run.name, row["val_map50"], row.get("sliced_map50")
        )
        out.append(row)
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(out)
    return 0


def _stat(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def cmd_table(args) -> int:
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["row"], []).append(r)
    lines = [
        "| row | seeds | input | val-tile mAP50 | val-tile mAP50-95 | sliced mAP50 | sliced mAP50-95 |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for name, rs in groups.items():

        def col(key, rs=rs):
            return _stat([float(r[key]) for r in rs if r.get(key) not in (None, "")])

        lines.append(
            f"| {name} | {len(rs)} | {rs[0]['imgsz']} | {col('val_map50')} | {col('val_map5095')} | "
            f"{col('sliced_map50')} | {col('sliced_map5095')} |"
        )
    text = "\n".join(lines) + "\n"
    if args.md:
        args.md.write_text(text)
    sys.stdout.write(text)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("runs", type=Path)
    e.add_argument("--csv", type=Path, required=True)
    e.add_argument("--redo", action="store_true", help="re-read every run's description (keeps sliced readings)")
    t = sub.add_parser("table")
    t.add_argument("csv", type=Path)
    t.add_argument("--md", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return cmd_evaluate(args) if args.cmd == "evaluate" else cmd_table(args)


if __name__ == "__main__":
    sys.exit(main())
