"""Check a YOLO-layout dataset for input the engine would drop, misread or silently alter.

:func:`check_dataset` reads the data YAML, finds images the way the engine does (a folder, searched
recursively, or a ``.txt`` list of image paths) and their labels (the last ``/images/`` becomes
``/labels/``, the extension ``.txt``), and returns a :class:`Report`. It only reads: nothing in
the dataset is modified, moved, deleted or cached. :func:`good_samples` lists the images without
errors; :func:`write_good_yaml` writes them as image lists plus a data YAML, outside the dataset.

Severities: ``error`` (the engine drops the image or learns from wrong boxes), ``warning``
(usable, but probably not what was meant), ``info`` (counted only, e.g. empty label files, which
are negatives).
"""

from __future__ import annotations

import glob
import math
import os
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import yaml
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMG_FORMATS",
    "FORMAT_SUFFIXES",
    "KINDS",
    "Issue",
    "Report",
    "label_path_for",
    "check_dataset",
    "good_samples",
    "write_good_yaml",
    "format_report",
]

# The engine's image suffixes (ultralytics 8.4.190 data/utils.py IMG_FORMATS; a test compares).
IMG_FORMATS = frozenset({"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"})
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
}
_RANK = {"error": 0, "warning": 1, "info": 2}
_COLUMNS = ("class", "cx", "cy", "w", "h")
_EPS = 1e-6  # coordinates are written with 6 decimals
_DUP_IOU = 0.95
_MIN_SIDE = 10
_ORIENTATION = {2: "mirrored", 3: "rotated 180", 4: "flipped", 5: "transposed", 6: "rotated 90 CW", 7: "transversed", 8: "rotated 90 CCW"}


@dataclass(frozen=True)
class Issue:
    kind: str
    severity: str
    file: str
    line: int | None
    message: str
    image: str | None = None  # the image this issue disqualifies or concerns

    def where(self, root: str | None = None) -> str:
        f = self.file
        if root and Path(f).is_relative_to(root):
            f = str(Path(f).relative_to(root))
        return f"{f}:{self.line}" if self.line else f


@dataclass
class Report:
    data_yaml: str
    root: str
    names: dict[int, str]
    issues: list[Issue] = field(default_factory=list)
    images: dict[str, list[str]] = field(default_factory=dict)  # split -> every image found
    totals: dict[str, int] = field(default_factory=dict)  # images, label_files, boxes, negatives, ...

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Issues per kind, in KINDS order."""
        c = Counter(i.kind for i in self.issues)
        return {k: c[k] for k in KINDS if c[k]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_yaml": self.data_yaml,
            "root": self.root,
            "ok": self.ok,
            "totals": self.totals,
            "counts": self.counts(),
            "issues": [asdict(i) for i in self.issues],
            "good": {s: good_samples(self, s) for s in self.images},
        }


def label_path_for(image: str | os.PathLike) -> Path:
    """The label file the engine reads for ``image`` (mirrors ultralytics ``img2label_paths``)."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(sb.join(os.fspath(image).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


class _Collector:
    def __init__(self, report: Report):
        self.report = report

    def add(self, kind: str, file: str | os.PathLike, message: str, line: int | None = None, image: str | os.PathLike | None = None):
        self.report.issues.append(Issue(kind, KINDS[kind], str(file), line, message, str(image) if image else None))


# --------------------------------------------------------------------------- images
def _check_image(path: Path, add) -> tuple[int, int] | None:
    """Decode one image fully; report problems through ``add(kind, message)``; return its (w, h) as the engine sees it."""
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
                add("jpeg_no_eoi", "JPEG does not end with its end-of-image marker; the engine re-encodes and overwrites such files in place")
    w, h = size
    if 2 <= orientation <= 8:
        if orientation >= 5:
            w, h = h, w
        add("exif_rotated", f"EXIF orientation {orientation} ({_ORIENTATION[orientation]}): the engine applies it on load, "
            f"so labels must match the rotated {w}x{h} view, not the stored {size[0]}x{size[1]} pixels")
    if min(w, h) < _MIN_SIDE:
        add("image_too_small", f"{w}x{h} px; the engine rejects images under {_MIN_SIDE} px a side")
        return None
    return w, h


# --------------------------------------------------------------------------- labels
def _duplicates(rows: list[tuple[int, int, tuple[float, float, float, float]]]) -> Iterator[tuple[int, int, int, float]]:
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


def _check_label(path: Path, size: tuple[int, int] | None, nc: int, add) -> tuple[int, bool]:
    """Check one label file; report through ``add(kind, message, line)``; return (valid boxes, is empty)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        add("unreadable_label", f"not UTF-8 text (byte {e.start})", None)
        return 0, False
    except OSError as e:
        add("unreadable_label", f"cannot be read ({e.strerror})", None)
        return 0, False
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
                add("box_exceeds_image", f"box cx={cx:g} cy={cy:g} w={bw:g} h={bh:g} reaches outside the image; the engine clips it", n)
            if ok:
                rows.append((n, int(c), (cx, cy, bw, bh)))
    for n, c, m, iou in _duplicates(rows):
        add("duplicate_box", f"same class {c} as line {m} with IoU {iou:.2f}", n)
    if n_rows == 0:
        add("empty_label", "empty label file: a negative (no objects)", None)
    return len(rows), n_rows == 0


# --------------------------------------------------------------------------- dataset
def _split_images(root: Path, key: str, entry: Any, col: _Collector, yaml_file: Path) -> tuple[list[Path], list[Path]]:
    """Images of one split entry and the label folders to scan for orphans, as the engine finds them."""
    images: list[Path] = []
    label_dirs: list[Path] = []
    for e in entry if isinstance(entry, (list, tuple)) else [entry]:
        p = Path(os.path.expanduser(str(e)))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            found = glob.glob(os.path.join(glob.escape(str(p)), "**", "*.*"), recursive=True)
            here = [Path(f) for f in sorted(found) if f.rpartition(".")[-1].lower() in IMG_FORMATS and os.path.isfile(f)]
            if not here:
                col.add("no_images", p, f"{key}: no images ({', '.join(sorted(IMG_FORMATS))}) in this folder")
            images += here
            lab_dir = label_path_for(p / "x.jpg").parent
            if lab_dir != p and not lab_dir.is_dir():
                col.add("missing_labels_dir", lab_dir, f"{key}: labels folder not found (expected beside {p})")
            else:
                label_dirs.append(lab_dir)
        elif p.is_file():
            lines = p.read_text(encoding="utf-8-sig", errors="replace").splitlines()
            parent = str(p.parent) + os.sep
            if not any(s.strip() for s in lines):
                col.add("no_images", p, f"{key}: the image list is empty")
            for n, line in enumerate(lines, 1):
                s = line.strip()
                if not s or s.rpartition(".")[-1].lower() not in IMG_FORMATS:
                    continue
                f = Path(s.replace("./", parent, 1) if s.startswith("./") else s)
                if f.is_file():
                    images.append(f)
                else:
                    col.add("missing_image", p, f"{key}: listed image not found: {f}", n, f)
        else:
            col.add("missing_dir", yaml_file, f"{key}: {p} not found")
    return images, label_dirs


def _resolve(data_yaml: Path) -> tuple[dict[str, Any], Path]:
    from . import _check_keys, _load_yaml, _normalise_names, dataset_root  # the same YAML rules as ensure_dataset

    data = _load_yaml(data_yaml)
    for key in ("train", "val", "names"):
        if data.get(key) in (None, "", [], {}):
            raise ValueError(f"{data_yaml}: missing required key '{key}'")
    data["names"] = _normalise_names(data_yaml, data["names"])
    _check_keys(data_yaml, data)
    return data, dataset_root(data_yaml, data)


def check_dataset(data_yaml: str | os.PathLike) -> Report:
    """Check every image and label of a data YAML's train/val(/test) splits. Reads only.

    Raises FileNotFoundError / ValueError if the YAML itself is missing or unusable; everything
    wrong with the data is an issue in the report.
    """
    data_yaml = Path(data_yaml).expanduser().absolute()
    data, root = _resolve(data_yaml)
    names = data["names"]
    report = Report(str(data_yaml), str(root), names)
    col = _Collector(report)
    totals = Counter({k: 0 for k in ("images", "label_files", "boxes", "negatives", "missing_labels", "orphan_labels")})
    if not root.is_dir():
        hint = " (a generated dataset: lwdet.data.ensure_dataset builds it)" if "lwdet_synth" in data else ""
        col.add("missing_dir", data_yaml, f"dataset folder not found: {root}{hint}")
        report.totals = dict(totals, errors=len(report.errors), warnings=len(report.warnings))
        return report

    sizes: dict[Path, tuple[int, int] | None] = {}
    checked_labels: set[Path] = set()
    for key in ("train", "val", "test"):
        if data.get(key) in (None, "", [], {}):
            continue
        images, label_dirs = _split_images(root, key, data[key], col, data_yaml)
        report.images[key] = [str(p) for p in images]
        no_label_dirs = [Path(i.file) for i in report.issues if i.kind == "missing_labels_dir"]
        labels_expected = set()
        for img in images:
            lab = label_path_for(img)
            labels_expected.add(lab)
            if img in sizes:  # shared between splits: checked once
                continue
            totals["images"] += 1
            sizes[img] = _check_image(img, lambda kind, msg, img=img: col.add(kind, img, msg, None, img))
            if lab.is_file():
                totals["label_files"] += 1
                checked_labels.add(lab)
                n_boxes, empty = _check_label(lab, sizes[img], len(names), lambda kind, msg, line, lab=lab, img=img: col.add(kind, lab, msg, line, img))
                totals["boxes"] += n_boxes
                totals["negatives"] += empty
            elif not any(lab.is_relative_to(d) for d in no_label_dirs):  # a missing folder is one error, not N
                totals["missing_labels"] += 1
                col.add("missing_label", img, f"no label file ({lab}); the engine takes the image as a negative", None, img)
        for d in label_dirs:
            for f in sorted(glob.glob(os.path.join(glob.escape(str(d)), "**", "*.txt"), recursive=True)):
                f = Path(f)
                if f not in labels_expected and f not in checked_labels and d != root:
                    totals["orphan_labels"] += 1
                    col.add("orphan_label", f, "label file without an image; the engine ignores it")
    report.issues.sort(key=lambda i: (_RANK[i.severity], i.file, i.line or 0))
    report.totals = dict(totals, errors=len(report.errors), warnings=len(report.warnings))
    return report


def good_samples(report: Report, split: str | None = None, also_bad: Iterable[str] = ()) -> list[str]:
    """Images of ``split`` (default: all splits, in order) with no error, nor an issue of a kind in ``also_bad``.

    E.g. ``also_bad={"jpeg_no_eoi"}`` keeps the engine from rewriting those files in place.
    """
    unknown = sorted(set(also_bad) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown issue kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    also_bad = set(also_bad)
    bad = {i.image for i in report.issues if i.image and (i.severity == "error" or i.kind in also_bad)}
    splits: Iterable[str] = [split] if split is not None else report.images
    out, seen = [], set()
    for s in splits:
        for img in report.images.get(s, []):
            if img not in bad and img not in seen:
                seen.add(img)
                out.append(img)
    return out


def write_good_yaml(report: Report, out_dir: str | os.PathLike, also_bad: Iterable[str] = ()) -> Path:
    """Write ``out_dir/{split}.txt`` (absolute paths of the good images) and ``out_dir/data.yaml`` using them.

    Labels stay where they are (the engine finds them from the image paths). ``out_dir`` must be
    new and outside the dataset folder. Returns the data YAML's path.
    """
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.resolve().is_relative_to(report.root):
        raise ValueError(f"refusing to write inside the dataset folder {report.root}: {out_dir}")
    if out_dir.exists():
        raise FileExistsError(f"folder already exists, not overwriting: {out_dir}")
    lists = {s: good_samples(report, s, also_bad) for s in report.images}
    for s in ("train", "val"):
        if not lists.get(s):
            raise ValueError(f"{report.data_yaml}: no good images left in split '{s}'")
    out_dir.mkdir(parents=True)
    for s, imgs in lists.items():
        (out_dir / f"{s}.txt").write_text("".join(f"{p}\n" for p in imgs))
    data = {"path": report.root, **{s: str(out_dir / f"{s}.txt") for s in lists}, "names": dict(report.names)}
    out = out_dir / "data.yaml"
    out.write_text(f"# Images of {report.data_yaml} without errors (lwdet.data check).\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return out


def format_report(report: Report, max_issues: int = 20) -> str:
    """Readable summary: totals, issues per kind, the first ``max_issues`` issues with file:line."""
    t = report.totals
    per_split = ", ".join(f"{s} {len(v)}" for s, v in report.images.items())
    lines = [
        f"dataset   {report.root}  ({report.data_yaml})",
        f"images    {t.get('images', 0)} ({per_split or 'none'}), label files {t.get('label_files', 0)}, "
        f"boxes {t.get('boxes', 0)}, negatives {t.get('negatives', 0)} (empty label files)",
        f"issues    {len(report.errors)} errors, {len(report.warnings)} warnings",
    ]
    counts = report.counts()
    if counts:
        lines.append("")
        lines += [f"  {KINDS[k]:<8} {k:<20} {n:>6}" for k, n in counts.items()]
        shown = report.issues[:max_issues]
        lines.append("")
        lines.append(f"first {len(shown)} of {len(report.issues)} issues (paths relative to the dataset folder):")
        lines += [f"  {i.severity:<8} {i.kind:<20} {i.where(report.root)}: {i.message}" for i in shown]
    good = len(good_samples(report))
    lines.append("")
    verdict = "OK" if report.ok else f"FAILED ({len(report.errors)} errors)"
    lines.append(f"{verdict}: {good} of {t.get('images', 0)} images have no errors of their own")
    return "\n".join(lines)
