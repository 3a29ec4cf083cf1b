"""Decode a Detect head's export output, filter, class-aware NMS (OpenCV's) and undo the letterbox.

The output is one (4 + nc, N) array: rows 0-3 are cx, cy, w, h in letterboxed-input pixels, rows 4.. the class
scores, already sigmoid'ed. Defaults and semantics follow the engine's ``non_max_suppression`` as its predictor
calls it (conf 0.25, iou 0.7, max_det 300, best class per box, NMS within each class unless agnostic).
"""

from __future__ import annotations

import cv2
import numpy as np

from lwdet.edge.preprocess import Letterbox

CONF = 0.25
IOU = 0.7
MAX_DET = 300
MAX_NMS = 30000  # boxes entering NMS, highest scores first


def xywh2xyxy(boxes: np.ndarray) -> np.ndarray:
    """(n, 4) centre x, centre y, width, height -> (n, 4) x1, y1, x2, y2."""
    out = np.empty_like(boxes)
    half = boxes[:, 2:4] / 2
    out[:, :2] = boxes[:, :2] - half
    out[:, 2:] = boxes[:, :2] + half
    return out


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou: float = IOU,
    max_keep: int | None = None,
    class_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy NMS on (n, 4) xyxy boxes with OpenCV (``cv2.dnn.NMSBoxes``; ``NMSBoxesBatched`` per class when
    ``class_ids`` is given): indices kept, best first; a box goes when its IoU with a kept one of its class is > iou.
    Scores must be > 0 (sigmoid outputs are)."""
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    xywh = np.asarray(boxes, dtype=np.float64).copy()
    xywh[:, 2:] -= xywh[:, :2]
    scores = np.asarray(scores, dtype=np.float32)
    floor = 0.0  # OpenCV keeps scores > 0 (it refuses a negative threshold); callers filter by confidence first
    if class_ids is None:
        kept = cv2.dnn.NMSBoxes(xywh, scores, floor, float(iou))
    else:
        kept = cv2.dnn.NMSBoxesBatched(xywh, scores, np.asarray(class_ids, dtype=np.int32), floor, float(iou))
    # not OpenCV's top_k: it caps the candidates before suppression, not the boxes kept
    return np.asarray(kept, dtype=np.int64).reshape(-1)[:max_keep]


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
    kept = nms(boxes, score, iou, max_keep=max_det, class_ids=None if agnostic else cls)
    return np.concatenate([boxes[kept], score[kept, None], cls[kept, None]], 1).astype(np.float32)


def scale_boxes(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """(n, 4) xyxy in letterboxed pixels -> the original image's pixels, clipped to it (a new array)."""
    (rx, ry), (px, py) = lb.ratio, lb.pad
    h0, w0 = lb.shape
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = ((out[:, [0, 2]] - px) / rx).clip(0, w0)
    out[:, [1, 3]] = ((out[:, [1, 3]] - py) / ry).clip(0, h0)
    return out


def postprocess(
    pred: np.ndarray,
    lb: Letterbox,
    conf: float = CONF,
    iou: float = IOU,
    max_det: int = MAX_DET,
    classes: list[int] | None = None,
    agnostic: bool = False,
) -> np.ndarray:
    """Head output -> (n, 6) rows x1, y1, x2, y2, score, class_id in the original image's pixels, best first."""
    det = non_max_suppression(pred, conf, iou, max_det, classes, agnostic)
    det[:, :4] = scale_boxes(det[:, :4], lb)
    return det
