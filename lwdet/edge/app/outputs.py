"""Outputs of the Pi app: FPS / latency meter with warm-up, headless status lines, saved images / video / CSV,
JSON lines of detections, and an optional window. Torch-free (OpenCV, numpy)."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import cv2


class Meter:
    """Detection latency and FPS; the first ``warmup`` frames (ncnn allocates and tunes on them) are not counted.

    ``fps`` is detections per second of detect time over the counted frames; ``rate`` is frames per second of wall
    time over the last ``window`` counted frames (reading, drawing and saving included)."""

    def __init__(self, warmup: int = 3, window: int = 30, clock: Callable[[], float] = time.perf_counter):
        self.warmup, self.clock = max(0, int(warmup)), clock
        self.frames = self.counted = self.detections = 0
        self.busy = 0.0
        self.last_ms = 0.0
        self.stamps: deque[float] = deque(maxlen=max(2, window))

    def add(self, seconds: float, detections: int) -> None:
        self.frames += 1
        self.detections += detections
        self.last_ms = 1e3 * seconds
        if self.frames > self.warmup:
            self.counted += 1
            self.busy += seconds
            self.stamps.append(self.clock())

    @property
    def mean_ms(self) -> float:
        return 1e3 * self.busy / self.counted if self.counted else float("nan")

    @property
    def fps(self) -> float:
        return self.counted / self.busy if self.busy > 0 else float("nan")

    @property
    def rate(self) -> float:
        if len(self.stamps) < 2 or self.stamps[-1] <= self.stamps[0]:
            return float("nan")
        return (len(self.stamps) - 1) / (self.stamps[-1] - self.stamps[0])

    def overlay_lines(self) -> list[str]:
        if not self.counted:
            return [f"warm-up {self.frames}/{self.warmup}"]
        return [
            f"{self.rate:.1f} FPS" if self.rate == self.rate else f"{self.fps:.1f} FPS",
            f"detect {self.last_ms:.0f} ms (mean {self.mean_ms:.0f})",
        ]

    def status(self, found: int | None = None) -> str:
        line = f"frames {self.frames}"
        if self.counted:
            line += f", {self.fps:.1f} FPS detect ({self.mean_ms:.1f} ms/frame)"
            if self.rate == self.rate:
                line += f", {self.rate:.1f} FPS overall"
        else:
            line += f" (all in the warm-up: the first {self.warmup} are not timed)"
        line += f", detections {self.detections}"
        return line + (f" ({found} in the last frame)" if found is not None else "")


class StatusPrinter:
    """One status line at most every ``every`` seconds (0: every call): a new line each time when ``out`` is not a
    terminal (journal, log file), an updated line in place on a terminal. No progress bars."""

    def __init__(self, out: TextIO = sys.stdout, every: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.out, self.every, self.clock = out, float(every), clock
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.next = None
        self.pending = False

    def __call__(self, line: str, force: bool = False) -> bool:
        now = self.clock()
        if not force and self.next is not None and now < self.next:
            return False
        self.next = now + self.every
        if self.tty:
            self.out.write("\r" + line + "\x1b[K")
            self.pending = True
        else:
            self.out.write(line + "\n")
        self.out.flush()
        return True

    def line(self, text: str) -> None:
        """A plain line (ends an in-place status line first)."""
        if self.pending:
            self.out.write("\n")
            self.pending = False
        self.out.write(text + "\n")
        self.out.flush()


def detection_record(name: str, index: int, image_shape, detections, latency_ms: float) -> dict:
    """One JSON-lines record: the frame and its detections (box x1, y1, x2, y2 in the frame's pixels)."""
    return {
        "frame": name,
        "index": index,
        "time": round(time.time(), 3),
        "width": int(image_shape[1]),
        "height": int(image_shape[0]),
        "latency_ms": round(latency_ms, 2),
        "detections": [
            {
                "box": [round(float(v), 1) for v in xyxy],
                "score": round(float(score), 4),
                "class_id": int(class_id),
                "class": name_,
            }
            for xyxy, score, class_id, name_ in detections
        ],
    }


class JsonlSink:
    """JSON lines of detections, one object per frame, to a file or ``-`` (stdout), flushed per line. A file is
    appended to, never truncated: a service restarted by systemd continues the same log."""

    def __init__(self, target: str | Path):
        self.stdout = str(target) == "-"
        if not self.stdout:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self.f = sys.stdout if self.stdout else open(target, "a")

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.f.flush()

    def close(self) -> None:
        if not self.stdout:
            self.f.close()


class Saver:
    """Annotated images (still sources) or one .mp4 per video stem, and detections.csv (one row per box). The CSV is
    appended to (a restarted service keeps its earlier rows); an image or video of the same name is replaced."""

    HEADER = ["frame", "class_id", "class_name", "score", "x1", "y1", "x2", "y2"]

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        table = self.folder / "detections.csv"
        new = not table.is_file() or table.stat().st_size == 0
        if not new and table.open().readline().strip() != ",".join(self.HEADER):
            raise ValueError(
                f"{table}: not a detect.py detections.csv (its header differs); give --save another folder"
            )
        self.table = open(table, "a", newline="")
        self.csv = csv.writer(self.table)
        if new:
            self.csv.writerow(self.HEADER)
        self.video = self.stem = None

    def write(self, name: str, image, fps: float | None, detections) -> None:
        self.csv.writerows([name, d[2], d[3], f"{d[1]:.4f}", *(f"{v:.1f}" for v in d[0])] for d in detections)
        if fps is None:
            cv2.imwrite(str(self.folder / name), image)
            return
        stem = name.rsplit("_", 1)[0]
        if self.video is None or stem != self.stem:
            self._close_video()
            self.stem = stem
            self.video = cv2.VideoWriter(
                str(self.folder / f"{stem}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (image.shape[1], image.shape[0])
            )
        self.video.write(image)

    def _close_video(self) -> None:
        if self.video is not None:
            self.video.release()
            self.video = None

    def close(self) -> None:
        self._close_video()
        self.table.close()


class Display:
    """An OpenCV window; refuses with one clear line when there is no display or OpenCV has no GUI."""

    def __init__(self, title: str = "lwdet"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ValueError(
                "--show needs a display (DISPLAY is not set: run it on the Pi's desktop, or use "
                "--save / --jsonl on a headless box)"
            )
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise ValueError(
                "--show: this OpenCV has no GUI (opencv-python-headless); pip install "
                "opencv-python with the same version to show frames"
            ) from None
        self.title = title

    def show(self, image) -> bool:
        """Shows a frame; False when the user pressed q or Esc."""
        cv2.imshow(self.title, image)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyAllWindows()
