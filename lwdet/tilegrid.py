"""The tile grid shared by tiled import (``lwdet.data.tiling``) and sliced inference (``lwdet.edge.slicing``).

Dependency-free (no numpy, torch or yaml), so the torch-free edge runtime and the data importer use one definition:
a model trained on ``--tile SIZE --overlap PX`` tiles is run over the very same windows.
"""

from __future__ import annotations

MIN_TILE = 32  # the detector's largest stride


def check_tile(size: int, overlap: int) -> None:
    """Raise ValueError unless ``size`` >= MIN_TILE and 0 <= ``overlap`` < ``size`` (pixels)."""
    if int(size) < MIN_TILE:
        raise ValueError(f"tile size must be >= {MIN_TILE} px, got {size}")
    if not 0 <= int(overlap) < int(size):
        raise ValueError(f"tile overlap must be in [0, {size}) px, got {overlap}")


def tile_offsets(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets along one side: stride ``size - overlap``, the last tile aligned to the far border.

    A side no longer than ``size`` gets the single offset 0 (that tile is the whole side).
    """
    if length <= size:
        return [0]
    offsets = list(range(0, length - size, size - overlap))
    offsets.append(length - size)  # the last tile ends exactly at the border instead of running past it
    return offsets


def tile_windows(width: int, height: int, size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Every tile of a ``width`` x ``height`` image as (x0, y0, x1, y1), x1/y1 exclusive, row-major."""
    check_tile(size, overlap)
    tw, th = min(size, width), min(size, height)
    return [
        (x0, y0, x0 + tw, y0 + th)
        for y0 in tile_offsets(height, size, overlap)
        for x0 in tile_offsets(width, size, overlap)
    ]
