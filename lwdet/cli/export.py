"""Export a trained detector to ncnn / ONNX and prove parity: lwdet export runs/demo/yolov5n --format ncnn.

Also ``python export.py ...`` in a clone. The export lands beside the weights (weights/best_ncnn_model/,
weights/best.onnx) with its parity report; an existing export is replaced only with --overwrite, and only
once the new one passed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lwdet.cli import common

PROG = "lwdet export"


def build_parser():
    ap = common.parser(PROG, __doc__)
    ap.add_argument("source", type=Path, help="run folder (its weights/best.pt and data.yaml) or a .pt file")
    ap.add_argument("--format", default="ncnn", choices=("ncnn", "onnx", "all"), help="export format")
    ap.add_argument("--imgsz", type=common.imgsz, default=320, help="square input size, a multiple of 32")
    ap.add_argument("--half", action="store_true", help="store weights as fp16")
    ap.add_argument("--data", type=Path, help="data YAML for the mAP check (default: the run's data.yaml)")
    ap.add_argument("--no-map", action="store_true", help="skip the mAP comparison (raw outputs are still compared)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing export once the new one passed")
    ap.add_argument("--trust-checkpoint", action="store_true", help="load a .pt outside lwdet's class allow-list")
    return ap


def fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def table(reports) -> str:
    fmt = "{:<6} {:<5} {:>22} {:>20} {:>10} {:>10}  {}"
    head = ("format", "fp", "boxes max|d| px (tol)", "scores max|d| (tol)", "mAP torch", "mAP export", "path")
    rows = [fmt.format(*head)]
    for r in reports:
        maps = [f"{m:.4f}" if m is not None else "-" for m in (r.map_torch, r.map_export)]
        rows.append(
            fmt.format(
                r.format,
                16 if r.half else 32,
                f"{r.box_max_abs_diff:.2e} ({r.box_tolerance:.2g})",
                f"{r.score_max_abs_diff:.2e} ({r.score_tolerance:.2g})",
                *maps,
                r.path,
            )
        )
    return "\n".join(rows)


def _export(args) -> int:
    from lwdet.artifacts import resolve_source
    from lwdet.checkpoints import vet
    from lwdet.export import EXPORTERS, ExportError, ParityError, output_path, parity_file, read_parity

    src = resolve_source(args.source, args.data)
    weights, data = src.weights, src.data
    vet(weights, args.trust_checkpoint)  # a .pt is a pickle: refuse classes outside the allow-list up front
    formats = ("ncnn", "onnx") if args.format == "all" else (args.format,)
    taken = [str(p) for p in (output_path(weights, f) for f in formats) if p.exists()]
    if taken and not args.overwrite:
        return fail(f"{', '.join(taken)} already exist(s); pass --overwrite to replace", common.EXIT_USAGE)
    reports, status = [], 0
    for fmt in formats:
        try:
            path = EXPORTERS[fmt](
                weights,
                imgsz=args.imgsz,
                half=args.half,
                data=data,
                map_check=not args.no_map,
                overwrite=args.overwrite,
                trust=args.trust_checkpoint,
            )
            reports.append(read_parity(path))
        except ParityError as e:
            reports.append(e.report)
            status = fail(f"{e} (nothing was written; an existing export is unchanged)", 1)
        except ValueError as e:  # input the checks above cannot see, e.g. --data with other classes than the model
            status = fail(f"{fmt}: {e}", common.EXIT_USAGE)
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return common.run(_export, args)
