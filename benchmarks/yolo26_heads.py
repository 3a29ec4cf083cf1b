"""YOLO26's two heads on one trained model: the one-to-many branch + NMS (what lwdet exports) against the
one-to-one branch with top-k and no NMS (the engine's end-to-end mode), both through the engine's validator.

    python benchmarks/yolo26_heads.py runs/fmnist-det/yolo26n --imgsz 96 [--ncnn]

--ncnn also exports the run to ncnn (raw layout, parity-checked) and validates that export, as lwdet deploys it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="run folder (weights/best.pt, data.yaml) of a YOLO26 training")
    p.add_argument("--imgsz", type=int, required=True)
    p.add_argument("--ncnn", action="store_true", help="also export to ncnn and validate the export")
    a = p.parse_args(argv)
    import lwdet  # noqa: F401  (offline engine)
    from lwdet import YOLO
    from lwdet.export import export_ncnn, val_map

    weights, data = a.run / "weights" / "best.pt", a.run / "data.yaml"
    common = dict(
        data=str(data), imgsz=a.imgsz, batch=1, rect=False, plots=False, workers=0, verbose=False, device="cpu"
    )
    rows = []
    for label, nms in (("one-to-many + NMS (lwdet export)", None), ("one-to-one top-k, no NMS (end2end)", False)):
        with tempfile.TemporaryDirectory() as tmp:
            m = YOLO(weights).val(nms=nms, project=tmp, name="v", **common)
        rows.append((label, m.box.map50, m.box.map))
    if a.ncnn:
        with tempfile.TemporaryDirectory() as tmp:
            folder = export_ncnn(weights, tmp, imgsz=a.imgsz, data=data, map_check=False)
            rows.append(("ncnn export, one-to-many + NMS", None, val_map(folder, data, (a.imgsz, a.imgsz))))
    print(f"{a.run}  imgsz {a.imgsz}  (validator: batch 1, rect=False, conf 0.001, iou 0.7, max_det 300)")
    print(f"{'head':<40}{'mAP50':>8}{'mAP50-95':>10}")
    for label, m50, m in rows:
        print(f"{label:<40}{'-' if m50 is None else f'{m50:.4f}':>8}{m:>10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
