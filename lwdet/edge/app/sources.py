"""Frame sources for the Pi app (``deploy/raspberry-pi/detect.py``): one spec string -> BGR frames.

Kinds (:data:`KINDS`): an OpenCV camera index (``0``), the Pi camera through picamera2 (``picam``,
``picamera2:1``), an image or video file, a folder, a glob (``'shots/*.jpg'``), and ``rtsp://`` / ``http(s)://``
streams through OpenCV's FFmpeg backend. Live sources (cameras, streams) can vanish (camera unplugged, stream
dropped): :func:`resilient` reopens them with an exponential back-off and logs each attempt instead of raising.
Torch-free: OpenCV, plus picamera2 where Raspberry Pi OS provides it (``python3-picamera2``, seen from a venv made
with ``--system-site-packages``).
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

LOGGER = logging.getLogger(__name__)

IMAGES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEOS = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mjpg", ".mjpeg", ".h264", ".ts"}
STREAMS = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
PICAM = ("picam", "picamera2")
STREAM_TIMEOUT = 10.0  # s: a stream that delivers nothing for this long counts as dropped (FFmpeg backend)
KINDS = (
    "a camera index (0), picam or picamera2:N (Pi camera), an image or video file, a folder, "
    "a glob ('dir/*.jpg'), or an rtsp:// or http(s):// stream"
)


class SourceError(ValueError):
    """A source spec that matches no kind, or a file/folder/glob with nothing to read (user-fixable)."""


class SourceLost(OSError):
    """A live source that cannot be opened or stopped delivering frames (retried by :func:`resilient`)."""


class Frame(NamedTuple):
    name: str  # file name for images; <stem>_<index> for video and live frames
    image: np.ndarray  # HxWx3 BGR
    fps: float | None  # the video's frame rate (None for still images)


class Source:
    """A parsed spec: ``kind`` (camera / picamera2 / stream / video / images), ``live`` and ``open()`` -> frames."""

    def __init__(self, spec: str, kind: str, target, live: bool, size: tuple[int, int] | None = None):
        self.spec, self.kind, self.target, self.live, self.size = spec, kind, target, live, size
        self.timeout = STREAM_TIMEOUT  # streams only: open / read timeout in s

    def __repr__(self) -> str:
        return f"Source({self.kind}: {self.spec})"

    def open(self) -> Iterator[Frame]:
        if self.kind == "images":
            return _images(self.target)
        if self.kind == "picamera2":
            return _picamera2(self.target, self.size)
        if self.kind == "files":
            return _files(self.target, self.size)
        return _capture(self.target, self.name, self.live, self.size, self.timeout if self.kind == "stream" else None)

    @property
    def name(self) -> str:
        if self.kind == "camera":
            return f"camera{self.target}"
        if self.kind == "stream":
            return Path(self.spec.split("?")[0].rstrip("/")).stem or "stream"
        return Path(str(self.target)).stem


def parse_source(spec: str, size: tuple[int, int] | None = None) -> Source:
    """The :class:`Source` for a spec; :class:`SourceError` naming the kinds when none matches."""
    text = str(spec).strip()
    low = text.lower()
    if text.isdigit():
        return Source(text, "camera", int(text), True, size)
    if low in PICAM or any(low.startswith(p + ":") for p in PICAM):
        index = low.split(":", 1)[1] if ":" in low else "0"
        if not index.isdigit():
            raise SourceError(f"{text}: the Pi camera is picam or picamera2:N with N its index")
        return Source(text, "picamera2", int(index), True, size)
    if low.startswith(STREAMS):
        return Source(text, "stream", text, True, size)
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGES | VIDEOS)
        if not files:
            raise SourceError(f"{path}: no images or videos ({', '.join(sorted(IMAGES | VIDEOS))}) in this folder")
        return _file_list(text, files, size)
    if any(c in text for c in "*?["):
        files = sorted(
            Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).suffix.lower() in IMAGES | VIDEOS
        )
        if not files:
            raise SourceError(f"{text}: this glob matches no image or video file")
        return _file_list(text, files, size)
    if path.is_file():
        if path.suffix.lower() in IMAGES:
            return Source(text, "images", [path], False, size)
        return Source(text, "video", path, False, size)
    raise SourceError(f"{text}: no such file, folder or camera; a source is {KINDS}")


def _file_list(spec: str, files: list[Path], size) -> Source:
    if all(f.suffix.lower() in IMAGES for f in files):
        return Source(spec, "images", files, False, size)
    return Source(spec, "files", files, False, size)


def _images(files: list[Path]) -> Iterator[Frame]:
    for f in files:
        image = cv2.imread(str(f))
        if image is None:
            raise SourceError(f"{f}: cannot read this image")
        yield Frame(f.name, image, None)


def _files(files: list[Path], size) -> Iterator[Frame]:
    """Images and videos of a folder or glob in name order."""
    for f in files:
        if f.suffix.lower() in IMAGES:
            yield from _images([f])
        else:
            yield from _capture(f, f.stem, False, size)


def _capture(target, stem: str, live: bool, size, timeout: float | None = None) -> Iterator[Frame]:
    if timeout:  # a stalled stream must not block read() forever: FFmpeg with open / read timeouts
        ms = int(1e3 * timeout)
        cap = cv2.VideoCapture(
            str(target), cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        )
    else:
        cap = cv2.VideoCapture(target if isinstance(target, int) else str(target))
    if not cap.isOpened():
        cap.release()
        what = f"camera {target}" if isinstance(target, int) else str(target)
        if live:
            raise SourceLost(f"cannot open {what}")
        raise SourceError(f"{what}: OpenCV cannot open this video")
    if size and isinstance(target, int):
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 0 < fps < 1000 else 30.0
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                if live:
                    raise SourceLost(f"{stem}: no frame after {i} frames (unplugged or dropped?)")
                return
            yield Frame(f"{stem}_{i:06d}", frame, fps)
            i += 1
    finally:
        cap.release()


def _picamera2(index: int, size) -> Iterator[Frame]:
    try:
        from picamera2 import Picamera2
    except ImportError as e:
        raise SourceError(
            f"picamera2 is not importable ({e}): on Raspberry Pi OS run `sudo apt install "
            f"python3-picamera2` and make the venv with SYSTEM_SITE_PACKAGES=1 bash "
            f"deploy/raspberry-pi/setup.sh"
        ) from None
    try:
        cam = Picamera2(index)
        # libcamera's RGB888 is B, G, R in memory: OpenCV's order
        cam.configure(cam.create_video_configuration(main={"format": "RGB888", "size": tuple(size or (640, 480))}))
        cam.start()
    except (RuntimeError, IndexError, OSError) as e:
        raise SourceLost(f"cannot open Pi camera {index}: {e}") from None
    i = 0
    try:
        while True:
            try:
                frame = cam.capture_array()
            except (RuntimeError, OSError) as e:
                raise SourceLost(f"Pi camera {index}: {e}") from None
            yield Frame(f"picam{index}_{i:06d}", np.ascontiguousarray(frame[..., :3]), 30.0)
            i += 1
    finally:
        cam.close()


def backoff(failures: int, base: float = 1.0, max_wait: float = 30.0) -> float:
    """Seconds to wait after ``failures`` consecutive failures (1, 2, ...): base * 2**(failures - 1), capped."""
    return min(float(max_wait), float(base) * 2 ** max(0, failures - 1))


def resilient(
    source: Source,
    base: float = 1.0,
    max_wait: float = 30.0,
    limit: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Frame]:
    """``source``'s frames; a live source that fails to open or stops is reopened after an exponential back-off
    (``base``, 2 x base, ... capped at ``max_wait`` s; reset by a frame), each attempt logged at WARNING.
    ``limit`` > 0 gives up (raises the last :class:`SourceLost`) after that many consecutive failures.
    A file source ends when its frames end; errors other than SourceLost pass through."""
    if not source.live:
        yield from source.open()
        return
    failures = 0
    while True:
        try:
            for frame in source.open():
                if failures:
                    LOGGER.warning("%s: back after %d failed attempt(s)", source.spec, failures)
                failures = 0
                yield frame
            raise SourceLost(f"{source.spec}: the stream ended")
        except SourceLost as e:
            failures += 1
            if limit and failures >= limit:
                LOGGER.error("%s: giving up after %d consecutive failures: %s", source.spec, failures, e)
                raise
            wait = backoff(failures, base, max_wait)
            LOGGER.warning("%s: %s; retry %d in %.1f s", source.spec, e, failures, wait)
            sleep(wait)
