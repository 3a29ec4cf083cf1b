"""What every reader shares: the record types, header-only image probing, box validation and notes."""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..check.scan import FORMAT_SUFFIXES, IMG_FORMATS

LOGGER = logging.getLogger(__name__)

_SWAPPED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Record:
    """One source image and its boxes, in the pixel frame the boxes were drawn on."""

    image: Path  # source file, never modified
    name: str  # the image as the annotations name it (posix, relative), e.g. "JPEGImages/a.jpg" -> "a.jpg"
    width: int
    height: int
    boxes: np.ndarray  # float64 (N, 4) x0, y0, x1, y1 pixels, inside the image, >= 1 px each side
    labels: tuple[str, ...]  # class name per box
    fmt: str = "JPEG"  # Pillow format of the source file
    orientation: int = 1  # EXIF orientation tag of the source (1: none)
    exif_applied: bool = True  # boxes are on the EXIF-rotated view (only meaningful if orientation != 1)
    difficult: tuple[bool, ...] = ()  # per box: VOC <difficult>1 or COCO iscrowd=1 (empty: none is)
    masked: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 4))
    )  # regions painted grey on write (--difficult mask)

    def is_difficult(self) -> np.ndarray:
        """Bool (N,) per box."""
        return np.asarray(self.difficult, bool) if self.difficult else np.zeros(len(self.labels), bool)


@dataclass
class RecordSet:
    records: list[Record]
    names: list[str]  # class order: sorted label names (VOC, CSV) or the COCO category order
    source: str  # for the data.yaml header, e.g. "voc /data/VOC2012"
    notes: list[str] = field(default_factory=list)  # what was clipped, dropped or assumed, one line each


@dataclass
class ImportSummary:
    dst: Path
    data_yaml: Path
    names: list[str]
    splits: dict[str, dict[str, int]]  # split -> images, boxes, source_images (+ tiling counts)
    notes: list[str]


class _Notes:
    """Counts of recoverable oddities, each with where it was first seen."""

    def __init__(self):
        self.count: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def add(self, what: str, where: str) -> None:
        self.count[what] += 1
        self.first.setdefault(what, where)

    def lines(self) -> list[str]:
        return [f"{what}: {n} (first: {self.first[what]})" for what, n in self.count.items()]


# --------------------------------------------------------------------------- shared record building
def _probe(image: Path, where: str) -> tuple[int, int, str, int]:
    """Stored width, height, Pillow format and EXIF orientation of an image (header only)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(image) as im:
                w, h, fmt = im.size[0], im.size[1], str(im.format)
                try:
                    orientation = int(im.getexif().get(274, 1))
                except Exception:  # a broken EXIF block: the engine ignores it too
                    orientation = 1
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: image not found: {image}") from None
    except Image.DecompressionBombError:
        raise ValueError(f"{where}: {image} is larger than Pillow's decompression-bomb limit") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{where}: {image} is not a readable image ({e})") from None
    if fmt not in FORMAT_SUFFIXES:
        raise ValueError(f"{where}: {image} is a {fmt} image; the engine reads only {', '.join(sorted(IMG_FORMATS))}")
    return w, h, fmt, orientation if 1 <= orientation <= 8 else 1


def _record(
    image: Path,
    name: str,
    where: str,
    boxes: Sequence[tuple],
    notes: _Notes,
    stated: tuple[int, int] | None = None,
) -> Record:
    """Build a record from raw ``(label, x0, y0, x1, y1, location[, difficult])`` boxes; ``stated``: the annotation's (w, h)."""
    raw_w, raw_h, fmt, orientation = _probe(image, where)
    shown = (raw_h, raw_w) if orientation in _SWAPPED else (raw_w, raw_h)
    exif_applied = True
    if stated is not None and stated != shown:
        if stated != (raw_w, raw_h):
            rot = f", {shown[0]}x{shown[1]} after EXIF rotation" if shown != (raw_w, raw_h) else ""
            raise ValueError(
                f"{where}: stated image size {stated[0]}x{stated[1]} does not match {image} ({raw_w}x{raw_h}{rot})"
            )
        exif_applied = False
    if orientation != 1:
        if stated is None or shown == (raw_w, raw_h):
            notes.add("EXIF-rotated images, boxes taken on the rotated view (re-encoded upright)", where)
        elif exif_applied:
            notes.add("EXIF-rotated images annotated on the rotated view (re-encoded upright)", where)
        else:
            notes.add("EXIF-rotated images annotated on the stored pixels (re-encoded without rotation)", where)
    w, h = shown if exif_applied else (raw_w, raw_h)

    kept, labels, hard = [], [], []
    for label, x0, y0, x1, y1, loc, *flag in boxes:
        if x1 < x0 or y1 < y0:
            which = "xmax < xmin" if x1 < x0 else "ymax < ymin"
            raise ValueError(f"{loc}: inverted box ({which}): {x0:g}, {y0:g}, {x1:g}, {y1:g}")
        if x1 - x0 < 1 or y1 - y0 < 1:
            notes.add("dropped boxes under 1 px", loc)
            continue
        if x0 >= w or y0 >= h or x1 <= 0 or y1 <= 0:
            raise ValueError(f"{loc}: box {x0:g}, {y0:g}, {x1:g}, {y1:g} lies outside the {w}x{h} image {image}")
        c = (min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(max(x1, 0.0), w), min(max(y1, 0.0), h))
        if c[2] - c[0] < 1 or c[3] - c[1] < 1:
            notes.add("dropped boxes under 1 px after clipping to the image", loc)
            continue
        if c != (x0, y0, x1, y1):
            notes.add("clipped boxes to the image border", loc)
        kept.append(c)
        labels.append(label)
        hard.append(bool(flag and flag[0]))
    return Record(
        image=image,
        name=name,
        width=w,
        height=h,
        boxes=np.asarray(kept, np.float64).reshape(-1, 4),
        labels=tuple(labels),
        fmt=fmt,
        orientation=orientation,
        exif_applied=exif_applied,
        difficult=tuple(hard) if any(hard) else (),
    )


def _number(text: Any, where: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}: {text!r} is not a finite number")
    return v


def _clean_name(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).as_posix().removeprefix("./")


def _finish(records: list[Record], names: list[str], source: str, notes: _Notes, where: Path) -> RecordSet:
    if not records:
        raise ValueError(f"{where}: no images found")
    if not any(len(r.labels) for r in records):
        raise ValueError(f"{where}: no boxes found in {len(records)} image(s); nothing to train on")
    seen: dict[Path, str] = {}
    for r in records:
        key = r.image.resolve()
        if key in seen:
            raise ValueError(f"{where}: image {r.image} is annotated twice ({seen[key]!r} and {r.name!r})")
        seen[key] = r.name
    return RecordSet(records, names, source, notes.lines())
