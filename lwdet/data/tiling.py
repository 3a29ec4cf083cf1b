"""Cut large images (aerial, satellite, scans) into overlapping square tiles with their boxes.

Pure geometry: no image I/O here; :func:`lwdet.data.importers.write_yolo` crops and saves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lwdet.tilegrid import MIN_TILE, tile_offsets  # one grid for import and sliced inference

__all__ = ["TileOptions", "Tile", "tile_offsets", "tile_boxes"]


@dataclass(frozen=True)
class TileOptions:
    """``size`` x ``size`` tiles overlapping by ``overlap`` px; see :func:`tile_boxes`."""

    size: int
    overlap: int = 0
    min_visible: float = 0.5
    keep_empty: bool = False

    def __post_init__(self):
        if int(self.size) < MIN_TILE:
            raise ValueError(f"tile size must be >= {MIN_TILE} px, got {self.size}")
        if not 0 <= int(self.overlap) < int(self.size):
            raise ValueError(f"tile overlap must be in [0, {self.size}) px, got {self.overlap}")
        if not 0.0 < float(self.min_visible) <= 1.0:
            raise ValueError(f"min_visible must be in (0, 1], got {self.min_visible}")


@dataclass(frozen=True)
class Tile:
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int
    boxes: np.ndarray  # float64 (N, 4) x0, y0, x1, y1 in tile pixels, clipped to the tile
    index: np.ndarray  # int64 (N,) rows of the source boxes these came from

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def tile_boxes(width: int, height: int, boxes: np.ndarray, opts: TileOptions) -> list[Tile]:
    """Every tile of a ``width`` x ``height`` image with the boxes it keeps (row-major order).

    A box goes into a tile, clipped to it, when at least ``opts.min_visible`` of its area lies
    inside the tile (and the clipped box is at least 1 px on each side). Empty tiles are
    returned too; dropping them is the caller's choice (``opts.keep_empty``).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    tw, th = min(opts.size, width), min(opts.size, height)
    tiles = []
    for y0 in tile_offsets(height, opts.size, opts.overlap):
        for x0 in tile_offsets(width, opts.size, opts.overlap):
            clipped = np.stack(
                [
                    np.clip(boxes[:, 0], x0, x0 + tw),
                    np.clip(boxes[:, 1], y0, y0 + th),
                    np.clip(boxes[:, 2], x0, x0 + tw),
                    np.clip(boxes[:, 3], y0, y0 + th),
                ],
                axis=1,
            )
            cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
            # tiny tolerance: a box exactly half inside must count as 0.5 visible despite float rounding
            keep = (cw * ch >= opts.min_visible * area - 1e-9) & (cw >= 1.0) & (ch >= 1.0)
            index = np.flatnonzero(keep)
            local = clipped[index] - np.array([x0, y0, x0, y0], np.float64)
            tiles.append(Tile(x0, y0, x0 + tw, y0 + th, local, index.astype(np.int64)))
    return tiles
