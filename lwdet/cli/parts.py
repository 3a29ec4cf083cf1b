"""Where the time goes: ncnn latency of a detector's backbone, neck and head, by split export.

    lwdet parts models/yaml/yolov5n.yaml [--imgsz 320 --threads 1,2 --loops 50]

How the split is timed: see lwdet.parts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lwdet.cli import common

PROG = "lwdet parts"


def build_parser():
    p = common.parser(PROG, __doc__)
    p.add_argument(
        "model",
        nargs="+",
        type=Path,
        help="model YAMLs (random weights: timing only; also engine names such as yolo26n.yaml) or "
        "trained weights (.pt)",
    )
    p.add_argument("--imgsz", type=common.imgsz, default=320, help="square input size, a multiple of 32")
    p.add_argument("--threads", type=common.int_list, default=[1], help="e.g. 1,2,4: one row per value (default: 1)")
    p.add_argument("--loops", type=common.positive_int, default=50, help="timed runs per graph")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    p.add_argument("--json", type=Path, help="write the rows here as well")
    return p


def _parts(a) -> int:
    from lwdet.models import build_model
    from lwdet.parts import part_latency

    models = []
    for path in a.model:  # every model resolved before any output
        if path.suffix in (".yaml", ".yml"):  # also a shipped or engine name (yolo26n.yaml)
            models.append((path, build_model(path, nc=10, verbose=False)))
        elif path.is_file():
            models.append((path, path))
        else:
            raise FileNotFoundError(f"{path}: not found")
    rows = []
    print(f"{'model':<45}{'threads':>8}{'backbone ms':>12}{'neck ms':>9}{'head ms':>9}{'total ms':>10}")
    for path, model in models:
        for threads in a.threads:
            r = {"model": path.stem, **part_latency(model, a.imgsz, threads, a.loops, a.warmup)}
            rows.append(r)
            print(
                f"{r['model']:<45}{threads:>8}{r['backbone_ms']:>12.2f}{r['neck_ms']:>9.2f}{r['head_ms']:>9.2f}"
                f"{r['total_ms']:>10.2f}"
            )
            share = sum(r["layer_type_ms"].values())
            print(
                "    by layer type: "
                + ", ".join(f"{k} {100 * v / share:.0f}%" for k, v in list(r["layer_type_ms"].items())[:5])
            )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return common.run(_parts, args)
