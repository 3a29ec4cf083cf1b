"""Time lwdet ncnn exports and peer .param graphs as benchncnn does; needs only numpy, ncnn and OpenCV.

    lwdet bench --model runs/exp/yolov5n/weights/best_ncnn_model --threads 1,2,4 --image bus.jpg
    lwdet bench --all runs/exp --peers ../shared/peers/ncnn --threads 1,2 --csv pi4.csv
    lwdet bench --param peers/yolo-fastestv2.param --input-shape 352,352,3
    lwdet bench --model best_ncnn_model --runtimes ncnn,onnx,torch   # onnxruntime / torch side by side
    lwdet bench --all runs/exp --peers ../shared/peers/ncnn --estimate pi4,pi5   # + projected Pi latency
    lwdet bench --model best_ncnn_model --image ortho.png --tile 640 --overlap 64   # sliced inference, end to end

Also ``python bench_edge.py ...`` in a clone (no install needed on a Pi: numpy, ncnn and OpenCV only).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lwdet.cli import common

PROG = "lwdet bench"


def build_parser():
    p = common.parser(PROG, __doc__)
    p.add_argument("--model", action="append", default=[], type=Path, help="ncnn export folder (repeatable)")
    p.add_argument("--all", type=Path, help="bench every ncnn export folder under this folder")
    p.add_argument("--param", action="append", default=[], type=Path, help="bare .param, empty weights (repeatable)")
    p.add_argument("--peers", type=Path, help="bench every .param in this folder (e.g. ../shared/peers/ncnn)")
    p.add_argument("--input-shape", type=lambda s: tuple(common.int_list(s, 3)), help="w,h,c for --param/--peers")
    p.add_argument("--imgsz", type=common.imgsz, help="check the exports were made at this size")
    p.add_argument("--threads", type=common.int_list, default=[1], help="e.g. 1,2,4: one row per value (default: 1)")
    p.add_argument("--loops", type=common.positive_int, default=100, help="timed runs per row")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first")
    p.add_argument("--powersave", type=int, default=0, choices=(0, 1, 2), help="0 all, 1 little, 2 big cores")
    p.add_argument("--cooldown", type=float, default=0.0, help="seconds to rest before each model (benchncnn: 10)")
    p.add_argument(
        "--rounds",
        type=common.positive_int,
        default=1,
        help="passes over all models, round-robin; each row merges its passes (median of medians)",
    )
    p.add_argument("--image", type=Path, help="image for the end-to-end timing (default: a synthetic 640x480)")
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold for end-to-end NMS")
    p.add_argument(
        "--runtimes", type=lambda s: s.split(","), default=["ncnn"], help="any of ncnn,onnx,torch (default: ncnn)"
    )
    p.add_argument("--json", type=Path, help="write results and device info as JSON")
    p.add_argument("--csv", type=Path, help="write one row per model x runtime x threads")
    p.add_argument(
        "--fp16",
        choices=("auto", "on", "off"),
        default="auto",
        help="ncnn fp16 storage/arithmetic; auto: the board's default (lwdet.edge.boards)",
    )
    p.add_argument(
        "--estimate",
        type=lambda s: s.split(","),
        metavar="pi4,pi5",
        help="also print PROJECTED latency on these boards, scaled by the peers timed in the same run "
        "(--peers) or in --estimate-calibration (docs/pi-projection.md); not a measurement",
    )
    p.add_argument(
        "--estimate-calibration",
        type=common.existing_file,
        metavar="CSV",
        help="a bench CSV of the peers from this machine, when this run times none",
    )
    p.add_argument(
        "--tile",
        type=common.positive_int,
        metavar="SIZE",
        help="also time sliced inference on --image: SIZE x SIZE tiles (as at import)",
    )
    p.add_argument("--overlap", type=int, default=64, metavar="PX", help="tile overlap in px (with --tile)")
    p.add_argument("--full-image", action="store_true", help="with --tile: also one whole-image pass")
    return p


def load_other(path, threads, x):
    """onnxruntime for a .onnx, torch for a .pt; imported here only, only when --runtimes asks for them."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x[None]}
        return lambda: session.run(None, feed)
    import torch

    from lwdet.checkpoints import load_weights

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    model, _ = load_weights(path)  # a .pt is a pickle: only allow-listed classes (docs/safety.md)
    model, t = model.float().fuse(verbose=False).eval(), torch.from_numpy(x[None])
    return lambda: model(t)


def _sliced(args, models) -> None:
    """Sliced inference end to end on --image for every export: tiles per image, ms per image, tiles/s."""
    from lwdet.edge.bench import load_image
    from lwdet.edge.bench.sliced import bench_sliced

    image = load_image(args.image)
    print(
        f"# sliced inference on {args.image} ({image.shape[1]}x{image.shape[0]}), tile {args.tile}, "
        f"overlap {args.overlap}{', + full image' if args.full_image else ''}"
    )
    print(f"{'model':<45}{'threads':>8}{'tiles':>7}{'ms/image':>10}{'tiles/s':>9}{'ms/tile':>9}")
    for folder in models:
        for t in args.threads:
            r = bench_sliced(
                folder,
                image,
                args.tile,
                args.overlap,
                threads=t,
                full_image=args.full_image,
                loops=max(1, min(args.loops, 10)),
                warmup=min(args.warmup, 2),
            )
            print(
                f"{r['model']:<45}{t:>8}{r['tiles']:>7}{r['sliced_median_ms']:>10.1f}{r['tiles_per_s']:>9.1f}"
                f"{r['ms_per_tile']:>9.1f}"
            )


def _estimate(args, rows) -> None:
    """Projected Pi latency, labelled as a projection (lwdet.edge.bench.projection)."""
    from lwdet.edge.bench import projection

    scales, projected = projection.estimate(rows, args.estimate, args.estimate_calibration)
    print("# PROJECTED, not measured: " + projection.describe(scales))
    print(projection.table(projected))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from lwdet.edge import bench

    header = [bench.table_header()]  # printed with the first row, so a bad input prints nothing on stdout

    def show(row):
        print(*header, bench.table_line(row), sep="\n", flush=True)
        header.clear()

    try:
        models = args.model + (bench.find_model_dirs(args.all) if args.all else [])
        params = args.param + (bench.find_params(args.peers) if args.peers else [])
        if not models and not params:
            raise ValueError("nothing to bench: give --model, --all, --param or --peers")
        if args.tile is not None:
            from lwdet.tilegrid import check_tile

            if args.image is None:
                raise ValueError("--tile times sliced inference on a large image: give it with --image")
            check_tile(args.tile, args.overlap)
        if args.estimate:
            from lwdet.edge.bench.projection import BOARDS

            if unknown := sorted(set(args.estimate) - set(BOARDS)):
                raise ValueError(f"--estimate: unknown board(s) {unknown}; known: {', '.join(BOARDS)}")
        rows = bench.bench_all(
            models,
            params,
            args.threads,
            args.runtimes,
            load_other,
            input_shape=args.input_shape,
            image=args.image,
            imgsz=args.imgsz,
            conf=args.conf,
            powersave=args.powersave,
            cooldown=args.cooldown,
            loops=args.loops,
            warmup=args.warmup,
            progress=common.progress_bar(),
            on_row=show if args.rounds == 1 else None,
            rounds=args.rounds,
            fp16={"auto": None, "on": True, "off": False}[args.fp16],
        )
        if args.rounds > 1:  # the merged rows only: a pass's row alone is what rounds exist to smooth out
            for row in rows:
                show(row)
    except (OSError, ValueError, RuntimeError) as e:  # a missing / unreadable graph, a bad shape, an ncnn failure
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return common.EXIT_USAGE
    if args.tile is not None:
        _sliced(args, models)
    if args.estimate:
        _estimate(args, rows)
    device = bench.device_info()
    print(f"# {device['board'] or device['cpu']} ({device['arch']}, {device['cores']} cores), ncnn {device['ncnn']}")
    if args.csv:
        bench.write_csv(rows, args.csv, device)
    if args.json:
        bench.write_json(rows, args.json, device, {k: str(v) for k, v in vars(args).items()})
    return 0
