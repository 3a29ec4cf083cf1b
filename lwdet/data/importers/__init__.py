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

Modules, one job each: :mod:`.common` (records, probing, box checks), :mod:`.voc`, :mod:`.coco`,
:mod:`.csvfile` (readers), :mod:`.classes` (difficult boxes, rename / keep-list), :mod:`.split`
(by source image, before tiling), :mod:`.write` (the YOLO folder, tiles).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..tiling import TileOptions
from .classes import DIFFICULT_MODES, apply_difficult, parse_rename, select_classes
from .coco import read_coco
from .common import ImportSummary, Record, RecordSet
from .csvfile import read_csv
from .split import _check_ratios, split_by_list, split_by_names, split_records
from .voc import read_voc
from .write import FULL_VAL, write_yolo

__all__ = [
    "Record",
    "RecordSet",
    "ImportSummary",
    "READERS",
    "DIFFICULT_MODES",
    "read_voc",
    "read_coco",
    "read_csv",
    "read_annotations",
    "apply_difficult",
    "parse_rename",
    "select_classes",
    "split_records",
    "split_by_list",
    "split_by_names",
    "FULL_VAL",
    "write_yolo",
    "import_dataset",
]

READERS: dict[str, Callable[..., RecordSet]] = {"voc": read_voc, "coco": read_coco, "csv": read_csv}


def read_annotations(fmt: str, src: str | os.PathLike, images: str | os.PathLike | None = None) -> RecordSet:
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(READERS)}")
    if images is not None and fmt != "coco":
        raise ValueError(f"an images folder is only taken with the coco format (got format {fmt!r})")
    return read_coco(src, images) if fmt == "coco" else READERS[fmt](src)


def import_dataset(
    fmt: str,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    split: Sequence[float] = (0.8, 0.2),
    val_list: str | os.PathLike | None = None,
    val_names: Sequence[str] | None = None,
    seed: int = 0,
    tiling: TileOptions | None = None,
    difficult: str = "drop",
    rename: Mapping[str, str] | None = None,
    classes: Sequence[str] | None = None,
    full_val: bool = False,
) -> ImportSummary:
    """Read ``src`` in ``fmt`` ('voc', 'coco', 'csv'), split it by image, write a YOLO dataset to the new folder ``dst``.

    ``difficult``: what becomes of VOC difficult / COCO crowd boxes (:data:`DIFFICULT_MODES`); ``rename`` /
    ``classes``: see :func:`select_classes`. The split is by source image, before tiling: ``val_list`` (a file) or
    ``val_names`` (a list) name the val images, else ``split`` fractions with ``seed``. ``full_val``: also write the
    val images untiled to ``images/val-full`` / ``labels/val-full`` (for sliced inference on full-size images).
    """
    if val_list is not None and val_names is not None:
        raise ValueError("give the val images as a file (val_list) or as names (val_names), not both")
    dst = Path(dst)
    if dst.exists() or dst.is_symlink():  # fail before reading a large source
        raise FileExistsError(f"destination already exists, not overwriting: {dst.absolute()}")
    if val_list is None and val_names is None:
        _check_ratios(split)
    if difficult not in DIFFICULT_MODES:
        raise ValueError(f"difficult: unknown choice {difficult!r}; choose from {', '.join(DIFFICULT_MODES)}")
    rs = read_annotations(fmt, src, images)
    rs = select_classes(apply_difficult(rs, difficult), rename, classes)
    if val_list is not None:
        splits = split_by_list(rs.records, val_list)
        how = f"val list {Path(val_list).absolute()}"
    elif val_names is not None:
        splits = split_by_names(rs.records, val_names)
        how = f"val images {', '.join(map(str, val_names))}"
    else:
        splits = split_records(rs.records, split, seed)
        how = f"split {','.join(f'{r:g}' for r in split)} seed {seed}"
    how += f"; difficult/crowd boxes: {difficult}"
    if rename:
        how += f"; rename {','.join(f'{k}={v}' for k, v in rename.items())}"
    if classes:
        how += f"; classes {','.join(rs.names)}"
    if tiling is not None:
        how += f"; tiles {tiling.size} px, overlap {tiling.overlap}, min visible {tiling.min_visible:g}, keep empty {tiling.keep_empty}"
    if full_val:
        how += f"\nimages/{FULL_VAL}, labels/{FULL_VAL}: the val images untiled (sliced inference on full-size images)"
    return write_yolo(rs, dst, splits, tiling, header=how, full_val=full_val)
