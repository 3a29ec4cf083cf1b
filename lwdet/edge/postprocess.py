"""Decode a Detect head's export output, filter, class-aware NMS and undo the letterbox, in numpy.

The output is one (4 + nc, N) array: rows 0-3 are cx, cy, w, h in letterboxed-input pixels, rows 4.. the class
scores, already sigmoid'ed. Defaults and semantics follow the engine's ``non_max_suppression`` as its predictor
calls it (conf 0.25, iou 0.7, max_det 300, best class per box, classes separated by a coordinate offset).
"""

from __future__ import annotations

import numpy as np

from lwdet.edge.preprocess import Letterbox

CONF = 0.25
IOU = 0.7
MAX_DET = 300
MAX_NMS = 30000  # boxes entering NMS, highest scores first
MAX_WH = 7680  # per-class coordinate offset (pixels) that keeps classes apart in one NMS pass


def xywh2xyxy(boxes: np.ndarray) -> np.ndarray:
    """(n, 4) centre x, centre y, width, height -> (n, 4) x1, y1, x2, y2."""
    out = np.empty_like(boxes)
    half = boxes[:, 2:4] / 2
    out[:, :2] = boxes[:, :2] - half
    out[:, 2:] = boxes[:, :2] + half
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = IOU, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS on (n, 4) xyxy boxes: indices kept, best first; a box goes when its IoU with a kept one is > iou."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def non_max_suppression(
    pred: np.ndarray,
    conf: float = CONF,
    iou: float = IOU,
    max_det: int = MAX_DET,
    classes: list[int] | None = None,
    agnostic: bool = False,
) -> np.ndarray:
    """(4 + nc, N) head output -> (n, 6) float32 rows x1, y1, x2, y2, score, class_id in letterboxed pixels."""
    if pred.ndim == 3:  # (1, 4 + nc, N)
        pred = pred[0]
    if pred.ndim != 2 or pred.shape[0] < 5:
        raise ValueError(f"expected a (4 + nc, N) detection output, got shape {pred.shape}")
    if not (0 <= conf <= 1 and 0 <= iou <= 1):
        raise ValueError(f"conf and iou must lie in [0, 1], got conf={conf}, iou={iou}")
    scores_all = pred[4:]  # (nc, N)
    cls = scores_all.argmax(0)
    score = scores_all[cls, np.arange(pred.shape[1])]
    keep = score > conf
    if classes is not None:
        keep &= np.isin(cls, classes)
    idx = np.flatnonzero(keep)
    if idx.size > MAX_NMS:
        idx = idx[np.argsort(-score[idx], kind="stable")[:MAX_NMS]]
    if not idx.size:
        return np.zeros((0, 6), dtype=np.float32)
    boxes = xywh2xyxy(pred[:4, idx].T)
    score, cls = score[idx], cls[idx]
    offset = 0 if agnostic else cls[:, None].astype(boxes.dtype) * MAX_WH
    kept = nms(boxes + offset, score, iou, max_keep=max_det)
    return np.concatenate([boxes[kept], score[kept, None], cls[kept, None]], 1).astype(np.float32)


def scale_boxes(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """(n, 4) xyxy in letterboxed pixels -> the original image's pixels, clipped to it (a new array)."""
    (rx, ry), (px, py) = lb.ratio, lb.pad
    h0, w0 = lb.shape
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = ((out[:, [0, 2]] - px) / rx).clip(0, w0)
    out[:, [1, 3]] = ((out[:, [1, 3]] - py) / ry).clip(0, h0)
    return out


def postprocess(pred: np.ndarray, lb: Letterbox, conf: float = CONF, iou: float = IOU, max_det: int = MAX_DET,
                classes: list[int] | None = None, agnostic: bool = False) -> np.ndarray:
    """Head output -> (n, 6) rows x1, y1, x2, y2, score, class_id in the original image's pixels, best first."""
    det = non_max_suppression(pred, conf, iou, max_det, classes, agnostic)
    det[:, :4] = scale_boxes(det[:, :4], lb)
    return det
