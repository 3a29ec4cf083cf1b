"""Sliced inference: run a detector over overlapping tiles of a large image, merge into full-image boxes (as SAHI).

A model trained on ``--tile SIZE --overlap PX`` tiles (``python -m lwdet.data import``) sees objects at their
native pixel size; letterboxing a 2,400 px orthophoto whole into 640 px shrinks 40 px crowns to 10 px. Here the
image is cut into the same grid of windows as the import (:func:`lwdet.tilegrid.tile_windows`), each window goes
through the detector, and the boxes are shifted back and merged:

1. a box that touches a window edge inside the image (not the image border) is *cut*: the object runs past the
   window. It is dropped when a same-class box that is not cut covers at least ``cut_ios`` of it (intersection
   over the cut box's area): the neighbouring window saw the whole object.
2. class-wise NMS across all windows (OpenCV's ``cv2.dnn.NMSBoxesBatched``) removes the seam duplicates.

An object no larger than ``overlap`` lies wholly inside at least one window, so the overlap should be at least the
largest object's size; larger objects come out whole only from the optional full-image pass (``full_image``).
Torch-free: numpy and OpenCV; the detector is anything with ``predict(image_bgr, **kw) -> (n, 6)`` rows
x1, y1, x2, y2, score, class_id in its input image's pixels (:class:`lwdet.edge.NcnnDetector`, or the workstation's
engine predictor in :mod:`lwdet.sliced_eval`).
"""

from __future__ import annotations

import logging
from typing import Protocol

import cv2
import numpy as np

from lwdet.tilegrid import tile_windows

LOGGER = logging.getLogger(__name__)

TILE, OVERLAP = 640, 64
MERGE_IOU = 0.5  # seam duplicates come from different windows and agree less than one pass's boxes
CUT_IOS = 0.6
EDGE_MARGIN = 2.0  # px: a box side this close to an inner window edge counts as cut there


class Detector(Protocol):
    def predict(self, image_bgr: np.ndarray, **kwargs) -> np.ndarray: ...


def _rows(det) -> np.ndarray:
    det = np.asarray(det, dtype=np.float32).reshape(-1, 6)
    return det


def cut_mask(
    det: np.ndarray, window: tuple[int, int, int, int], width: int, height: int, margin: float = EDGE_MARGIN
) -> np.ndarray:
    """(n,) bool: boxes (full-image pixels) touching an edge of ``window`` that is not the image border."""
    x0, y0, x1, y1 = window
    b = det[:, :4]
    return (
        ((x0 > 0) & (b[:, 0] <= x0 + margin))
        | ((y0 > 0) & (b[:, 1] <= y0 + margin))
        | ((x1 < width) & (b[:, 2] >= x1 - margin))
        | ((y1 < height) & (b[:, 3] >= y1 - margin))
    )


def _covered(det: np.ndarray, cut: np.ndarray, cut_ios: float, chunk: int = 256) -> np.ndarray:
    """(n,) bool: cut boxes of which an uncut same-class box covers >= ``cut_ios`` of the area."""
    out = np.zeros(len(det), bool)
    whole = det[~cut]
    if not len(whole):
        return out
    idx = np.flatnonzero(cut)
    for start in range(0, len(idx), chunk):
        i = idx[start : start + chunk]
        a, b = det[i, None, :], whole[None]  # (m, 1, 6), (1, n, 6)
        iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
        ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
        area = np.maximum((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]), 1e-9)
        out[i] = ((iw * ih / area >= cut_ios) & (a[..., 5] == b[..., 5])).any(1)
    return out


def merge_detections(
    det: np.ndarray,
    cut: np.ndarray | None = None,
    iou: float = MERGE_IOU,
    cut_ios: float = CUT_IOS,
    max_det: int | None = None,
) -> np.ndarray:
    """Merge (n, 6) full-image detections from several windows: drop covered cut boxes, then class-wise NMS."""
    det = _rows(det)
    if not len(det):
        return det
    if cut is not None and cut.any():
        det = det[~_covered(det, np.asarray(cut, bool), cut_ios)]
    xywh = np.concatenate([det[:, :2], det[:, 2:4] - det[:, :2]], 1).astype(np.float64)
    keep = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(), det[:, 4].astype(np.float64).tolist(), det[:, 5].astype(np.int32).tolist(), -1.0, float(iou)
    )
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)  # best first
    return det[keep[:max_det] if max_det else keep]


def sliced_predict(
    detector: Detector,
    image: np.ndarray,
    tile: int = TILE,
    overlap: int = OVERLAP,
    full_image: bool = False,
    *,
    conf: float | None = None,
    iou: float | None = None,
    classes: list[int] | None = None,
    window_max_det: int | None = None,
    max_det: int | None = None,
    merge_iou: float = MERGE_IOU,
    cut_ios: float = CUT_IOS,
) -> np.ndarray:
    """(n, 6) rows x1, y1, x2, y2, score, class_id in ``image``'s pixels, best first, from ``tile`` x ``tile``
    windows overlapping by ``overlap`` px (plus the whole image letterboxed, with ``full_image``).

    ``conf``, ``iou``, ``classes`` and ``window_max_det`` (as ``max_det``) go to each detector call, None keeping
    the detector's own; ``max_det`` caps the merged result. An image no larger than one tile is one plain
    ``predict`` call, so its boxes are exactly whole-image inference's.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR image, got an array of shape {image.shape}")
    kw = {k: v for k, v in dict(conf=conf, iou=iou, classes=classes, max_det=window_max_det).items() if v is not None}
    h, w = image.shape[:2]
    windows = tile_windows(w, h, tile, overlap)
    if len(windows) == 1:  # nothing to slice: exactly whole-image inference
        det = _rows(detector.predict(image, **kw))
        return det[:max_det] if max_det else det
    parts, cuts = [], []
    for x0, y0, x1, y1 in windows:
        det = _rows(detector.predict(np.ascontiguousarray(image[y0:y1, x0:x1]), **kw)).copy()
        det[:, [0, 2]] += x0
        det[:, [1, 3]] += y0
        parts.append(det)
        cuts.append(cut_mask(det, (x0, y0, x1, y1), w, h))
    if full_image:
        parts.append(_rows(detector.predict(image, **kw)))
        cuts.append(np.zeros(len(parts[-1]), bool))
    return merge_detections(np.concatenate(parts), np.concatenate(cuts), merge_iou, cut_ios, max_det)
