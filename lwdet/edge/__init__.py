"""Torch-free runtime for lwdet ncnn exports: pre/post-processing, ncnn runners, sliced inference, per-board numerics
(runs on a Pi). Two subpackages build on it: ``lwdet.edge.bench`` (timing, system info, Pi projection, bench output)
and ``lwdet.edge.app`` (the Pi app's sources, outputs and overlay).

Needs only numpy, ncnn and OpenCV (image I/O and the letterbox resize); never imports torch, the engine or yaml.

    from lwdet.edge import NcnnDetector
    det = NcnnDetector("runs/exp/yolov5n/weights/best_ncnn_model", threads=4)
    for xyxy, score, class_id, class_name in det.detect(cv2.imread("bus.jpg")):
        ...
"""

from lwdet.artifacts import ExportMeta, export_siblings
from lwdet.edge.postprocess import nms, non_max_suppression, postprocess, scale_boxes, xywh2xyxy
from lwdet.edge.preprocess import Letterbox, letterbox, preprocess
from lwdet.edge.runner import Detection, NcnnDetector, NcnnParamNet, ParamGraph, parse_param, read_export_meta

__all__ = [
    "Detection",
    "ExportMeta",
    "Letterbox",
    "NcnnDetector",
    "NcnnParamNet",
    "ParamGraph",
    "export_siblings",
    "letterbox",
    "nms",
    "non_max_suppression",
    "parse_param",
    "postprocess",
    "preprocess",
    "read_export_meta",
    "scale_boxes",
    "xywh2xyxy",
]
