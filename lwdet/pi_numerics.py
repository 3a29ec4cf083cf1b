"""Per-board numerics of an ncnn export: raw-output differences against x86 and pycocotools mAP50-95.

Each board run (``lwdet.edge.numerics``, written by ``tools/pi_numerics.py measure``) leaves ``<tag>.npy`` (raw
outputs on fixed inputs) and ``<tag>.json`` (detections on the val images). ``board_table`` compares every run with
the x86 run (tag ``x86``) and puts each mAP beside the PyTorch figure from the export's parity.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lwdet.coco import coco_map

REFERENCE = "x86"


def raw_difference(ref: np.ndarray, out: np.ndarray) -> dict:
    """Max |difference| of boxes (pixels, rows 0-3) and scores (rows 4+), and how many anchors moved > 1 px."""
    if ref.shape != out.shape:
        raise ValueError(f"raw outputs differ in shape: {ref.shape} vs {out.shape}")
    box = np.abs(out[:, :4] - ref[:, :4])
    score = np.abs(out[:, 4:] - ref[:, 4:])
    return {
        "box_max_px": float(box.max()),
        "score_max": float(score.max()),
        "anchors_over_1px": int((box.max(axis=1) > 1).sum()),
        "anchors": int(box.shape[0] * box.shape[2]),
    }


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    tl, br = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.clip(br - tl, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


def detection_changes(ref: dict[str, list], dets: dict[str, list], conf: float = 0.25, iou: float = 0.9) -> dict:
    """Detections at ``conf`` or above: how many x86 has, and how many of them (or of the board's) have no
    same-class partner at IoU >= ``iou`` in the other run (appeared or vanished)."""
    total = changed = 0
    for name in ref:
        a = np.array([d for d in ref[name] if d[4] >= conf], dtype=float).reshape(-1, 6)
        b = np.array([d for d in dets.get(name, []) if d[4] >= conf], dtype=float).reshape(-1, 6)
        total += len(a)
        if len(a) and len(b):
            same = (_iou(a, b) >= iou) & (a[:, None, 5] == b[None, :, 5])
            changed += int((~same.any(1)).sum() + (~same.any(0)).sum())
        else:
            changed += len(a) + len(b)
    return {"dets_x86": total, "dets_changed": changed}


def coco_ground_truth(labels: str | Path, sizes: dict[str, tuple[int, int]], names: list[str]) -> dict:
    """COCO-format ground truth from YOLO label files (class cx cy w h, normalised) for the images in ``sizes``."""
    images, annotations = [], []
    for i, (name, (h, w)) in enumerate(sorted(sizes.items())):
        images.append({"id": i, "file_name": name, "height": h, "width": w})
        label = Path(labels) / f"{Path(name).stem}.txt"
        for line in label.read_text().splitlines() if label.is_file() else []:
            c, cx, cy, bw, bh = (float(v) for v in line.split()[:5])
            box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": int(c),
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for i, n in enumerate(names)],
    }


def board_map(gt: dict, detections: dict[str, list]) -> float:
    """mAP50-95 (``lwdet.coco.coco_map``: every detection counts) of {image name: [[x1, y1, x2, y2, score, class]]}."""
    ids = {im["file_name"]: im["id"] for im in gt["images"]}
    dets = [
        {"image_id": ids[name], "category_id": int(d[5]), "bbox": [d[0], d[1], d[2] - d[0], d[3] - d[1]], "score": d[4]}
        for name, rows in detections.items()
        for d in rows
    ]
    return coco_map(gt, dets)["mAP50-95"]


def board_table(results: str | Path, labels: str | Path, names: list[str], parity: dict | None = None) -> list[dict]:
    """One row per ``<tag>.json`` in ``results``: raw difference vs x86, mAP50-95, PyTorch's mAP from parity."""
    results = Path(results)
    runs = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(results.glob("*.json"))
        if (results / f"{p.stem}.npy").is_file()
    }
    if REFERENCE not in runs:
        raise FileNotFoundError(f"{results}: no {REFERENCE}.json/.npy (the x86 run every board is compared with)")
    sizes = {name: tuple(v["hw"]) for name, v in runs[REFERENCE]["detections"].items()}
    gt = coco_ground_truth(labels, sizes, names)
    ref = np.load(results / f"{REFERENCE}.npy")
    ref_dets = {k: v["dets"] for k, v in runs[REFERENCE]["detections"].items()}
    rows = []
    for tag, run in runs.items():
        dets = {k: v["dets"] for k, v in run["detections"].items()}
        rows.append(
            {
                "run": tag,
                **run["info"],
                **raw_difference(ref, np.load(results / f"{tag}.npy")),
                **detection_changes(ref_dets, dets),
                "map50_95": board_map(gt, dets),
                "map_torch": (parity or {}).get("map_torch"),
                "map_export_x86_validator": (parity or {}).get("map_export"),
                "box_tolerance_px": (parity or {}).get("box_tolerance"),
                "score_tolerance": (parity or {}).get("score_tolerance"),
            }
        )
    return rows


def within_parity(row: dict) -> bool | None:
    """Whether a board run's raw output stays within the export's parity tolerance of x86 (None: no tolerance)."""
    if row.get("box_tolerance_px") is None:
        return None
    return row["box_max_px"] <= row["box_tolerance_px"] and row["score_max"] <= row["score_tolerance"]


def markdown(rows: list[dict]) -> str:
    lines = [
        "| run | CPU | asimdhp | fp16 | boxes max diff vs x86 (px) | anchors > 1 px | scores max diff | "
        "within parity tol | dets >= 0.25 changed / x86 | mAP50-95 (pycocotools) | PyTorch mAP50-95 (parity.json) |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        fp16 = {True: "on (ncnn defaults)", False: "off", None: "ncnn defaults"}[r["fp16_used"]]
        torch = "" if r["map_torch"] is None else f"{r['map_torch']:.4f}"
        lines.append(
            f"| {r['run']} | {r['cpu_part'] or r['machine']} | {r['asimdhp']} | {fp16} | "
            f"{r['box_max_px']:.4g} | {r['anchors_over_1px']} / {r['anchors']} | {r['score_max']:.4g} | "
            f"{within_parity(r)} | {r['dets_changed']} / {r['dets_x86']} | {r['map50_95']:.4f} | {torch} |"
        )
    return "\n".join(lines) + "\n"
