#!/usr/bin/env python3
"""Run an lwdet ncnn export on a camera, a video file, an image or a folder of images; needs numpy, ncnn, OpenCV.

    python detect.py --model best_ncnn_model --source 0 --max-frames 300        # USB camera 0
    python detect.py --model best_ncnn_model --source clip.mp4 --save out/      # annotated out/clip.mp4
    python detect.py --model best_ncnn_model --source images/ --save out/ --conf 0.4

With --save, annotated images (or an .mp4) and detections.csv (one row per box) go to the folder.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: lwdet.edge without installing lwdet
from lwdet.edge import NcnnDetector  # noqa: E402
from lwdet.edge.boards import describe, parse_fp16  # noqa: E402

IMAGES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def frames(source: str):
    """(name, BGR frame, fps or None) from a camera index, a video file, an image or a folder of images."""
    path = Path(source)
    if path.is_dir() or path.suffix.lower() in IMAGES:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGES) if path.is_dir() else [path]
        if not files:
            raise ValueError(f"{path}: no images ({', '.join(sorted(IMAGES))}) in this folder")
        for f in files:
            image = cv2.imread(str(f))
            if image is None:
                raise ValueError(f"{f}: cannot read this image")
            yield f.name, image, None
        return
    if not source.isdigit() and not path.exists():
        raise FileNotFoundError(f"{source}: no such file or folder (a camera is given by its index, e.g. 0)")
    cap = cv2.VideoCapture(int(source) if source.isdigit() else str(path))
    if not cap.isOpened():
        raise ValueError(f"{source}: cannot open this camera or video (a CSI camera needs libcamera; use a USB one)")
    fps, stem, i = cap.get(cv2.CAP_PROP_FPS) or 30.0, f"camera{source}" if source.isdigit() else path.stem, 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield f"{stem}_{i:06d}", frame, fps
            i += 1
    finally:
        cap.release()


def draw(image, detections):
    for (x1, y1, x2, y2), score, class_id, name in detections:
        color = ((class_id * 67) % 256, (class_id * 149 + 80) % 256, (class_id * 211 + 160) % 256)  # BGR per class
        p1, p2 = (round(x1), round(y1)), (round(x2), round(y2))
        cv2.rectangle(image, p1, p2, color, 2)
        cv2.putText(image, f"{name} {score:.2f}", (p1[0], max(p1[1] - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1)
    return image


def main(argv=None):
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path, help="ncnn export folder (<stem>_ncnn_model/)")
    p.add_argument("--source", required=True, help="camera index (0), video file, image, or folder of images")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--iou", type=float, default=0.7)
    p.add_argument("--threads", type=int, default=4, help="ncnn threads (a Pi 4/5 has 4 cores)")
    p.add_argument("--fp16", default="auto", choices=("auto", "on", "off"),
                   help="ncnn fp16 storage/arithmetic; auto: the board's default (off on a Pi 5 for an fp32 export, "
                        "ncnn's defaults elsewhere; see deploy/raspberry-pi/README.md)")
    p.add_argument("--save", type=Path, help="folder for annotated images / video and detections.csv")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: until the end)")
    args = p.parse_args(argv)
    writer = video = None
    n, busy, start = 0, 0.0, time.perf_counter()
    try:
        det = NcnnDetector(args.model, threads=args.threads, conf=args.conf, iou=args.iou, fp16=parse_fp16(args.fp16))
        print(describe(det.fp16), flush=True)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            table = open(args.save / "detections.csv", "w", newline="")
            writer = csv.writer(table)
            writer.writerow(["frame", "class_id", "class_name", "score", "x1", "y1", "x2", "y2"])
        for name, frame, fps in frames(args.source):
            t0 = time.perf_counter()
            found = det.detect(frame)
            busy += time.perf_counter() - t0
            n += 1
            summary = ", ".join(f"{d.class_name} {d.score:.2f}" for d in found[:5]) + (" ..." if len(found) > 5 else "")
            if fps is None or n % 30 == 0:
                print(f"{name}: {len(found)} objects ({summary}) {1e3 * busy / n:.1f} ms/frame, {n / busy:.1f} FPS",
                      flush=True)
            if writer:
                writer.writerows([name, d.class_id, d.class_name, f"{d.score:.4f}", *(f"{v:.1f}" for v in d.xyxy)]
                                 for d in found)
                draw(frame, found)
                if fps is None:
                    cv2.imwrite(str(args.save / name), frame)
                else:
                    if video is None:
                        stem = name.rsplit("_", 1)[0]
                        video = cv2.VideoWriter(str(args.save / f"{stem}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                                (frame.shape[1], frame.shape[0]))
                    video.write(frame)
            if args.max_frames and n >= args.max_frames:
                break
    except (OSError, ValueError, RuntimeError) as e:
        print(f"detect.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if video is not None:
            video.release()
        if writer:
            table.close()
    wall = time.perf_counter() - start
    if n:
        print(f"{n} frames: {1e3 * busy / n:.1f} ms/frame detect (letterbox + ncnn + NMS), {n / busy:.1f} FPS; "
              f"{n / wall:.1f} FPS overall (reading{' and saving' if args.save else ''} frames included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
