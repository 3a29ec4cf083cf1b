"""mAP by pycocotools' COCOeval: the one definition lwdet uses beside the engine's validator.

``max_dets``: how many detections per image count, best score first. None (lwdet's default) counts every detection
(maxDets = the most any image has), as the engine's validator does up to its predictor's ``max_det``; COCO's own
default is 100, which drops a crowded image's weakest detections. The figure is read from COCOeval's precision array
at that cap (``summarize()`` hard-codes maxDets=100 in its first line).
"""

from __future__ import annotations

import contextlib
import io


def coco_map(gt: dict, detections: list[dict], max_dets: int | None = None) -> dict[str, float]:
    """{"mAP50", "mAP50-95"} (all areas) of ``detections`` (COCO results: image_id, category_id, bbox as x, y, w, h,
    score) against ``gt`` (a COCO dataset: images, annotations, categories); 0 for both when nothing was detected."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not detections:
        return {"mAP50": 0.0, "mAP50-95": 0.0}
    per_image: dict = {}
    for d in detections:
        per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(detections), "bbox")
        ev.params.maxDets = [int(max_dets) if max_dets else max(per_image.values())]
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][:, :, :, 0, -1]  # (IoU thresholds, recall points, classes), -1 where undefined
    mean = lambda a: float(a[a > -1].mean()) if (a > -1).any() else 0.0  # noqa: E731
    return {"mAP50": mean(p[0]), "mAP50-95": mean(p)}
