"""A trained run's accuracy on a split: the engine's validator on its best.pt, the numbers every experiment records."""

from __future__ import annotations

import tempfile
from pathlib import Path


def evaluate(weights: Path, data_yaml: Path, split: str, budget: dict, imgsz: int | None = None) -> dict:
    """P, R, mAP50, mAP50-95 and F1 (the mean of the per-class F1, as lwdet.training.mean_f1) of ``weights`` on
    ``split``, at ``imgsz`` (default: the budget's), with the budget's batch and device."""
    import numpy as np

    from lwdet import YOLO

    with tempfile.TemporaryDirectory(prefix="lwdet-val-") as tmp:
        m = YOLO(weights).val(
            data=str(data_yaml),
            split=split,
            imgsz=int(imgsz or budget["imgsz"]),
            batch=budget["batch"],
            device=budget.get("device", "cpu"),
            workers=0,
            plots=False,
            verbose=False,
            project=tmp,
            name="val",
        )
    f1 = np.asarray(m.box.f1, dtype=float)
    return {
        "precision": float(m.box.mp),
        "recall": float(m.box.mr),
        "map50": float(m.box.map50),
        "map5095": float(m.box.map),
        "f1": float(f1.mean()) if f1.size else 0.0,
    }
