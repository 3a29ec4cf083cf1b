#!/usr/bin/env python3
"""Run an lwdet ncnn export on a camera, the Pi camera, a stream, a video, images, a folder or a glob; needs numpy,
ncnn and OpenCV (and picamera2 for the Pi camera).

    python detect.py --model best_ncnn_model --source 0 --max-frames 300          # USB camera 0
    python detect.py --model best_ncnn_model --source picam --save out/           # Pi camera (picamera2)
    python detect.py --model best_ncnn_model --source rtsp://cam.local/stream --jsonl - --retry 60
    python detect.py --model best_ncnn_model --source clip.mp4 --save out/        # annotated out/clip.mp4
    python detect.py --model best_ncnn_model --source 'photos/*.jpg' --save out/ --conf 0.4
    python detect.py --model best_ncnn_model --source ortho.png --save out/ --tile 640 --overlap 64  # sliced

With --save, annotated images (or an .mp4 per video) and detections.csv (one row per box) go to the folder;
--jsonl FILE (or - for stdout) writes one JSON object per frame with its detections. Cameras and streams that
vanish are reopened with an exponential back-off (--retry). Status lines go to stdout (stderr with --jsonl -).
"""

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from lwdet.edge import Detection, NcnnDetector  # setup.sh makes this copy's lwdet/ importable in the Pi's venv
from lwdet.edge.app.outputs import Display, JsonlSink, Meter, Saver, StatusPrinter, detection_record
from lwdet.edge.app.overlay import draw_detections, draw_status
from lwdet.edge.app.sources import KINDS, SourceLost, parse_source, resilient

FP16 = {"auto": None, "on": True, "off": False}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        assert w > 0 and h > 0
    except (ValueError, AssertionError):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    return w, h


def build_parser() -> Parser:
    p = Parser(prog="detect.py", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path, help="ncnn export folder (<stem>_ncnn_model/)")
    p.add_argument("--source", required=True, help=KINDS)
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--iou", type=float, default=0.7)
    p.add_argument("--threads", type=int, default=4, help="ncnn threads (a Pi 4/5 has 4 cores)")
    p.add_argument(
        "--fp16",
        default="auto",
        choices=tuple(FP16),
        help="ncnn fp16 storage/arithmetic; auto: the board's default (on where the export's recorded mAP on this "
        "board allows it, off where it does not, ncnn's defaults where nothing is recorded; deploy/raspberry-pi/README.md)",
    )
    p.add_argument("--tile", type=int, metavar="SIZE", help="sliced inference: SIZE x SIZE px tiles (as at import)")
    p.add_argument("--overlap", type=int, default=64, metavar="PX", help="tile overlap in px (with --tile)")
    p.add_argument("--camera-size", type=size, metavar="WxH", help="capture size for a camera / the Pi camera")
    p.add_argument("--save", type=Path, help="folder for annotated images / video and detections.csv")
    p.add_argument("--jsonl", metavar="FILE", help="JSON lines of detections, one object per frame ('-': stdout)")
    p.add_argument("--show", action="store_true", help="show annotated frames in a window (needs a display)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: until the end)")
    p.add_argument("--warmup", type=int, default=3, help="first frames not counted in FPS / latency")
    p.add_argument(
        "--status-every",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between status lines for videos, cameras and streams (0: every frame)",
    )
    p.add_argument(
        "--retry",
        type=float,
        default=30.0,
        metavar="MAX",
        help="longest wait in s between attempts to reopen a lost camera / stream (waits double from 1 s)",
    )
    p.add_argument(
        "--retry-limit",
        type=int,
        default=0,
        metavar="N",
        help="give up (exit 1) after N consecutive failed attempts (0: never, as a service should)",
    )
    return p


def slicer(det, tile: int, overlap: int, tiles: list):
    """detect(image) -> Detections through lwdet.edge.slicing (imported here: only --tile needs it); appends each
    frame's tile count to ``tiles``."""
    from lwdet.edge.slicing import sliced_predict
    from lwdet.tilegrid import tile_windows

    def detect(image):
        tiles.append(len(tile_windows(image.shape[1], image.shape[0], tile, overlap)))
        return [
            Detection(tuple(float(v) for v in d[:4]), float(d[4]), int(d[5]), det.names[int(d[5])])
            for d in sliced_predict(det, image, tile, overlap)
        ]

    return detect


def check_tile(tile: int, overlap: int) -> None:
    try:
        from lwdet.edge import slicing  # noqa: F401
        from lwdet.tilegrid import check_tile as check
    except ImportError as e:
        raise ValueError(f"--tile needs sliced inference (lwdet/edge/slicing.py, lwdet/tilegrid.py): {e}") from None
    check(tile, overlap)


def describe_fp16(fp16) -> str | None:
    try:
        from lwdet.edge.boards import describe
    except ImportError:
        return None
    return describe(fp16)


def _stop(*_):
    raise KeyboardInterrupt  # systemd's SIGTERM: close the video and tables, then exit 0


def run(args, out) -> int:
    log = logging.getLogger("detect")
    closers, tiles = [], []
    meter = Meter(args.warmup)
    printer = StatusPrinter(out, args.status_every)
    start = time.perf_counter()
    try:
        source = parse_source(args.source, args.camera_size)
        if args.tile:
            check_tile(args.tile, args.overlap)
        det = NcnnDetector(args.model, threads=args.threads, conf=args.conf, iou=args.iou, fp16=FP16[args.fp16])
        detect = slicer(det, args.tile, args.overlap, tiles) if args.tile else det.detect
        display = Display(f"lwdet: {args.source}") if args.show else None
        saver = Saver(args.save) if args.save else None
        jsonl = JsonlSink(args.jsonl) if args.jsonl else None
        closers = [c for c in (display, saver, jsonl) if c]
        line = describe_fp16(getattr(det, "fp16", FP16[args.fp16]))
        printer.line(f"{det.name} on {source.kind} {args.source}" + (f"; {line}" if line else ""))
        for frame in resilient(source, max_wait=args.retry, limit=args.retry_limit):
            t0 = time.perf_counter()
            found = detect(frame.image)
            dt = time.perf_counter() - t0
            meter.add(dt, len(found))
            if jsonl:
                jsonl.write(detection_record(frame.name, meter.frames - 1, frame.image.shape, found, 1e3 * dt))
            if saver or display:
                draw_detections(frame.image, found)
                if frame.fps is not None:
                    draw_status(frame.image, meter.overlay_lines())
                if saver:
                    saver.write(frame.name, frame.image, frame.fps, found)
                if display and not display.show(frame.image):
                    break
            if frame.fps is None:  # still images: one line each
                summary = ", ".join(f"{d.class_name} {d.score:.2f}" for d in found[:5]) + (" ..." * (len(found) > 5))
                printer.line(f"{frame.name}: {len(found)} objects ({summary}) {1e3 * dt:.1f} ms")
            else:
                printer(meter.status(len(found)))
            if args.max_frames and meter.frames >= args.max_frames:
                break
    except SourceLost as e:
        log.error("%s", e)
        return 1
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        print(f"detect.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        for c in closers:
            c.close()
    if meter.frames:
        wall = time.perf_counter() - start
        printer.line(
            f"{meter.status()}; {meter.frames / wall:.1f} FPS wall (loading, reading"
            f"{' and saving' if args.save else ''} included); detect = letterbox + ncnn + NMS"
            + (f"; sliced: {sum(tiles) / len(tiles):.1f} tiles/frame of {args.tile} px" if tiles else "")
        )
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stderr if args.jsonl == "-" else sys.stdout
    logging.basicConfig(level=logging.INFO, stream=out, format="%(levelname)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop)
    return run(args, out)


if __name__ == "__main__":
    sys.exit(main())
