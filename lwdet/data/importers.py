"""Bring real annotations into the engine's YOLO layout: one reader per format, one writer.

Readers (:func:`read_voc`, :func:`read_coco`, :func:`read_csv`) return a :class:`RecordSet`:
one :class:`Record` per image (source path, size, boxes as x0, y0, x1, y1 pixels, label names)
plus the class order. :func:`write_yolo` writes a split record set to a new folder;
:func:`import_dataset` does read + split + write. Source files are only ever read.

Box conventions: coordinates are taken as written (CVAT / LabelImg / COCO continuous pixel
coordinates; the VOC devkit's 1-based indices differ by at most one pixel). Inverted boxes and
boxes outside the image are errors; boxes are clipped to the image, and boxes under 1 px (as
written or after clipping) are dropped and reported in ``RecordSet.notes``.

EXIF orientation: the engine rotates images by their EXIF tag on load. The boxes are taken to be
on that rotated view (as the engine and most annotation tools show it) unless the annotation's
own image size matches only the stored pixels; either way the written image is re-encoded
upright with no orientation tag, so the labels match what the engine sees.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

import numpy as np
import yaml
from PIL import Image, ImageOps, UnidentifiedImageError

from .check import FORMAT_SUFFIXES, IMG_FORMATS
from .tiling import TileOptions, tile_boxes

__all__ = [
    "Record",
    "RecordSet",
    "ImportSummary",
    "READERS",
    "read_voc",
    "read_coco",
    "read_csv",
    "read_annotations",
    "split_records",
    "split_by_list",
    "write_yolo",
    "import_dataset",
]

LOGGER = logging.getLogger(__name__)

_JPEG_QUALITY = 95
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
    boxes: Sequence[tuple[str, float, float, float, float, str]],
    notes: _Notes,
    stated: tuple[int, int] | None = None,
) -> Record:
    """Build a record from raw ``(label, x0, y0, x1, y1, location)`` boxes; ``stated``: the annotation's (w, h)."""
    raw_w, raw_h, fmt, orientation = _probe(image, where)
    shown = (raw_h, raw_w) if orientation in _SWAPPED else (raw_w, raw_h)
    exif_applied = True
    if stated is not None and stated != shown:
        if stated != (raw_w, raw_h):
            rot = f", {shown[0]}x{shown[1]} after EXIF rotation" if shown != (raw_w, raw_h) else ""
            raise ValueError(f"{where}: stated image size {stated[0]}x{stated[1]} does not match {image} ({raw_w}x{raw_h}{rot})")
        exif_applied = False
    if orientation != 1:
        if stated is None or shown == (raw_w, raw_h):
            notes.add("EXIF-rotated images, boxes taken on the rotated view (re-encoded upright)", where)
        elif exif_applied:
            notes.add("EXIF-rotated images annotated on the rotated view (re-encoded upright)", where)
        else:
            notes.add("EXIF-rotated images annotated on the stored pixels (re-encoded without rotation)", where)
    w, h = shown if exif_applied else (raw_w, raw_h)

    kept, labels = [], []
    for label, x0, y0, x1, y1, loc in boxes:
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


# --------------------------------------------------------------------------- Pascal VOC
def _xml_text(el: ET.Element, path: str, xml: Path, required: bool = True) -> str | None:
    found = el.find(path)
    text = found.text.strip() if found is not None and found.text else ""
    if not text:
        if required:
            raise ValueError(f"{xml}: <{path}> missing or empty")
        return None
    return text


def _voc_image(xml: Path, filename: str | None, base: Path) -> Path:
    if filename:
        p = base / filename
        if p.is_file():
            return p
    # tools disagree on <filename> (missing, no extension, stale): fall back to the XML's own stem
    found = [Path(p) for p in sorted(glob.glob(glob.escape(str(base / xml.stem)) + ".*"))]
    found = [p for p in found if p.suffix[1:].lower() in IMG_FORMATS]
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(f"{xml}: <filename> {filename!r}: no such image in {base}")


def read_voc(src: str | os.PathLike) -> RecordSet:
    """Pascal VOC: ``SRC/Annotations/*.xml`` with ``SRC/JPEGImages/``, or XMLs beside their images."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"VOC folder not found: {src}")
    ann_dir = src / "Annotations"
    if ann_dir.is_dir():
        xml_root, img_root = ann_dir, src / "JPEGImages" if (src / "JPEGImages").is_dir() else ann_dir
    else:
        xml_root = img_root = src
    xmls = sorted(xml_root.rglob("*.xml"))
    if not xmls:
        raise FileNotFoundError(f"no VOC annotations (*.xml) in {xml_root}")
    notes, records = _Notes(), []
    for xml in xmls:
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as e:
            raise ValueError(f"{xml}: not valid XML ({e})") from None
        if root.tag != "annotation":
            raise ValueError(f"{xml}: root element is <{root.tag}>, expected <annotation>")
        base = img_root / xml.parent.relative_to(xml_root)
        image = _voc_image(xml, _xml_text(root, "filename", xml, required=False), base)
        stated = None
        if root.find("size") is not None:
            sw = _xml_text(root, "size/width", xml, required=False)
            sh = _xml_text(root, "size/height", xml, required=False)
            if sw is not None and sh is not None:
                wh = int(_number(sw, f"{xml}: <size/width>")), int(_number(sh, f"{xml}: <size/height>"))
                stated = wh if min(wh) > 0 else None  # some tools write 0 when they do not know
        boxes = []
        for i, obj in enumerate(root.findall("object"), 1):
            path = f"object[{i}]"
            label = _xml_text(obj, "name", xml, required=False)
            if label is None:
                raise ValueError(f"{xml}: <{path}/name> missing or empty")
            if obj.find("bndbox") is None:
                raise ValueError(f"{xml}: <{path}/bndbox> missing ({label!r})")
            coords = []
            for tag in ("xmin", "ymin", "xmax", "ymax"):
                text = _xml_text(obj, f"bndbox/{tag}", xml, required=False)
                if text is None:
                    raise ValueError(f"{xml}: <{path}/bndbox/{tag}> missing or empty ({label!r})")
                coords.append(_number(text, f"{xml}: <{path}/bndbox/{tag}>"))
            boxes.append((label, *coords, f"{xml}: <{path}>"))
        name = image.relative_to(img_root).as_posix() if image.is_relative_to(img_root) else image.name
        records.append(_record(image, name, str(xml), boxes, notes, stated))
    names = sorted({lab for r in records for lab in r.labels})
    return _finish(records, names, f"voc {src.absolute()}", notes, src)


# --------------------------------------------------------------------------- COCO
def _get(obj: Any, key: str, where: str, kinds: tuple[type, ...], json_path: Path) -> Any:
    if not isinstance(obj, dict):
        raise ValueError(f"{json_path}: {where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{json_path}: {where}.{key}: missing")
    v = obj[key]
    if not isinstance(v, kinds) or isinstance(v, bool):
        want = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{json_path}: {where}.{key}: expected {want}, got {v!r}")
    return v


def read_coco(json_path: str | os.PathLike, images: str | os.PathLike | None = None) -> RecordSet:
    """COCO detection JSON; ``images``: folder that ``file_name`` is relative to (default: the JSON's folder)."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {json_path}")
    img_dir = Path(images) if images is not None else json_path.parent
    if not img_dir.is_dir():
        raise FileNotFoundError(f"COCO images folder not found: {img_dir}")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{json_path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{json_path}: not UTF-8 text") from None
    num, text = (int, float), (str,)
    cats = _get(data, "categories", "$", (list,), json_path)
    images_ = _get(data, "images", "$", (list,), json_path)
    anns = _get(data, "annotations", "$", (list,), json_path) if isinstance(data, dict) and "annotations" in data else []
    if not cats:
        raise ValueError(f"{json_path}: categories: empty")

    cat_index, names = {}, []
    for i, c in enumerate(cats):
        cid, cname = _get(c, "id", f"categories[{i}]", (int,), json_path), _get(c, "name", f"categories[{i}]", text, json_path)
        if cid in cat_index:
            raise ValueError(f"{json_path}: categories[{i}].id: {cid} is used twice")
        if cname.strip() in names:
            raise ValueError(f"{json_path}: categories[{i}].name: {cname!r} is used twice")
        cat_index[cid] = len(names)
        names.append(cname.strip())

    by_id: dict[int, tuple[int, dict]] = {}
    for i, im in enumerate(images_):
        iid = _get(im, "id", f"images[{i}]", (int, str), json_path)
        _get(im, "file_name", f"images[{i}]", text, json_path)
        if iid in by_id:
            raise ValueError(f"{json_path}: images[{i}].id: {iid!r} is used twice")
        by_id[iid] = (i, im)

    notes = _Notes()
    boxes: dict[Any, list] = {iid: [] for iid in by_id}
    for i, a in enumerate(anns):
        where = f"annotations[{i}]"
        iid = _get(a, "image_id", where, (int, str), json_path)
        cid = _get(a, "category_id", where, (int,), json_path)
        if iid not in by_id:
            raise ValueError(f"{json_path}: {where}.image_id: {iid!r} is not the id of any image")
        if cid not in cat_index:
            raise ValueError(f"{json_path}: {where}.category_id: {cid} is not the id of any category")
        if a.get("iscrowd", 0):  # a region of many objects, not one box the detector should learn
            notes.add("skipped crowd annotations (iscrowd=1)", f"{json_path}: {where}")
            continue
        bbox = _get(a, "bbox", where, (list,), json_path)
        if len(bbox) != 4:
            raise ValueError(f"{json_path}: {where}.bbox: expected [x, y, width, height], got {bbox!r}")
        x, y, bw, bh = (_number(v, f"{json_path}: {where}.bbox[{k}]") for k, v in enumerate(bbox))
        if bw < 0 or bh < 0:
            raise ValueError(f"{json_path}: {where}.bbox: negative {'width' if bw < 0 else 'height'} in {bbox!r}")
        boxes[iid].append((names[cat_index[cid]], x, y, x + bw, y + bh, f"{json_path}: {where}"))

    records = []
    for iid, (i, im) in by_id.items():
        name = _clean_name(im["file_name"])
        sw, sh = im.get("width"), im.get("height")
        stated = None
        if sw is not None and sh is not None:
            stated = (int(_number(sw, f"{json_path}: images[{i}].width")), int(_number(sh, f"{json_path}: images[{i}].height")))
            stated = stated if min(stated) > 0 else None
        records.append(_record(img_dir / name, name, f"{json_path}: images[{i}]", boxes[iid], notes, stated))
    return _finish(records, names, f"coco {json_path.absolute()} images {img_dir.absolute()}", notes, json_path)


# --------------------------------------------------------------------------- CSV
_CSV_COLUMNS = "image_path,xmin,ymin,xmax,ymax,label"


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_csv(csv_path: str | os.PathLike) -> RecordSet:
    """CSV rows ``image_path,xmin,ymin,xmax,ymax,label`` (header optional, paths relative to the CSV).

    A row ``image_path,,,,,`` declares an image with no objects (a negative).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV file not found: {csv_path}")
    groups: dict[str, tuple[int, list]] = {}  # image name -> (first line, boxes)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            first = True
            for row in reader:
                where = f"{csv_path}:{reader.line_num}"
                cells = [c.strip() for c in row]
                if not any(cells):
                    continue
                if len(cells) != 6:
                    raise ValueError(f"{where}: expected 6 columns ({_CSV_COLUMNS}), got {len(cells)}")
                path, coords, label = cells[0], cells[1:5], cells[5]
                if first and not any(_is_number(c) for c in coords):  # a header row
                    first = False
                    continue
                first = False
                if not path:
                    raise ValueError(f"{where}: image_path is empty")
                name = _clean_name(path)
                _, boxes = groups.setdefault(name, (reader.line_num, []))
                if not any(coords) and not label:
                    continue  # negative image
                for col, c in zip(("xmin", "ymin", "xmax", "ymax", "label"), coords + [label]):
                    if not c:
                        raise ValueError(f"{where}: {col} is empty (a negative image leaves all five fields empty)")
                vals = [_number(c, f"{where}: {col}") for col, c in zip(("xmin", "ymin", "xmax", "ymax"), coords)]
                boxes.append((label, *vals, where))
    except UnicodeDecodeError:
        raise ValueError(f"{csv_path}: not UTF-8 text") from None
    except csv.Error as e:
        raise ValueError(f"{csv_path}: {e}") from None
    notes, records = _Notes(), []
    for name, (line, boxes) in groups.items():
        image = Path(name) if Path(name).is_absolute() else csv_path.parent / name
        records.append(_record(image, name, f"{csv_path}:{line}", boxes, notes))
    names = sorted({lab for r in records for lab in r.labels})
    return _finish(records, names, f"csv {csv_path.absolute()}", notes, csv_path)


READERS: dict[str, Callable[..., RecordSet]] = {"voc": read_voc, "coco": read_coco, "csv": read_csv}


def read_annotations(fmt: str, src: str | os.PathLike, images: str | os.PathLike | None = None) -> RecordSet:
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(READERS)}")
    if images is not None and fmt != "coco":
        raise ValueError(f"an images folder is only taken with the coco format (got format {fmt!r})")
    return read_coco(src, images) if fmt == "coco" else READERS[fmt](src)


# --------------------------------------------------------------------------- splits
def _check_ratios(ratios: Sequence[float]) -> list[float]:
    ratios = [float(r) for r in ratios]
    if len(ratios) not in (2, 3) or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6 or ratios[1] <= 0:
        raise ValueError(f"split ratios must be train,val[,test] >= 0 summing to 1 with val > 0, got {ratios}")
    return ratios


def split_records(records: Sequence[Record], ratios: Sequence[float] = (0.8, 0.2), seed: int = 0) -> dict[str, list[Record]]:
    """Deterministic split by image: ``ratios`` = (train, val) or (train, val, test), summing to 1."""
    ratios = _check_ratios(ratios)
    order = sorted(records, key=lambda r: r.name)
    n = len(order)
    n_val = min(max(round(n * ratios[1]), 1), n)
    n_test = round(n * ratios[2]) if len(ratios) == 3 else 0
    if len(ratios) == 3 and ratios[2] > 0:
        n_test = max(n_test, 1)
    if n - n_val - n_test < 1:
        raise ValueError(f"{n} image(s) are too few for the split {','.join(f'{r:g}' for r in ratios)}")
    perm = np.random.default_rng(seed).permutation(n)
    picked = [order[i] for i in perm]
    out = {"train": picked[n_val + n_test :], "val": picked[:n_val]}
    if len(ratios) == 3:
        out["test"] = picked[n_val : n_val + n_test]
    return {k: sorted(v, key=lambda r: r.name) for k, v in out.items()}


def split_by_list(records: Sequence[Record], val_list: str | os.PathLike) -> dict[str, list[Record]]:
    """Val = the images named in ``val_list`` (one a line: name, file name or stem; ``#`` comments); train = the rest."""
    val_list = Path(val_list)
    if not val_list.is_file():
        raise FileNotFoundError(f"val list not found: {val_list}")
    keys: dict[str, set[int]] = {}
    for i, r in enumerate(records):
        base = PurePosixPath(r.name)
        for k in {r.name, base.name, str(base.with_suffix("")), base.stem}:
            keys.setdefault(k, set()).add(i)
    val: set[int] = set()
    for n, line in enumerate(val_list.read_text(encoding="utf-8-sig").splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        hits = keys.get(_clean_name(entry), set())
        if not hits:
            raise ValueError(f"{val_list}:{n}: {entry!r} matches no imported image")
        if len(hits) > 1:
            names = ", ".join(sorted(records[i].name for i in hits))
            raise ValueError(f"{val_list}:{n}: {entry!r} matches several images ({names}); give the full name")
        val |= hits
    if not val:
        raise ValueError(f"{val_list}: lists no images")
    if len(val) == len(records):
        raise ValueError(f"{val_list}: lists every image; nothing is left to train on")
    by_name = sorted(range(len(records)), key=lambda i: records[i].name)
    return {"train": [records[i] for i in by_name if i not in val], "val": [records[i] for i in by_name if i in val]}


# --------------------------------------------------------------------------- writer
def _out_stem(name: str) -> str:
    """Flat, unique-per-source file stem: ``sub/dir/a.jpg`` -> ``sub__dir__a``."""
    parts = [p for p in PurePosixPath(name).with_suffix("").parts if p not in ("", ".", "..", "/")]
    return "__".join(parts) or "image"


def _yolo_lines(boxes: np.ndarray, classes: Sequence[int], w: int, h: int) -> str:
    out = []
    for c, (x0, y0, x1, y1) in zip(classes, boxes.tolist()):
        cx, cy = min(max((x0 + x1) / 2 / w, 0.0), 1.0), min(max((y0 + y1) / 2 / h, 0.0), 1.0)
        bw, bh = min(max((x1 - x0) / w, 0.0), 1.0), min(max((y1 - y0) / h, 0.0), 1.0)
        out.append(f"{c} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
    return "".join(out)


def _pixels(rec: Record) -> Image.Image:
    """The record's image as RGB in the frame its boxes are on (EXIF applied or not)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(rec.image) as im:
                im.load()
                if rec.orientation != 1 and rec.exif_applied:
                    im = ImageOps.exif_transpose(im)
                rgb = im.convert("RGB")
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"{rec.image}: cannot decode the image ({e})") from None
    if rgb.size != (rec.width, rec.height):  # pragma: no cover - guards the frame logic in _record
        raise ValueError(f"{rec.image}: decoded size {rgb.size} differs from the expected {rec.width}x{rec.height}")
    return rgb


def _save(img: Image.Image, path: Path) -> None:
    if path.suffix == ".png":
        img.save(path, format="PNG")
    else:
        img.save(path, format="JPEG", quality=_JPEG_QUALITY)


def _write_record(
    rec: Record, stem: str, img_dir: Path, lab_dir: Path, ids: dict[str, int], tiling: TileOptions | None, stats: Counter
) -> None:
    classes = [ids[lab] for lab in rec.labels]
    stats["source_images"] += 1
    whole = tiling is None or (rec.width <= tiling.size and rec.height <= tiling.size)
    enc_ext = ".png" if rec.fmt == "PNG" else ".jpg"  # lossless stays lossless
    if whole:
        if rec.orientation == 1:
            suffix = rec.image.suffix.lower()
            ext = suffix if suffix[1:] in FORMAT_SUFFIXES[rec.fmt] else "." + FORMAT_SUFFIXES[rec.fmt][0]
            shutil.copyfile(rec.image, img_dir / f"{stem}{ext}")  # byte copy: no re-encoding loss
        else:
            _save(_pixels(rec), img_dir / f"{stem}{enc_ext}")  # upright, without the orientation tag
        (lab_dir / f"{stem}.txt").write_text(_yolo_lines(rec.boxes, classes, rec.width, rec.height))
        stats["images"] += 1
        stats["boxes"] += len(classes)
        return
    pixels = _pixels(rec)
    seen = np.zeros(len(classes), bool)
    for t in tile_boxes(rec.width, rec.height, rec.boxes, tiling):
        seen[t.index] = True
        if not len(t.index) and not tiling.keep_empty:
            stats["empty_tiles_dropped"] += 1
            continue
        tile_stem = f"{stem}_x{t.x0}_y{t.y0}"
        _save(pixels.crop((t.x0, t.y0, t.x1, t.y1)), img_dir / f"{tile_stem}{enc_ext}")
        (lab_dir / f"{tile_stem}.txt").write_text(_yolo_lines(t.boxes, [classes[i] for i in t.index], t.width, t.height))
        stats["images"] += 1
        stats["tiles"] += 1
        stats["boxes"] += len(t.index)
    stats["boxes_in_no_tile"] += int((~seen).sum())  # under min_visible in every tile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_yolo(
    rs: RecordSet,
    dst: str | os.PathLike,
    splits: dict[str, Sequence[Record]],
    tiling: TileOptions | None = None,
    header: str = "",
) -> ImportSummary:
    """Write ``splits`` ({'train': [...], 'val': [...], optional 'test'}) as a YOLO dataset in the new folder ``dst``.

    Built in a temporary folder beside ``dst`` and renamed into place at the end; an existing
    ``dst`` raises FileExistsError and is never touched.
    """
    dst = Path(dst).absolute()
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(f"destination already exists, not overwriting: {dst}")
    unknown = sorted(set(splits) - {"train", "val", "test"})
    if unknown or not splits.get("train") or not splits.get("val"):
        raise ValueError(f"splits must be non-empty 'train' and 'val' (and optional 'test'), got {dict((k, len(v)) for k, v in splits.items())}")
    ids = {n: i for i, n in enumerate(rs.names)}
    stems: dict[str, Record] = {}
    for recs in splits.values():
        for r in recs:
            missing = sorted(set(r.labels) - set(ids))
            if missing:
                raise ValueError(f"{r.image}: label(s) {', '.join(missing)} not among the classes {rs.names}")
            stem = _out_stem(r.name)
            if stem in stems and stems[stem] is not r:
                raise ValueError(f"two images would be written as {stem!r}: {stems[stem].image} and {r.image}")
            stems[stem] = r

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    summary: dict[str, dict[str, int]] = {}
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        for split, recs in splits.items():
            img_dir, lab_dir = tmp / "images" / split, tmp / "labels" / split
            img_dir.mkdir(parents=True)
            lab_dir.mkdir(parents=True)
            keys = ("images", "boxes", "source_images") + (("tiles", "empty_tiles_dropped", "boxes_in_no_tile") if tiling else ())
            stats: Counter = Counter(dict.fromkeys(keys, 0))
            for r in recs:
                _write_record(r, _out_stem(r.name), img_dir, lab_dir, ids, tiling, stats)
            if not stats["images"]:
                raise ValueError(f"split {split!r} has no images left after tiling (every tile was empty); use keep_empty or another split")
            summary[split] = dict(stats)
            LOGGER.info("%s: %d images, %d boxes", split, stats["images"], stats["boxes"])
        data = {"path": str(dst), **{s: f"images/{s}" for s in splits}, "names": dict(enumerate(rs.names))}
        text = f"# Imported by lwdet.data from {rs.source}\n" + "".join(f"# {line}\n" for line in header.splitlines())
        (tmp / "data.yaml").write_text(text + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(f"destination appeared while writing, not overwriting: {dst}")
        os.rename(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportSummary(dst, dst / "data.yaml", list(rs.names), summary, list(rs.notes))


def import_dataset(
    fmt: str,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    split: Sequence[float] = (0.8, 0.2),
    val_list: str | os.PathLike | None = None,
    seed: int = 0,
    tiling: TileOptions | None = None,
) -> ImportSummary:
    """Read ``src`` in ``fmt`` ('voc', 'coco', 'csv'), split it by image, write a YOLO dataset to the new folder ``dst``."""
    dst = Path(dst)
    if dst.exists() or dst.is_symlink():  # fail before reading a large source
        raise FileExistsError(f"destination already exists, not overwriting: {dst.absolute()}")
    if val_list is None:
        _check_ratios(split)
    rs = read_annotations(fmt, src, images)
    if val_list is not None:
        splits = split_by_list(rs.records, val_list)
        how = f"val list {Path(val_list).absolute()}"
    else:
        splits = split_records(rs.records, split, seed)
        how = f"split {','.join(f'{r:g}' for r in split)} seed {seed}"
    if tiling is not None:
        how += f"; tiles {tiling.size} px, overlap {tiling.overlap}, min visible {tiling.min_visible:g}, keep empty {tiling.keep_empty}"
    return write_yolo(rs, dst, splits, tiling, header=how)
