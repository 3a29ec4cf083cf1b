"""Sliced inference timed: end-to-end ms per image over the tile grid (``lwdet.edge.slicing``), tiles/s, ms per tile."""

from __future__ import annotations

import time

import numpy as np

from lwdet.edge.bench.timing import summarize, time_loops
from lwdet.edge.slicing import OVERLAP, TILE, Detector, sliced_predict
from lwdet.tilegrid import tile_windows


def time_sliced(
    detector: Detector,
    image: np.ndarray,
    tile: int = TILE,
    overlap: int = OVERLAP,
    full_image: bool = False,
    loops: int = 10,
    warmup: int = 2,
    **predict_kwargs,
) -> dict:
    """End-to-end sliced inference on one image (crop, letterbox, inference, NMS, merge): per-image ms stats,
    tiles per image, tiles/s and ms per tile (from the mean), detections of the last run."""
    h, w = image.shape[:2]
    n_tiles = len(tile_windows(w, h, tile, overlap))
    n_tiles += 1 if full_image and n_tiles > 1 else 0  # the full-image pass counts as one more input
    last = []

    def once():
        last[:] = [sliced_predict(detector, image, tile, overlap, full_image, **predict_kwargs)]

    stats = summarize(time_loops(once, loops, warmup))
    return {
        "image": f"{w}x{h}",
        "tile": tile,
        "overlap": overlap,
        "full_image": full_image,
        "tiles": n_tiles,
        **{f"sliced_{k}": v for k, v in stats.items() if k != "fps"},
        "tiles_per_s": 1e3 * n_tiles / stats["mean_ms"],
        "ms_per_tile": stats["mean_ms"] / n_tiles,
        "detections": len(last[0]),
        "loops": loops,
        "warmup": warmup,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def bench_sliced(
    folder,
    image: np.ndarray,
    tile: int = TILE,
    overlap: int = OVERLAP,
    threads: int = 1,
    full_image: bool = False,
    loops: int = 10,
    warmup: int = 2,
    **predict_kwargs,
) -> dict:
    """:func:`time_sliced` for an ncnn export folder: one row (model, threads, input size + the timing)."""
    from lwdet.edge.runner import NcnnDetector

    with NcnnDetector(folder, threads=threads) as det:
        row = time_sliced(det, image, tile, overlap, full_image, loops, warmup, **predict_kwargs)
        return {
            "kind": "sliced",
            "model": det.name,
            "runtime": "ncnn",
            "threads": threads,
            "input": f"{det.imgsz[1]}x{det.imgsz[0]}x3",
            **row,
            "path": str(det.folder),
        }
