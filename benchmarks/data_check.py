"""Benchmark the data toolchain on photo-sized images: check cold / warm (images/s) and import with / without tiling.

  OMP_NUM_THREADS=1 python benchmarks/data_check.py [--n 500] [--size 3500x2300] [--work /tmp/lwdet-bench-data]
                                                    [--tile-n 50] [--neon ../shared/datasets/neon-trees] [--json OUT]

1. Generates ``--n`` JPEGs of ``--size`` (default 3500x2300 = 8.05 MP) with VOC XMLs into ``WORK/voc`` (once:
   a later run with the same --n and --size reuses them).
2. Imports them without tiling (a byte copy per image) into a new YOLO folder: import images/s.
3. Checks that folder with an empty result cache ("cold": every image decoded, in the thread pool) and again
   with the cache filled ("warm": nothing decoded): images/s for both, and their ratio. The OS page cache is
   not dropped, so "cold" is the check's own cold start on files the OS may hold in memory.
4. Imports the first ``--tile-n`` images with ``--tile 640 --overlap 64`` (decode, crop, encode per tile).
5. Imports the neon-trees VOC set (if found) with and without tiling.
Nothing is written outside WORK (the check's cache included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from lwdet.data.check import check_dataset
from lwdet.data.importers import import_dataset
from lwdet.data.tiling import TileOptions


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h)


def generate(voc: Path, n: int, w: int, h: int, seed: int = 0) -> None:
    """``n`` distinct textured JPEGs with 20-60 boxes each, and their VOC XMLs."""
    stamp = voc / f".done-{n}-{w}x{h}"
    if stamp.is_file():
        return
    shutil.rmtree(voc, ignore_errors=True)
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3)  # photo-like texture
    t0 = time.perf_counter()
    for i in range(n):
        img = np.roll(base, (int(rng.integers(h)), int(rng.integers(w))), axis=(0, 1))
        objs = []
        for _ in range(int(rng.integers(20, 61))):
            bw, bh = (int(v) for v in rng.integers(16, 200, 2))
            x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            cv2.rectangle(img, (x0, y0), (x0 + bw - 1, y0 + bh - 1), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
            cls = ("car", "tree", "roof")[int(rng.integers(3))]
            objs.append(
                f"<object><name>{cls}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                f"<xmax>{x0 + bw}</xmax><ymax>{y0 + bh}</ymax></bndbox></object>"
            )
        cv2.imwrite(str(voc / "JPEGImages" / f"p{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (voc / "Annotations" / f"p{i:05d}.xml").write_text(
            f"<annotation><filename>p{i:05d}.jpg</filename><size><width>{w}</width><height>{h}</height></size>{''.join(objs)}</annotation>"
        )
        if (i + 1) % 50 == 0:
            print(f"generated {i + 1}/{n} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    stamp.write_text("")


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--size", type=_size, default=(3500, 2300), help="WxH of the generated JPEGs")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lwdet-bench-data"))
    ap.add_argument("--tile-n", type=int, default=50, help="generated images imported with tiling")
    ap.add_argument("--workers", type=int, default=None, help="check decoding threads (default: CPUs, at most 8)")
    ap.add_argument(
        "--neon", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "neon-trees"
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    w, h = args.size
    work = args.work.absolute()
    voc = work / "voc"
    generate(voc, args.n, w, h)
    for d in ("yolo", "yolo-tiled", "neon", "neon-tiled", "cache", "sub"):
        shutil.rmtree(work / d, ignore_errors=True)
    rows: dict[str, dict] = {}
    mp = w * h / 1e6

    s, dt = timed(import_dataset, "voc", voc, work / "yolo")
    rows["import (no tiling)"] = {"images": args.n, "seconds": dt, "images_per_s": args.n / dt}
    yaml_ = s.data_yaml
    cold, dt_cold = timed(check_dataset, yaml_, cache=work / "cache", workers=args.workers)
    warm, dt_warm = timed(check_dataset, yaml_, cache=work / "cache", workers=args.workers)
    assert cold.to_dict() == warm.to_dict(), "warm check differs from cold"
    n = cold.totals["images"]
    rows["check cold"] = {"images": n, "seconds": dt_cold, "images_per_s": n / dt_cold}
    rows["check warm"] = {"images": n, "seconds": dt_warm, "images_per_s": n / dt_warm}

    sub = work / "sub"
    (sub / "JPEGImages").mkdir(parents=True)
    (sub / "Annotations").mkdir()
    for p in sorted((voc / "Annotations").glob("*.xml"))[: args.tile_n]:
        os.symlink(p, sub / "Annotations" / p.name)
        os.symlink(voc / "JPEGImages" / f"{p.stem}.jpg", sub / "JPEGImages" / f"{p.stem}.jpg")
    s, dt = timed(import_dataset, "voc", sub, work / "yolo-tiled", tiling=TileOptions(640, 64))
    tiles = sum(v.get("tiles", 0) for v in s.splits.values())
    rows["import (tile 640, overlap 64)"] = {
        "images": args.tile_n,
        "seconds": dt,
        "images_per_s": args.tile_n / dt,
        "tiles": tiles,
    }

    neon = args.neon.resolve()
    if neon.is_dir():
        for name, tiling in (
            ("neon import (no tiling)", None),
            ("neon import (tile 640, overlap 64)", TileOptions(640, 64)),
        ):
            s, dt = timed(
                import_dataset,
                "voc",
                neon,
                work / ("neon-tiled" if tiling else "neon"),
                split=(0.5, 0.5),
                tiling=tiling,
            )
            k = sum(v["source_images"] for v in s.splits.values())
            rows[name] = {
                "images": k,
                "seconds": dt,
                "images_per_s": k / dt,
                "tiles": sum(v.get("tiles", 0) for v in s.splits.values()),
            }

    print(
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"generated set: {args.n} JPEGs of {w}x{h} ({mp:.2f} MP)"
    )
    print(f"{'step':<36} {'images':>7} {'seconds':>9} {'images/s':>9}")
    for k, r in rows.items():
        extra = f"  ({r['tiles']} tiles)" if r.get("tiles") else ""
        print(f"{k:<36} {r['images']:>7} {r['seconds']:>9.2f} {r['images_per_s']:>9.1f}{extra}")
    print(f"warm check is {dt_cold / dt_warm:.0f}x faster than cold")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"n": args.n, "size": [w, h], "cpus": os.cpu_count(), "rows": rows, "warm_speedup": dt_cold / dt_warm},
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
