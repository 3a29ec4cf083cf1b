#!/usr/bin/env python3
"""Derive ``lwdet/data/assets/fashion_items.npz`` from Debian's Fashion-MNIST.

Run once by a developer; the output is committed. It reads the idx files shipped
by Debian's ``dataset-fashion-mnist`` package and keeps, for every one of the 10
classes, ``--per-class`` items from the *train* split and as many from the
*t10k* split, so that the synthetic detection set can draw its train objects and
its val objects from disjoint sources.

    python tools/derive_fashion_items.py            # default: 60 per class per split

Arrays in the npz (all plain dtypes, loadable with ``allow_pickle=False``):

    images        uint8  (M, 28, 28)  items, light on black (as in Fashion-MNIST)
    labels        uint8  (M,)         class id 0..9
    split         uint8  (M,)         0 = from train, 1 = from t10k (see split_names)
    source_index  int32  (M,)         index of the item in its source idx file
    class_names   <U     (10,)        lowercase snake-case class names
    split_names   <U     (2,)         ("train", "t10k")
    licence       <U     ()           credit / licence text
    seed, per_class int64 ()          how the selection was made

The output is byte-reproducible: the selection is seeded and the zip members
carry a fixed timestamp.
"""

from __future__ import annotations

import argparse
import gzip
import io
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

DEFAULT_SRC = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "lwdet" / "data" / "assets" / "fashion_items.npz"

CLASS_NAMES = (
    "t_shirt",  # T-shirt/top
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
SPLITS = ("train", "t10k")

LICENCE = (
    "Fashion-MNIST items, Copyright (c) 2017 Zalando SE, https://tech.zalando.com; "
    "MIT licence (https://github.com/zalandoresearch/fashion-mnist). "
    "Taken from Debian's dataset-fashion-mnist package; a seeded subset of "
    "{per_class} items per class from each of the train and t10k splits, "
    "selected by tools/derive_fashion_items.py --seed {seed}. "
    "The above copyright notice and this permission notice shall be included in all "
    'copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", '
    "WITHOUT WARRANTY OF ANY KIND."
)

_FIXED_DATE = (2020, 1, 1, 0, 0, 0)


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) idx file into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: size {arr.size} does not match header {dims}")
    return arr.reshape(dims)


def select(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Seeded choice of ``per_class`` indices for each class (sorted)."""
    out = []
    for c in range(len(CLASS_NAMES)):
        pool = np.flatnonzero(labels == c)
        if pool.size < per_class:
            raise ValueError(f"class {c} has only {pool.size} items")
        out.append(np.sort(rng.choice(pool, size=per_class, replace=False)))
    return out


def write_npz_reproducible(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed zip timestamps (same bytes every run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="folder with the Fashion-MNIST idx .gz files")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz")
    ap.add_argument("--per-class", type=int, default=60, help="items per class and per split")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    images, labels, split, source_index = [], [], [], []
    for s, name in enumerate(SPLITS):
        imgs = read_idx(args.src / f"{name}-images-idx3-ubyte.gz")
        labs = read_idx(args.src / f"{name}-labels-idx1-ubyte.gz")
        if imgs.shape[1:] != (28, 28) or len(imgs) != len(labs):
            raise ValueError(f"{args.src}/{name}: unexpected shapes {imgs.shape} / {labs.shape}")
        for c, idx in enumerate(select(labs, args.per_class, rng)):
            images.append(imgs[idx])
            labels.append(np.full(len(idx), c, np.uint8))
            split.append(np.full(len(idx), s, np.uint8))
            source_index.append(idx.astype(np.int32))

    arrays = {
        "images": np.ascontiguousarray(np.concatenate(images), dtype=np.uint8),
        "labels": np.concatenate(labels),
        "split": np.concatenate(split),
        "source_index": np.concatenate(source_index),
        "class_names": np.array(CLASS_NAMES),
        "split_names": np.array(SPLITS),
        "licence": np.array(LICENCE.format(per_class=args.per_class, seed=args.seed)),
        "seed": np.array(args.seed, np.int64),
        "per_class": np.array(args.per_class, np.int64),
    }
    write_npz_reproducible(args.out, arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(arrays['images'])} items)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
