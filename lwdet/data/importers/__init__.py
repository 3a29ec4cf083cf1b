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
from .split import _check_ratios, split_by_list, split_records
from .voc import read_voc
from .write import write_yolo

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
    seed: int = 0,
    tiling: TileOptions | None = None,
    difficult: str = "drop",
    rename: Mapping[str, str] | None = None,
    classes: Sequence[str] | None = None,
) -> ImportSummary:
    """Read ``src`` in ``fmt`` ('voc', 'coco', 'csv'), split it by image, write a YOLO dataset to the new folder ``dst``.

    ``difficult``: what becomes of VOC difficult / COCO crowd boxes (:data:`DIFFICULT_MODES`); ``rename`` /
    ``classes``: see :func:`select_classes`. The split is by source image, before tiling.
    """
    dst = Path(dst)
    if dst.exists() or dst.is_symlink():  # fail before reading a large source
        raise FileExistsError(f"destination already exists, not overwriting: {dst.absolute()}")
    if val_list is None:
        _check_ratios(split)
    if difficult not in DIFFICULT_MODES:
        raise ValueError(f"difficult: unknown choice {difficult!r}; choose from {', '.join(DIFFICULT_MODES)}")
    rs = read_annotations(fmt, src, images)
    rs = select_classes(apply_difficult(rs, difficult), rename, classes)
    if val_list is not None:
        splits = split_by_list(rs.records, val_list)
        how = f"val list {Path(val_list).absolute()}"
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
    return write_yolo(rs, dst, splits, tiling, header=how)
