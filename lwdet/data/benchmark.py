"""Benchmark detection set: all 10 Fashion-MNIST classes, many objects, a wide range of scales, train/val/test.

Larger and harder than the embedded default set (``lwdet.data.synth``, whose renderer it reuses): the similar
t-shirt / shirt / pullover / coat classes are all in, images hold 3-12 objects whose long side spans 10-200 px.
Items come from the full Fashion-MNIST files ((c) 2017 Zalando SE, MIT licence): Debian's dataset-fashion-mnist
package, ``LWDET_FMNIST_DIR``, or torchvision's download into a cache (``lwdet.data.fmnist``; the same bytes whichever
way, so the same set). The three splits share no object source:

    train: Fashion-MNIST train images [0, 50000)     val: train images [50000, 60000)     test: t10k images

Backgrounds are procedural; each split seeds them from its own stream, so no background is shared between
splits. Everything is a pure function of ``(seed, split, index)``. Build (then train with the printed data.yaml):

    python -m lwdet.data.benchmark datasets/fmnist-bench [--seed 0 --n-train 3000 --n-val 600 --n-test 600]

The folder holds the YOLO layout (``images|labels/{train,val,test}``), ``data.yaml`` (standard keys only) and
``stats.json`` / ``stats.md`` (``dataset_stats``).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import yaml

from lwdet.data import synth
from lwdet.data.fmnist import check_raw, fmnist_dir
from lwdet.data.synth import ItemBank, render_image

LOGGER = logging.getLogger(__name__)

CLASS_NAMES = ("t_shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")
LICENCE = "Fashion-MNIST, Copyright (c) 2017 Zalando SE, MIT licence (https://github.com/zalandoresearch/fashion-mnist)"
# split -> (Fashion-MNIST file prefix, [start, stop) of its images)
SOURCES = {"train": ("train", 0, 50000), "val": ("train", 50000, 60000), "test": ("t10k", 0, 10000)}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
DEFAULTS = dict(min_side=256, max_side=416, objects=(3, 12), scale=(10, 200))
SIZE_BUCKETS = (0, 8, 16, 32, 64, 128, 256)  # px, on sqrt(box w * box h)


@lru_cache(maxsize=4)
def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip) as a uint8 array: (N, 28, 28) images or (N,) labels; refused unless it is the published
    file's content (``lwdet.data.fmnist.check_raw``)."""
    raw = check_raw(path)
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def split_bank(split: str, root: str | os.PathLike | None = None) -> ItemBank:
    """The items of one split as an ItemBank (every item tagged source split 0, which is what render_image draws).

    ``root``: the folder with the four Fashion-MNIST .gz files (default: ``lwdet.data.fmnist.fmnist_dir()``, which
    downloads them with torchvision when neither Debian's package nor ``LWDET_FMNIST_DIR`` has them)."""
    if split not in SOURCES:
        raise ValueError(f"split must be one of {tuple(SOURCES)}, got {split!r}")
    return _split_bank(split, Path(root) if root is not None else fmnist_dir())


@lru_cache(maxsize=4)
def _split_bank(split: str, root: Path) -> ItemBank:
    prefix, start, stop = SOURCES[split]
    files = [root / f"{prefix}-{kind}-idx{n}-ubyte.gz" for kind, n in (("images", 3), ("labels", 1))]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found (a folder with Fashion-MNIST's four .gz files)")
    images, labels = (_read_idx(f)[start:stop] for f in files)
    keep = np.flatnonzero(images.reshape(len(images), -1).max(1) > 0)  # a blank item has no box
    return ItemBank(
        images=images[keep],
        labels=labels[keep],
        split=np.zeros(keep.size, np.uint8),
        source_index=(keep + start).astype(np.int32),
        class_names=CLASS_NAMES,
        split_names=(f"{prefix}[{start}:{stop})",),
        licence=LICENCE,
    )


def split_seed(seed: int, split: str) -> int:
    """The renderer's seed for one split: an independent stream per (seed, split), so backgrounds never repeat."""
    return int(np.random.SeedSequence([int(seed), 0x6265_6E63, SPLIT_CODES[split]]).generate_state(1)[0])


def render(seed: int, split: str, index: int, **kwargs) -> synth.Rendered:
    """Image ``index`` of ``split`` ('train', 'val' or 'test'); kwargs as ``DEFAULTS``."""
    opts = {**DEFAULTS, **kwargs}
    return render_image(
        split_seed(seed, split), "train", index, classes=list(range(len(CLASS_NAMES))), bank=split_bank(split), **opts
    )


def _render_jpeg(job: tuple) -> tuple[bytes, str]:
    seed, split, i, opts = job
    r = render(seed, split, i, **opts)
    ok, buf = cv2.imencode(".jpg", r.image, [cv2.IMWRITE_JPEG_QUALITY, synth._JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {split} image {i}")
    return buf.tobytes(), "".join(line + "\n" for line in r.yolo_lines())


def build_benchmark_set(
    out_dir: str | os.PathLike,
    seed: int = 0,
    n_train: int = 3000,
    n_val: int = 600,
    n_test: int = 600,
    workers: int = 1,
    **kwargs,
) -> Path:
    """Write the benchmark set to ``out_dir`` (must not exist; built aside, renamed into place); returns it.

    ``workers`` > 1 renders in that many processes; every image is a pure function of (seed, split, index), so the
    files are the same whatever the count.
    """
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() or out_dir.is_symlink():
        raise FileExistsError(f"dataset folder already exists, not overwriting: {out_dir}")
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    if min(counts.values()) < 1:
        raise ValueError(f"n_train, n_val and n_test must be >= 1, got {counts}")
    opts = {**DEFAULTS, **kwargs}
    render(seed, "train", 0, **opts)  # check arguments before touching the disk
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    LOGGER.info("building %s: %s images, seed %d", out_dir, counts, seed)
    try:
        os.chmod(tmp, 0o777 & ~synth._umask())
        bar = synth._progress(sum(counts.values()), f"building {out_dir.name}")
        pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None
        try:
            for split, n in counts.items():
                img_dir, lab_dir = tmp / "images" / split, tmp / "labels" / split
                img_dir.mkdir(parents=True)
                lab_dir.mkdir(parents=True)
                jobs = [(seed, split, i, opts) for i in range(n)]
                results = pool.imap(_render_jpeg, jobs, chunksize=16) if pool else map(_render_jpeg, jobs)
                for i, (jpeg, labels) in enumerate(results):
                    (img_dir / f"{i:06d}.jpg").write_bytes(jpeg)
                    (lab_dir / f"{i:06d}.txt").write_text(labels)
                    if bar is not None:
                        bar.update(1)
        finally:
            if pool is not None:
                pool.terminate()
        if bar is not None:
            bar.close()
        header = (
            f"# Generated by lwdet.data.benchmark.build_benchmark_set; do not edit.\n"
            f"# seed={seed} counts={counts} options={opts}\n# Objects: {LICENCE}.\n"
        )
        data = {
            "path": str(out_dir),
            "train": "images/train",
            "val": "images/val",
            "test": "images/test",
            "names": dict(enumerate(CLASS_NAMES)),
        }
        (tmp / "data.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        stats = dataset_stats(tmp / "data.yaml", root=tmp)
        stats["data"] = str(out_dir / "data.yaml")
        write_stats(stats, tmp)
        try:
            os.rename(tmp, out_dir)
        except OSError as e:
            raise FileExistsError(f"dataset folder appeared while building, not overwriting: {out_dir}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    LOGGER.info("built %s", out_dir)
    return out_dir


def _bucket_names() -> list[str]:
    edges = list(SIZE_BUCKETS)
    return [f"{a}-{b}" for a, b in zip(edges, edges[1:])] + [f">={edges[-1]}"]


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size  # (w, h), header only


def dataset_stats(data_yaml: str | os.PathLike, root: str | os.PathLike | None = None) -> dict:
    """Images, boxes, boxes per image, per-class counts and a box-size histogram (px, sqrt(w*h)) per split."""
    data_yaml = Path(data_yaml)
    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    if root:
        base = Path(root) if Path(root).is_absolute() else data_yaml.parent / root
    else:
        from lwdet.data.layout import dataset_root

        base = dataset_root(data_yaml, data)
    names = data["names"] if isinstance(data["names"], dict) else dict(enumerate(data["names"]))
    out = {"data": str(data_yaml), "buckets_px": _bucket_names(), "splits": {}}
    for split in ("train", "val", "test"):
        if not data.get(split):
            continue
        img_dir = base / data[split]
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
        sizes, per_image, per_class = [], [], {str(n): 0 for n in names.values()}
        for img in images:
            label = Path(str(img.parent).replace(f"{os.sep}images", f"{os.sep}labels", 1)) / f"{img.stem}.txt"
            rows = [ln.split() for ln in label.read_text().splitlines() if ln.strip()] if label.is_file() else []
            per_image.append(len(rows))
            if not rows:
                continue
            w, h = _image_size(img)
            for r in rows:
                per_class[str(names.get(int(r[0]), r[0]))] = per_class.get(str(names.get(int(r[0]), r[0])), 0) + 1
                sizes.append(float(np.sqrt(float(r[3]) * w * float(r[4]) * h)))
        hist = np.histogram(sizes, bins=[*SIZE_BUCKETS, np.inf])[0] if sizes else np.zeros(len(SIZE_BUCKETS))
        out["splits"][split] = {
            "images": len(images),
            "boxes": int(sum(per_image)),
            "boxes_per_image": {
                "mean": float(np.mean(per_image)) if per_image else 0.0,
                "min": int(min(per_image, default=0)),
                "max": int(max(per_image, default=0)),
            },
            "box_size_px": {
                "min": float(min(sizes, default=0)),
                "median": float(np.median(sizes)) if sizes else 0.0,
                "max": float(max(sizes, default=0)),
            },
            "box_size_hist": dict(zip(out["buckets_px"], (int(v) for v in hist))),
            "per_class": per_class,
        }
    return out


def stats_markdown(stats: dict) -> str:
    splits = stats["splits"]
    cols = list(splits)
    lines = [f"# Dataset statistics: {stats['data']}\n", "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]

    def row(name, get):
        lines.append(f"| {name} | " + " | ".join(str(get(splits[c])) for c in cols) + " |")

    row("images", lambda s: s["images"])
    row("boxes", lambda s: s["boxes"])
    row(
        "boxes/image (mean, min-max)",
        lambda s: f"{s['boxes_per_image']['mean']:.2f} ({s['boxes_per_image']['min']}-{s['boxes_per_image']['max']})",
    )
    row(
        "box size px (min / median / max)",
        lambda s: f"{s['box_size_px']['min']:.0f} / {s['box_size_px']['median']:.0f} / {s['box_size_px']['max']:.0f}",
    )
    for b in stats["buckets_px"]:
        row(f"boxes {b} px", lambda s, b=b: s["box_size_hist"][b])
    for c in next(iter(splits.values()), {}).get("per_class", {}):
        row(f"class {c}", lambda s, c=c: s["per_class"].get(c, 0))
    return "\n".join(lines) + "\n"


def write_stats(stats: dict, folder: str | os.PathLike) -> tuple[Path, Path]:
    folder = Path(folder)
    j, m = folder / "stats.json", folder / "stats.md"
    j.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    m.write_text(stats_markdown(stats), encoding="utf-8")
    return j, m


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lwdet.data.benchmark", description=__doc__.split("\n")[0])
    p.add_argument("out", help="dataset folder to create (must not exist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-val", type=int, default=600)
    p.add_argument("--n-test", type=int, default=600)
    p.add_argument("--workers", type=int, default=1, help="render in this many processes (same files)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = build_benchmark_set(a.out, seed=a.seed, n_train=a.n_train, n_val=a.n_val, n_test=a.n_test, workers=a.workers)
    print(stats_markdown(json.loads((out / "stats.json").read_text())))
    print(f"data: {out / 'data.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
