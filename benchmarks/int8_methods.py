#!/usr/bin/env python3
"""Which activation thresholds: mAP50-95 of one fp32 export quantized with each calibration method, every layer
int8 and with an int8 export's float layers kept (the engine's validator, as lwdet export --int8).

    python benchmarks/int8_methods.py W/best_ncnn_model --int8 W/best_int8_ncnn_model --data DATA.yaml \\
        --calib DATA.yaml --md docs/int8/methods-rg050.md --csv docs/int8/data/methods-rg050.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from lwdet.artifacts import NCNN_BIN, NCNN_PARAM, PARITY_FILE
from lwdet.edge.runner import read_export_meta
from lwdet.export.int8 import _loader, calibration_images
from lwdet.export.parity import _engine_data, val_map
from lwdet.quantize import METHODS, blob_scales, collect_stats, int8_graph, read_graph


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fp32", type=Path, help="an fp32 ncnn export folder")
    p.add_argument("--int8", type=Path, help="an int8 export of it: its kept-float layers are tried with every method")
    p.add_argument("--data", type=Path, required=True, help="data YAML (val split: the mAP)")
    p.add_argument("--calib", type=Path, required=True, help="calibration images: folder or data YAML")
    p.add_argument("--calib-images", type=int, default=200)
    p.add_argument("--csv", type=Path)
    p.add_argument("--md", type=Path)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    hw = tuple(read_export_meta(a.fp32).imgsz)
    keep = json.loads((a.int8 / PARITY_FILE).read_text())["int8"]["kept_float"] if a.int8 else []
    images = calibration_images(a.calib, a.calib_images)
    graph = read_graph(a.fp32 / NCNN_PARAM, a.fp32 / NCNN_BIN)
    blobs = sorted({lay.bottoms[0] for lay in graph.quantizable()})
    stats = collect_stats(a.fp32 / NCNN_PARAM, a.fp32 / NCNN_BIN, images, _loader(hw), blobs)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lwdet-methods-") as tmp:
        data_yaml = _engine_data(a.data, Path(tmp))
        trial = Path(tmp) / "trial_ncnn_model"
        shutil.copytree(a.fp32, trial)
        fp32_map = val_map(a.fp32, data_yaml, hw)
        for method in METHODS:
            scales = blob_scales(graph, stats, method)
            row = {"method": method, "map_fp32": fp32_map}
            for label, kept in (("all", []), ("mixed", keep)):
                if label == "mixed" and not keep:
                    continue
                int8_graph(graph, scales, kept).write(trial / NCNN_PARAM, trial / NCNN_BIN)
                row[f"map_int8_{label}"] = val_map(trial, data_yaml, hw)
            rows.append(row)
            print(row, flush=True)
    head = f"| method | mAP50-95 every layer int8 | with {len(keep)} layers float ({', '.join(keep) or '-'}) |"
    lines = [f"fp32 export: mAP50-95 {fp32_map:.4f}; {len(images)} calibration images from {a.calib}", "", head,
             "|---|---|---|"]  # fmt: skip
    for r in rows:
        mixed = f"{r['map_int8_mixed']:.4f}" if "map_int8_mixed" in r else "-"
        lines.append(f"| {r['method']} | {r['map_int8_all']:.4f} | {mixed} |")
    md = "\n".join(lines) + "\n"
    print(md)
    if a.md:
        a.md.write_text(md, encoding="utf-8")
    if a.csv:
        with a.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["method", "map_fp32", "map_int8_all", "map_int8_mixed"])
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
