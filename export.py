"""Export a trained detector to ncnn / ONNX and prove parity: python export.py runs/demo/yolov5n --format ncnn."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import lwdet  # noqa: F401  (sets the engine offline before it is imported)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("source", type=Path, help="run folder (its weights/best.pt and data.yaml) or a .pt file")
    ap.add_argument("--format", default="ncnn", choices=("ncnn", "onnx", "all"))
    ap.add_argument("--imgsz", type=int, default=320, help="square input size, a multiple of 32")
    ap.add_argument("--half", action="store_true", help="store weights as fp16")
    ap.add_argument("--data", type=Path, help="data YAML for the mAP check (default: the run's data.yaml)")
    ap.add_argument("--no-map", action="store_true", help="skip the mAP comparison (raw outputs are still compared)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing export once the new one passed")
    ap.add_argument("--trust-checkpoint", action="store_true", help="load a .pt outside lwdet's class allow-list")
    return ap.parse_args(argv)


def fail(message: str, status: int) -> int:
    print(f"export.py: error: {message}", file=sys.stderr)
    return status


def table(reports) -> str:
    fmt = "{:<6} {:<5} {:>22} {:>20} {:>10} {:>10}  {}"
    head = ("format", "fp", "boxes max|d| px (tol)", "scores max|d| (tol)", "mAP torch", "mAP export", "path")
    rows = [fmt.format(*head)]
    for r in reports:
        maps = [f"{m:.4f}" if m is not None else "-" for m in (r.map_torch, r.map_export)]
        rows.append(fmt.format(r.format, 16 if r.half else 32, f"{r.box_max_abs_diff:.2e} ({r.box_tolerance:.2g})",
                               f"{r.score_max_abs_diff:.2e} ({r.score_tolerance:.2g})", *maps, r.path))
    return "\n".join(rows)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.imgsz < 32 or args.imgsz % 32:
        return fail(f"--imgsz must be a positive multiple of 32 (the largest stride), got {args.imgsz}", 2)
    from lwdet.artifacts import resolve_source
    from lwdet.checkpoints import vet
    from lwdet.export import EXPORTERS, ExportError, ParityError, output_path, parity_file, read_parity

    try:
        src = resolve_source(args.source, args.data)
        weights, data = src.weights, src.data
        vet(weights, args.trust_checkpoint)  # a .pt is a pickle: refuse classes outside the allow-list up front
    except (FileNotFoundError, ValueError) as e:
        return fail(str(e), 2)
    formats = ("ncnn", "onnx") if args.format == "all" else (args.format,)
    taken = [str(p) for p in (output_path(weights, f) for f in formats) if p.exists()]
    if taken and not args.overwrite:
        return fail(f"{', '.join(taken)} already exist(s); pass --overwrite to replace", 2)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    reports, status = [], 0
    for fmt in formats:
        try:
            path = EXPORTERS[fmt](weights, imgsz=args.imgsz, half=args.half, data=data, map_check=not args.no_map,
                                  overwrite=args.overwrite, trust=args.trust_checkpoint)
            reports.append(read_parity(path))
        except ParityError as e:
            reports.append(e.report)
            status = fail(f"{e} (nothing was written; an existing export is unchanged)", 1)
        except ValueError as e:  # input the checks above cannot see, e.g. --data with other classes than the model
            status = fail(f"{fmt}: {e}", 2)
        except ExportError as e:
            status = fail(f"{fmt}: {e}", 1)
    if reports:
        print("\n" + table(reports))
        for r in reports:
            if r.passed:
                print(f"{r.format}: {r.path}  (report: {parity_file(r.path)})")
    if data is None or args.no_map:
        why = "--no-map" if args.no_map else "no data YAML (pass --data)"
        print(f"mAP not compared ({why})" + ("; fp16 raw outputs catch gross breakage only" if args.half else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
