"""Per-file checks: one image (decoded in full), one label file. Pure functions of the file, so their results cache."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMG_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}
)
# Pillow format -> file suffixes that may hold it, the canonical one first.
FORMAT_SUFFIXES = {
    "JPEG": ("jpg", "jpeg"),
    "MPO": ("jpg", "jpeg", "mpo"),  # multi-picture JPEG (many phones); decodes as its first frame
    "PNG": ("png",),
    "BMP": ("bmp",),
    "TIFF": ("tif", "tiff", "dng"),
    "WEBP": ("webp",),
    "JPEG2000": ("jp2",),
    "AVIF": ("avif",),
    "HEIF": ("heic", "heif"),
}

KINDS = {  # kind -> severity
    "missing_dir": "error",  # dataset folder or a train/val entry not found
    "missing_labels_dir": "error",
    "no_images": "error",
    "missing_image": "error",  # listed in a .txt split, not on disk
    "unreadable_image": "error",  # zero bytes, not an image, too large for Pillow
    "corrupt_image": "error",  # truncated or broken data: decoding fails
    "unsupported_format": "error",
    "image_too_small": "error",  # the engine rejects sides under 10 px
    "unreadable_label": "error",
    "bad_columns": "error",
    "non_numeric": "error",
    "class_out_of_range": "error",
    "negative_size": "error",
    "out_of_bounds": "error",
    "degenerate_box": "error",
    "format_mismatch": "warning",  # e.g. PNG data in a .jpg file
    "jpeg_no_eoi": "warning",  # decodes, but the engine rewrites such files in place
    "exif_rotated": "warning",
    "missing_label": "warning",  # the engine treats it as a negative
    "orphan_label": "warning",
    "box_exceeds_image": "warning",
    "duplicate_box": "warning",
    "empty_label": "info",  # a negative
    # dataset-wide (file: the data YAML)
    "class_missing_in_split": "warning",  # a class with boxes in one split and none in another
    "tiny_objects": "warning",  # boxes under a few pixels at the training input size
}
_RANK = {"error": 0, "warning": 1, "info": 2}
_COLUMNS = ("class", "cx", "cy", "w", "h")
_EPS = 1e-6  # coordinates are written with 6 decimals
_DUP_IOU = 0.95
_MIN_SIDE = 10
_ORIENTATION = {
    2: "mirrored",
    3: "rotated 180",
    4: "flipped",
    5: "transposed",
    6: "rotated 90 CW",
    7: "transversed",
    8: "rotated 90 CCW",
}


def label_path_for(image: str | os.PathLike) -> Path:
    """The label file the engine reads for ``image`` (mirrors ultralytics ``img2label_paths``)."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(sb.join(os.fspath(image).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


def scan_image(path: str | os.PathLike) -> tuple[tuple[int, int] | None, list[tuple[str, str]]]:
    """Decode one image fully: its (w, h) as the engine sees it (None if unusable) and its issues as (kind, message)."""
    issues: list[tuple[str, str]] = []
    size = _check_image(Path(path), lambda kind, msg: issues.append((kind, msg)))
    return size, issues


def _check_image(path: Path, add) -> tuple[int, int] | None:
    try:
        if path.stat().st_size == 0:
            add("unreadable_image", "zero-byte file")
            return None
    except OSError as e:
        add("unreadable_image", f"cannot be read ({e.strerror})")
        return None
    fmt, size, orientation = None, None, 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt, size = str(im.format), im.size
                try:
                    orientation = int(im.getexif().get(274, 1))
                except Exception:  # broken EXIF: the engine ignores it as well
                    orientation = 1
                im.load()
    except Image.DecompressionBombError:
        add("unreadable_image", "larger than Pillow's decompression-bomb limit")
        return None
    except UnidentifiedImageError:
        add("unreadable_image", "not an image (Pillow cannot identify the data)")
        return None
    except (OSError, SyntaxError, ValueError) as e:
        if fmt is None:
            add("unreadable_image", f"cannot be read ({e})")
            return None
        add("corrupt_image", f"{fmt} data cannot be decoded ({e})")
        size = None
    suffix = path.suffix[1:].lower()
    if fmt.lower() not in IMG_FORMATS | {"jpeg2000"}:
        add("unsupported_format", f"{fmt} data; the engine reads only {', '.join(sorted(IMG_FORMATS))}")
        return None
    if suffix not in FORMAT_SUFFIXES.get(fmt, (suffix,)):
        add("format_mismatch", f"{fmt} data in a .{suffix} file; rename it to .{FORMAT_SUFFIXES[fmt][0]}")
    if size is None:
        return None
    if fmt in ("JPEG", "MPO"):
        with open(path, "rb") as f:
            f.seek(-2, os.SEEK_END)
            if f.read() != b"\xff\xd9":
                add(
                    "jpeg_no_eoi",
                    "JPEG does not end with its end-of-image marker; the engine re-encodes and overwrites such files in place",
                )
    w, h = size
    if 2 <= orientation <= 8:
        if orientation >= 5:
            w, h = h, w
        add(
            "exif_rotated",
            f"EXIF orientation {orientation} ({_ORIENTATION[orientation]}): the engine applies it on load, "
            f"so labels must match the rotated {w}x{h} view, not the stored {size[0]}x{size[1]} pixels",
        )
    if min(w, h) < _MIN_SIDE:
        add("image_too_small", f"{w}x{h} px; the engine rejects images under {_MIN_SIDE} px a side")
        return None
    return w, h


# --------------------------------------------------------------------------- labels
def _duplicates(
    rows: list[tuple[int, int, tuple[float, float, float, float]]],
) -> Iterator[tuple[int, int, int, float]]:
    """(line, class, earlier line, IoU) for each row whose class matches an earlier row's with IoU > _DUP_IOU."""
    if len(rows) < 2:
        return
    lines = np.array([r[0] for r in rows])
    cls = np.array([r[1] for r in rows])
    b = np.array([r[2] for r in rows], np.float64)
    xyxy = np.c_[b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2]
    area = b[:, 2] * b[:, 3]
    for i in range(1, len(rows)):  # one vectorised pass per row: aerial label files hold thousands of boxes
        j = np.flatnonzero(cls[:i] == cls[i])
        if not j.size:
            continue
        wh = np.clip(np.minimum(xyxy[j, 2:], xyxy[i, 2:]) - np.maximum(xyxy[j, :2], xyxy[i, :2]), 0, None)
        inter = wh[:, 0] * wh[:, 1]
        iou = inter / np.maximum(area[j] + area[i] - inter, 1e-12)
        k = int(np.argmax(iou))
        if iou[k] > _DUP_IOU:
            yield int(lines[i]), int(cls[i]), int(lines[j[k]]), float(iou[k])


def check_label(path: Path, size: tuple[int, int] | None, nc: int, add) -> tuple[list[tuple[int, float, float]], bool]:
    """Check one label file; report through ``add(kind, message, line)``; return ([(class, w, h)] of the valid boxes
    (normalised), is empty)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        add("unreadable_label", f"not UTF-8 text (byte {e.start})", None)
        return [], False
    except OSError as e:
        add("unreadable_label", f"cannot be read ({e.strerror})", None)
        return [], False
    rows: list[tuple[int, int, tuple[float, float, float, float]]] = []
    n_rows = 0
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        n_rows += 1
        if len(parts) != 5:
            hint = " (polygon rows are not detection labels)" if len(parts) > 6 else ""
            add("bad_columns", f"expected 5 columns (class cx cy w h), got {len(parts)}{hint}", n)
            continue
        vals = []
        for col, p in zip(_COLUMNS, parts):
            try:
                v = float(p)
                if not math.isfinite(v):
                    raise ValueError
            except ValueError:
                add("non_numeric", f"{col} {p!r} is not a number", n)
                break
            vals.append(v)
        else:
            c, cx, cy, bw, bh = vals
            ok = True
            if c != int(c) or not 0 <= c < nc:
                add("class_out_of_range", f"class {parts[0]} is not in names (0..{nc - 1})", n)
                ok = False
            if bw < 0 or bh < 0:
                add("negative_size", f"negative {'width' if bw < 0 else 'height'} {min(bw, bh):g}", n)
                continue
            out = [f"{k}={v:g}" for k, v in zip(_COLUMNS[1:], vals[1:]) if not -_EPS <= v <= 1 + _EPS]
            if out:
                add("out_of_bounds", f"{', '.join(out)} outside [0, 1]", n)
                continue
            px = (bw * size[0], bh * size[1]) if size else None
            if bw == 0 or bh == 0 or (px and min(px) < 1 - 1e-2):  # 1e-2: rounding of 6-decimal labels
                dims = f"{px[0]:.3g} x {px[1]:.3g} px" if px else f"{bw:g} x {bh:g}"
                add("degenerate_box", f"box is {dims} (under 1 px)", n)
                continue
            tol = 0.5 / max(size) if size else 1e-3  # half a pixel
            if cx - bw / 2 < -tol or cy - bh / 2 < -tol or cx + bw / 2 > 1 + tol or cy + bh / 2 > 1 + tol:
                add(
                    "box_exceeds_image",
                    f"box cx={cx:g} cy={cy:g} w={bw:g} h={bh:g} reaches outside the image; the engine clips it",
                    n,
                )
            if ok:
                rows.append((n, int(c), (cx, cy, bw, bh)))
    for n, c, m, iou in _duplicates(rows):
        add("duplicate_box", f"same class {c} as line {m} with IoU {iou:.2f}", n)
    if n_rows == 0:
        add("empty_label", "empty label file: a negative (no objects)", None)
    return [(c, b[2], b[3]) for _, c, b in rows], n_rows == 0
