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
    ap.add_argument("--name", help="output stem: <name>_ncnn_model / <name>.onnx beside the weights (default: theirs)")
    ap.add_argument("--trust-checkpoint", action="store_true", help="load a .pt outside lwdet's class allow-list")
    q = ap.add_argument_group("int8 (ncnn): post-training quantization with an accuracy proof, docs/int8.md")
    q.add_argument("--int8", action="store_true", help="write <stem>_int8_ncnn_model/ (needs --calib and data)")
    q.add_argument("--calib", type=Path, help="calibration images: a folder, or a data YAML (its train split)")
    q.add_argument("--calib-images", type=int, default=200, help="images used, spread evenly (default 200)")
    q.add_argument("--calib-method", default="kl", help="activation thresholds: kl (default), aciq, percentile, max")
    q.add_argument("--int8-tolerance", type=float, default=0.01,
                   help="accepted mAP50-95 drop from the fp32 export, relative (default 0.01: 1 %%)")  # fmt: skip
    q.add_argument("--int8-max-float", type=float, default=0.5,
                   help="largest fraction of layers the sensitivity pass may keep float (default 0.5)")  # fmt: skip
    return ap


def fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _bits(r) -> int:
    return 8 if r.int8 else 16 if r.half else 32


def int8_line(r) -> str:
    i = r.int8
    kept = ", ".join(i["kept_float"]) or "none"
    return (f"int8: {i['layers_int8']} of {i['layers']} layers int8 (kept float: {kept}); mAP50-95 fp32 export "
            f"{i['map_fp32']:.4f}, every layer int8 {i['map_int8_all']:.4f}, this export {i['map_int8']:.4f}; "
            f".bin {i['bin_bytes_fp32'] / 1e6:.2f} MB -> {i['bin_bytes_int8'] / 1e6:.2f} MB")  # fmt: skip


def table(reports) -> str:
    fmt = "{:<6} {:<5} {:>22} {:>20} {:>10} {:>10}  {}"
    head = ("format", "fp", "boxes max|d| px (tol)", "scores max|d| (tol)", "mAP torch", "mAP export", "path")
    rows = [fmt.format(*head)]
    for r in reports:
        maps = [f"{m:.4f}" if m is not None else "-" for m in (r.map_torch, r.map_export)]
        rows.append(
            fmt.format(
                r.format,
                _bits(r),
                f"{r.box_max_abs_diff:.2e} ({r.box_tolerance:.2g})",
                f"{r.score_max_abs_diff:.2e} ({r.score_tolerance:.2g})",
                *maps,
                r.path,
            )
        )
    return "\n".join(rows)


def _int8_args(args) -> str | None:
    """What is wrong with the int8 flags, or None."""
    if not args.int8:
        given = [f for f, v in (("--calib", args.calib),) if v is not None]
        return f"{given[0]} needs --int8" if given else None
    if args.format != "ncnn":
        return f"--int8 exports ncnn only, not --format {args.format}"
    if args.half:
        return "--int8 and --half: pick one (an int8 export keeps its float layers in fp32)"
    if args.calib is None:
        return "--int8 needs --calib DIR|DATA_YAML (calibration images)"
    if args.no_map:
        return "--int8 needs the mAP check (its accuracy proof); drop --no-map"
    return None


def _export(args) -> int:
    from lwdet.artifacts import resolve_source
    from lwdet.export import EXPORTERS, ExportError, ParityError, load_model, output_path, parity_file, read_parity
    from lwdet.export.int8 import CalibrationError, calibration_images, export_ncnn_int8, int8_path

    if problem := _int8_args(args):
        return fail(problem, common.EXIT_USAGE)
    if args.int8:
        try:
            calibration_images(args.calib, args.calib_images)  # bad calibration input fails before anything loads
        except CalibrationError as e:
            return fail(str(e), common.EXIT_USAGE)
    src = resolve_source(args.source, args.data)
    weights, data = src.weights, src.data
    formats = ("ncnn", "onnx") if args.format == "all" else (args.format,)
    where = (
        (lambda f: int8_path(weights, name=args.name))
        if args.int8
        else (lambda f: output_path(weights, f, name=args.name))
    )
    taken = [str(p) for p in (where(f) for f in formats) if p.exists()]
    if taken and not args.overwrite:
        return fail(f"{', '.join(taken)} already exist(s); pass --overwrite to replace", common.EXIT_USAGE)
    # The one load of this export (a .pt is a pickle: the allow-list check comes first, in load_model); every format
    # and the int8 export's fp32 stage start from this model.
    model, _ = load_model(weights, trust=args.trust_checkpoint)
    reports, status = [], 0
    for fmt in formats:
        try:
            if args.int8:
                path = export_ncnn_int8(
                    model,
                    source=weights,
                    imgsz=args.imgsz,
                    calib=args.calib,
                    data=data,
                    tolerance=args.int8_tolerance,
                    method=args.calib_method,
                    calib_images=args.calib_images,
                    max_float=args.int8_max_float,
                    overwrite=args.overwrite,
                    name=args.name,
                    progress=common.progress_bar(),
                )
            else:
                path = EXPORTERS[fmt](
                    model,
                    source=weights,
                    imgsz=args.imgsz,
                    half=args.half,
                    data=data,
                    map_check=not args.no_map,
                    overwrite=args.overwrite,
                    name=args.name,
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
            if r.int8 and r.int8.get("map_int8") is not None:
                print(int8_line(r))
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
