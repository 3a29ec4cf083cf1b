#!/usr/bin/env python3
"""fp32 / fp16-weights / int8 exports of one detector, timed side by side in one run, with projected Pi figures.

    python benchmarks/precision_latency.py --fp32 W/best_ncnn_model --fp16 W/best_fp16_ncnn_model \\
        --int8 W/best_int8_ncnn_model --peers ../shared/peers/ncnn --threads 1,2 --rounds 3 --loops 30 \\
        --csv docs/int8/data/latency.csv --md docs/int8/latency.md

Each round times every export and every peer graph once, round-robin (a slow minute on a shared machine hits all
alike); rows merge their rounds (median of medians, ``lwdet.edge.bench.timing.merge_rounds``). On this machine: fp32 with
ncnn's fp16 off (what its parity proved), the fp16-weights export with ncnn's defaults, int8 with fp16 off. x86 int8
kernels are not ARM's, so the x86 int8 ratio says nothing about a Pi: the Pi int8 figures are PROJECTED from the fp32
export's projection and ncnn's published Pi 4 int8 / fp32 ratios (``lwdet.edge.bench.projection.PUBLISHED_INT8``; none are
published for the Pi 5). Every projection assumes ncnn's defaults on the board (``projection.ASSUMES``).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

from lwdet.edge.bench import bench_detector, bench_param, find_params, projection
from lwdet.edge.bench.output import FIELDS
from lwdet.edge.bench.sysinfo import device_info
from lwdet.edge.bench.timing import merge_rounds
from lwdet.edge.runner import read_export_meta

STAT = projection.STAT


def _time(exports: dict[str, tuple[Path, bool | None]], peers: list[Path], threads, rounds, loops, warmup) -> list:
    passes = []
    for i in range(rounds):
        logging.info("round %d of %d", i + 1, rounds)
        rows = []
        for t in threads:
            for label, (folder, fp16) in exports.items():
                row = bench_detector(folder, t, loops=loops, warmup=warmup, fp16=fp16)
                rows.append({**row, "model": f"{row['model']} [{label}]"})
            rows += [bench_param(p, None, t, loops=loops, warmup=warmup) for p in peers]
        passes.append(rows)
    return merge_rounds(passes)


def _markdown(rows, labels, projected, scales, device) -> str:
    mine = {r["model"].rsplit(" [", 1)[1][:-1]: r for r in rows if " [" in r["model"] and int(r["threads"]) == 1}
    ref = float(mine["fp32"][STAT])
    pi = {(p["label_precision"], p["board"], p["pi_threads"]): p for p in projected}
    head = ("| export | ncnn fp16 here | weights MB | x86 ms (1 thread, min) | vs fp32 here | Pi 4 1 thread | Pi 4 4 threads "
            "| Pi 5 4 threads |")  # fmt: skip
    lines = [head, "|" + "---|" * 8]
    for label in labels:
        r = mine[label]

        def cell(board, n, label=label):
            p = pi.get(("int8" if label == "int8" else "fp32", board, n))
            if p is None:
                return "not published" if label == "int8" else "-"
            return f"{p['projected_ms']:.1f} ({p['low_ms']:.1f}-{p['high_ms']:.1f})"

        fp16 = {True: "on", False: "off", None: "defaults"}[r["ncnn_fp16"] if r["ncnn_fp16"] != "" else None]
        lines.append(f"| {label} | {fp16} | {float(r['weights_mb']):.2f} | {float(r[STAT]):.2f} | "
                     f"{float(r[STAT]) / ref:.3f} | {cell('pi4', 1)} | {cell('pi4', 4)} | {cell('pi5', 4)} |")  # fmt: skip
    lines += [
        "",
        f"Measured on {device.get('cpu')} ({device.get('cores')} cores, ncnn {device.get('ncnn')}); Pi columns are PROJECTED, not measured: "
        f"{projection.describe(scales)}. So the fp32 and fp16 exports project alike (ncnn converts the weights at "
        "load). int8 = the fp32 projection / ncnn's "
        "published Pi 4 int8 speed-up (geometric mean over its 8 models; range: fastest to slowest, with the "
        "projection's own error).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fp32", type=Path, required=True, help="the fp32 export folder")
    p.add_argument("--fp16", type=Path, help="the fp16-weights export (lwdet export --half, to another folder)")
    p.add_argument("--int8", type=Path, help="the int8 export (lwdet export --int8)")
    p.add_argument("--peers", type=Path, required=True, help="the peer graphs (../shared/peers/ncnn)")
    p.add_argument("--threads", default="1,2", help="comma list; the projection uses 1 (and the best-fitting one)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--loops", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--csv", type=Path)
    p.add_argument("--md", type=Path)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    exports = {"fp32": (a.fp32, False)}
    if a.fp16:
        exports["fp16"] = (a.fp16, None)
    if a.int8:
        exports["int8"] = (a.int8, False)
        if not read_export_meta(a.int8).int8:
            print(f"precision_latency.py: error: {a.int8} is not an int8 export (lwdet.json has no int8 entry)",
                  file=sys.stderr)  # fmt: skip
            return 2
    threads = [int(t) for t in a.threads.split(",")]
    peers = [q for q in find_params(a.peers) if q.stem in projection.PUBLISHED]
    rows = _time(exports, peers, threads, a.rounds, a.loops, a.warmup)
    scales = projection.fit([r for r in rows if r["model"] in projection.PUBLISHED], STAT)
    fp32 = [r for r in rows if r["model"].endswith("[fp32]")]
    projected = [{**q, "label_precision": "fp32"} for q in projection.project(fp32, scales, ["pi4", "pi5"], STAT)]
    projected += [{**q, "label_precision": "int8"} for q in projection.project_int8(projected)]
    device = device_info()
    md = _markdown(rows, list(exports), projected, scales, device)
    print(md)
    if a.csv:
        a.csv.parent.mkdir(parents=True, exist_ok=True)
        with a.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=[*FIELDS], extrasaction="ignore")
            w.writeheader()
            w.writerows({**r, **{k: device.get(k, "") for k in device}} for r in rows)
        proj_csv = a.csv.with_name(a.csv.stem + "-projected.csv")
        keys = ("model", "label_precision", "board", "pi_threads", "from_threads", "projected_ms", "low_ms", "high_ms",
                "error_pct", "int8_speedup", "label")  # fmt: skip
        with proj_csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            w.writerows(projected)
    if a.md:
        a.md.parent.mkdir(parents=True, exist_ok=True)
        a.md.write_text(md, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
