"""Dataset-wide warnings: a class missing from a split; objects too small to learn at the training input size."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .report import Report

__all__ = ["MIN_OBJECT_PX", "class_split_warnings", "tiny_object_warnings"]

# Under ~4 px an object covers half a cell of the finest (stride-8) grid, and the engine's augmentation drops
# boxes narrower than 2 px (box_candidates, wh_thr=2) after its random down-scaling (scale=0.5).
MIN_OBJECT_PX = 4


def class_split_warnings(report: Report, add: Callable[[str, str], None]) -> None:
    """One warning per (class, split) where the class has boxes in another split and none in this one."""
    splits = list(report.class_counts)
    for name in report.names.values():
        have = {s: report.class_counts[s].get(name, 0) for s in splits}
        if not any(have.values()):
            continue
        where = ", ".join(f"{n} in {s}" for s, n in have.items() if n)
        for s, n in have.items():
            if not n:
                add(
                    "class_missing_in_split",
                    f"class {name!r} has boxes in one split and none in {s} ({where}): "
                    f"{'its accuracy cannot be measured' if s != 'train' else 'the model cannot learn it'}",
                )


def tiny_object_warnings(
    split: str,
    sized: Sequence[tuple[tuple[int, int], list[tuple[int, float, float]]]],
    imgsz: int,
    add: Callable[[str, str], None],
    min_px: float = MIN_OBJECT_PX,
) -> None:
    """Warn when boxes of ``split`` will be under ``min_px`` at ``imgsz`` (the engine scales the long side to it).

    ``sized``: per image ((w, h), [(class, box w, box h) normalised]). Says which ``--imgsz`` or import tile size
    would keep every box at ``min_px`` or more.
    """
    n_boxes = n_tiny = 0
    smallest = None  # (train px, native px, (w, h))
    for (w, h), rows in sized:
        scale = imgsz / max(w, h)
        for _, bw, bh in rows:
            n_boxes += 1
            native = min(bw * w, bh * h)
            px = native * scale
            if px < min_px:
                n_tiny += 1
                if smallest is None or px < smallest[0]:
                    smallest = (px, native, (w, h))
    if not n_tiny:
        return
    px, native, (w, h) = smallest
    need = 32 * math.ceil(imgsz * min_px / px / 32)
    tile = 32 * math.floor(native * imgsz / min_px / 32)
    how = f"--imgsz {need} would keep them all at >= {min_px:g} px"
    if 32 <= tile < max(w, h):
        how += f"; or tile the source at import (--tile {tile}) and train at --imgsz {imgsz}"
    add(
        "tiny_objects",
        f"{n_tiny} of {n_boxes} boxes in {split} will be under {min_px:g} px at --imgsz {imgsz} "
        f"(smallest: {px:.1f} px, a {native:.0f} px box in a {w}x{h} image); {how}",
    )
