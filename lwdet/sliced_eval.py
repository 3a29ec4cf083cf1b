"""Accuracy on full-size images: sliced inference vs whole-image letterbox inference, same model, same labels.

The detector is an ncnn export (:class:`lwdet.edge.NcnnDetector`) or a PyTorch run / weights file through the
engine's own predictor (:class:`EngineDetector`); both go through the same merge code
(:func:`lwdet.edge.slicing.sliced_predict`). Matching and mAP are the engine's (``DetectionValidator``'s
``_process_batch`` and ``DetMetrics``); ``lwdet.coco.coco_map`` is pycocotools' figure for the same detections, as
an independent check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lwdet.artifacts import NCNN_PARAM, best_weights
from lwdet.coco import coco_map
from lwdet.edge.slicing import OVERLAP, TILE, sliced_predict

LOGGER = logging.getLogger(__name__)

IMAGES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CONF, IOU, MAX_DET = 0.001, 0.7, 3000  # the engine's val conf and iou; large images hold far more than 300 objects


class EngineDetector:
    """The engine's predictor on a PyTorch checkpoint, with :class:`lwdet.edge.NcnnDetector`'s ``predict``."""

    def __init__(
        self,
        weights: str | Path,
        imgsz: int = 640,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        device: str = "cpu",
        trust: bool = False,
    ):
        from lwdet import YOLO

        weights = Path(weights)
        self.model, self.weights = YOLO(str(weights), trust=trust), weights  # allow-listed unless trusted
        self.names = [self.model.names[i] for i in sorted(self.model.names)]
        self.imgsz, self.conf, self.iou, self.max_det, self.device = imgsz, conf, iou, max_det, device

    @property
    def name(self) -> str:
        return self.weights.stem

    def predict(
        self,
        image_bgr: np.ndarray,
        conf: float | None = None,
        iou: float | None = None,
        max_det: int | None = None,
        classes: list[int] | None = None,
    ) -> np.ndarray:
        """(n, 6) rows x1, y1, x2, y2, score, class_id in the image's pixels, best first."""
        r = self.model.predict(
            image_bgr,
            imgsz=self.imgsz,
            conf=self.conf if conf is None else conf,
            iou=self.iou if iou is None else iou,
            classes=classes,
            device=self.device,
            max_det=self.max_det if max_det is None else max_det,
            verbose=False,
        )[0]
        return r.boxes.data[:, :6].cpu().numpy().astype(np.float32)


def load_detector(model: str | Path, imgsz: int | None = None, threads: int = 1, trust: bool = False):
    """An ncnn export folder -> NcnnDetector; a run folder (its weights/best.pt) or a .pt -> EngineDetector."""
    from lwdet.edge import NcnnDetector

    model = Path(model)
    if (model / NCNN_PARAM).is_file():
        det = NcnnDetector(model, threads=threads)
        if imgsz and tuple(det.imgsz) != (imgsz, imgsz):
            raise ValueError(f"{model}: exported at {det.imgsz[1]}x{det.imgsz[0]}, not --imgsz {imgsz}")
        return det
    weights = best_weights(model) if model.is_dir() else model
    if not weights.is_file() or weights.suffix != ".pt":
        raise FileNotFoundError(f"{model}: not an ncnn export folder, a run folder with weights/best.pt, or a .pt")
    return EngineDetector(weights, imgsz or 640, trust=trust)


def read_labels(label_file: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A YOLO label file -> (class ids (n,), xyxy boxes (n, 4) in pixels); a missing file is an image without boxes."""
    if not label_file.is_file():
        return np.zeros(0), np.zeros((0, 4))
    rows = [line.split() for line in label_file.read_text().splitlines() if line.strip()]
    for n, r in enumerate(rows, 1):
        if len(r) != 5:
            raise ValueError(f"{label_file}:{n}: expected 'class cx cy w h' (5 numbers), got {len(r)} fields")
    a = np.array(rows, dtype=np.float64).reshape(-1, 5)
    cx, cy, w, h = a[:, 1] * width, a[:, 2] * height, a[:, 3] * width, a[:, 4] * height
    return a[:, 0], np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def find_images(images: str | Path, labels: str | Path | None = None) -> list[tuple[Path, Path]]:
    """(image, label file) pairs: ``labels/<stem>.txt``, or the engine's images/ -> labels/ convention."""
    from ultralytics.data.utils import img2label_paths

    images = Path(images)
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGES) if images.is_dir() else [images]
    if not files or not files[0].is_file():
        raise FileNotFoundError(f"{images}: no images ({', '.join(IMAGES)})")
    lab = (
        [Path(labels) / f"{f.stem}.txt" for f in files]
        if labels
        else [Path(p) for p in img2label_paths([str(f) for f in files])]
    )
    return list(zip(files, lab))


@dataclass
class Evaluation:
    """Everything :func:`evaluate` saw for one mode, in the engine's and COCO's terms."""

    mode: str
    names: list[str]
    truths: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # per image (cls, xyxy)
    preds: list[np.ndarray] = field(default_factory=list)  # per image (n, 6)
    seconds: float = 0.0

    def engine_metrics(self) -> dict[str, float]:
        """precision, recall, mAP50, mAP50-95 from the engine's matching and ``DetMetrics``."""
        return engine_map(self.truths, self.preds, self.names)

    def coco_metrics(self) -> dict[str, float]:
        """mAP50, mAP50-95 through pycocotools (``lwdet.coco.coco_map``: every detection counts)."""
        return coco_map(*coco_inputs(self.truths, self.preds, self.names))


def engine_map(
    truths: Sequence[tuple[np.ndarray, np.ndarray]], preds: Sequence[np.ndarray], names: Sequence[str]
) -> dict[str, float]:
    """mAP through the engine: ``DetectionValidator._process_batch`` matching, ``DetMetrics`` AP (as its val)."""
    import tempfile

    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import DetMetrics

    with tempfile.TemporaryDirectory(prefix="lwdet-sliced-") as tmp:
        validator = DetectionValidator(save_dir=Path(tmp), args={"task": "detect", "plots": False})
    metrics = DetMetrics(names=dict(enumerate(names)))
    for i, ((cls, boxes), det) in enumerate(zip(truths, preds)):
        det = np.asarray(det, np.float32).reshape(-1, 6)
        tp = validator._process_batch(
            {"bboxes": torch.from_numpy(det[:, :4]), "cls": torch.from_numpy(det[:, 5])},
            {"bboxes": torch.from_numpy(boxes).float(), "cls": torch.from_numpy(cls)},
        )
        metrics.update_stats(
            {
                "tp": tp["tp"],
                "conf": det[:, 4],
                "pred_cls": det[:, 5],
                "target_cls": cls,
                "target_img": np.unique(cls),
                "im_name": f"image{i}",
            }
        )
    metrics.process(plot=False)
    p, r, map50, map5095 = (float(v) for v in metrics.mean_results())
    return {"precision": p, "recall": r, "mAP50": map50, "mAP50-95": map5095}


def coco_inputs(
    truths: Sequence[tuple[np.ndarray, np.ndarray]], preds: Sequence[np.ndarray], names: Sequence[str]
) -> tuple[dict, list[dict]]:
    """(COCO ground truth, COCO results) of per-image (cls, xyxy) truths and (n, 6) detections, for ``coco_map``."""
    images, anns, dets = [], [], []
    for i, ((cls, boxes), det) in enumerate(zip(truths, preds)):
        images.append({"id": i})
        for c, (x1, y1, x2, y2) in zip(cls, boxes):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(c),
                    "iscrowd": 0,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                }
            )
        dets += [
            {
                "image_id": i,
                "category_id": int(d[5]),
                "score": float(d[4]),
                "bbox": [float(d[0]), float(d[1]), float(d[2] - d[0]), float(d[3] - d[1])],
            }
            for d in det
        ]
    gt = {"images": images, "annotations": anns, "categories": [{"id": i} for i in range(len(names))]}
    return gt, dets


def evaluate(
    detector,
    images: str | Path,
    labels: str | Path | None = None,
    tile: int = TILE,
    overlap: int = OVERLAP,
    full_image: bool = False,
    conf: float = CONF,
    iou: float = IOU,
    max_det: int = MAX_DET,
    progress: Callable | None = None,
) -> dict[str, Evaluation]:
    """Run ``letterbox`` (the whole image, letterboxed once) and ``sliced`` inference over full-size images."""
    pairs = find_images(images, labels)
    names = list(detector.names)
    modes = {
        "letterbox": lambda im: detector.predict(im, conf=conf, iou=iou, max_det=max_det),
        "sliced": lambda im: sliced_predict(
            detector, im, tile, overlap, full_image, conf=conf, iou=iou, max_det=max_det, window_max_det=max_det
        ),
    }
    out = {m: Evaluation(m, names) for m in modes}
    detector.predict(np.zeros((64, 64, 3), np.uint8))  # untimed: the engine builds its predictor on the first call
    for image_file, label_file in progress(pairs) if progress else pairs:
        image = cv2.imread(str(image_file))
        if image is None:
            raise ValueError(f"{image_file}: cannot read this image")
        truth = read_labels(label_file, image.shape[1], image.shape[0])
        for mode, fn in modes.items():
            t0 = time.perf_counter()
            det = np.asarray(fn(image), np.float32).reshape(-1, 6)
            out[mode].seconds += time.perf_counter() - t0
            out[mode].truths.append(truth)
            out[mode].preds.append(det)
    return out


def table(results: dict[str, Evaluation], coco: bool = True) -> list[dict]:
    """One row per mode: images, boxes, detections, engine P / R / mAP50 / mAP50-95, COCO's, ms per image."""
    rows = []
    for mode, ev in results.items():
        row = {
            "mode": mode,
            "images": len(ev.preds),
            "boxes": int(sum(len(c) for c, _ in ev.truths)),
            "detections": int(sum(len(d) for d in ev.preds)),
            **ev.engine_metrics(),
        }
        if coco:
            row.update({f"coco_{k}": v for k, v in ev.coco_metrics().items()})
        row["ms_per_image"] = 1e3 * ev.seconds / max(len(ev.preds), 1)
        rows.append(row)
    return rows
