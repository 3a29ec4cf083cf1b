"""Rendering one image of the procedural detection set: the embedded Fashion-MNIST items pasted, tinted and
alpha-blended on procedural backgrounds, with exact tight boxes (see :mod:`lwdet.data.synth` for the set)."""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

ITEMS_NPZ = Path(__file__).resolve().parent / "assets" / "fashion_items.npz"

ALPHA_THRESHOLD = 0.1  # mask values below this are not pasted (and not boxed)
MAX_IOU = 0.3  # placements with a larger box IoU against an existing object are rejected
_ALPHA_GAIN = 1.6  # intensity -> alpha gain, makes item bodies mostly opaque
_PLACEMENT_TRIES = 40
_JPEG_QUALITY = 92
SPLITS = {"train": 0, "val": 1}  # our split -> source split code in the npz (0 train, 1 t10k)


# --------------------------------------------------------------------------- items
@dataclass(frozen=True, eq=False)  # eq=False: hash by identity (used as a cache key)
class ItemBank:
    """The embedded Fashion-MNIST items (see tools/derive_fashion_items.py)."""

    images: np.ndarray  # uint8 (M, 28, 28)
    labels: np.ndarray  # uint8 (M,)
    split: np.ndarray  # uint8 (M,) 0 = Fashion-MNIST train, 1 = t10k
    source_index: np.ndarray  # int32 (M,)
    class_names: tuple[str, ...]
    split_names: tuple[str, ...]
    licence: str

    def rows(self, class_id: int, source_split: int) -> np.ndarray:
        return np.flatnonzero((self.labels == class_id) & (self.split == source_split))


@lru_cache(maxsize=4)
def load_items(path: str | os.PathLike = ITEMS_NPZ) -> ItemBank:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embedded item file missing: {path} (regenerate with tools/derive_fashion_items.py)")
    with np.load(path, allow_pickle=False) as d:
        return ItemBank(
            images=d["images"],
            labels=d["labels"],
            split=d["split"],
            source_index=d["source_index"],
            class_names=tuple(str(x) for x in d["class_names"]),
            split_names=tuple(str(x) for x in d["split_names"]),
            licence=str(d["licence"]),
        )


@lru_cache(maxsize=4096)
def _item_intensity(bank: ItemBank, row: int) -> np.ndarray:
    """Item intensity in [0, 1] (normalised to its max), cropped to the pixels that can pass the threshold."""
    n = bank.images[row].astype(np.float32)
    n /= max(float(n.max()), 1.0)
    keep = n * _ALPHA_GAIN >= ALPHA_THRESHOLD
    ys, xs = np.nonzero(keep)
    # one pixel of margin so interpolation can fade out naturally
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, n.shape[0])
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, n.shape[1])
    return np.ascontiguousarray(n[y0:y1, x0:x1])


def _item_patch(intensity: np.ndarray, long_side: float, aspect: float, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Resize an item; return (alpha, shading) cropped to the tight box of alpha > 0."""
    h, w = intensity.shape
    w_eff = w * aspect
    k = long_side / max(h, w_eff)
    nh, nw = max(int(round(h * k)), 1), max(int(round(w_eff * k)), 1)
    interp = cv2.INTER_AREA if nh * nw < h * w else cv2.INTER_LINEAR
    n = cv2.resize(intensity, (nw, nh), interpolation=interp)
    if flip:
        n = n[:, ::-1]
    alpha = np.clip(n * _ALPHA_GAIN, 0.0, 1.0)
    alpha[alpha < ALPHA_THRESHOLD] = 0.0
    ys, xs = np.nonzero(alpha)
    if ys.size == 0:  # degenerate (tiny) item: keep its brightest pixel
        y, x = np.unravel_index(int(np.argmax(n)), n.shape)
        alpha = np.ones((1, 1), np.float32)
        return alpha, np.clip(n[y : y + 1, x : x + 1], 0.0, 1.0)
    sl = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    alpha = np.ascontiguousarray(alpha[sl], dtype=np.float32)
    shading = np.ascontiguousarray(0.55 + 0.45 * np.clip(n[sl], 0.0, 1.0), dtype=np.float32)
    return alpha, shading


# --------------------------------------------------------------------------- backgrounds
def _smooth_noise(rng: np.random.Generator, h: int, w: int, channels: int) -> np.ndarray:
    gh, gw = int(rng.integers(2, 13)), int(rng.integers(2, 13))
    g = rng.random((gh, gw, channels), dtype=np.float32)
    out = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Varied RGB background, float32 (h, w, 3) in [0, 255]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c1, c2 = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    kind = int(rng.integers(5))
    theta = rng.uniform(0, 2 * math.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    if kind == 0:  # linear gradient
        t = (u - u.min()) / max(float(np.ptp(u)), 1.0)
        img = c1 + (c2 - c1) * t[..., None]
    elif kind == 1:  # radial gradient
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        d = np.hypot(yy - cy, xx - cx)
        t = d / max(float(d.max()), 1.0)
        img = c1 + (c2 - c1) * t[..., None]
    elif kind == 2:  # smooth coloured noise
        g = _smooth_noise(rng, h, w, 3)
        lo = np.minimum(c1, c2)
        hi = np.maximum(c1, c2) + 40.0
        img = lo + (hi - lo) * g
    elif kind == 3:  # stripes (soft or hard)
        period = rng.uniform(6, 40)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * u / period + rng.uniform(0, 2 * math.pi))
        if rng.random() < 0.5:
            t = (t > 0.5).astype(np.float32)
        img = c1 + (c2 - c1) * t[..., None]
    else:  # checker, possibly rotated
        cell = rng.uniform(8, 40)
        v = -xx * math.sin(theta) + yy * math.cos(theta)
        t = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
        img = c1 + (c2 - c1) * t[..., None]
    img = img.astype(np.float32)

    if rng.random() < 0.5:  # low-frequency brightness modulation
        m = _smooth_noise(rng, h, w, 1)
        img *= 0.7 + 0.6 * m
    # colour jitter
    img = img * rng.uniform(0.8, 1.2, 3).astype(np.float32) + rng.uniform(-20, 20, 3).astype(np.float32)
    # sensor-like noise
    sigma = rng.uniform(0, 8)
    img += rng.normal(0.0, sigma, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255)

    # a few geometric distractors (hard negatives)
    n_shapes = int(rng.integers(0, 4))
    if n_shapes:
        canvas = np.ascontiguousarray(img.astype(np.uint8))
        for _ in range(n_shapes):
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            thick = int(rng.choice([-1, 1, 2, 3]))
            kind = int(rng.integers(3))
            p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            if kind == 0:
                cv2.circle(canvas, p, int(rng.integers(3, 24)), color, thick, cv2.LINE_AA)
            elif kind == 1:
                q = (p[0] + int(rng.integers(-30, 31)), p[1] + int(rng.integers(-30, 31)))
                cv2.rectangle(canvas, p, q, color, thick, cv2.LINE_AA)
            else:
                q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.line(canvas, p, q, color, max(thick, 1), cv2.LINE_AA)
        img = canvas.astype(np.float32)
    return img


def _tint(hsv_draw: np.ndarray, bg_luma: float) -> np.ndarray:
    """RGB tint (float32, 0..255) from three uniform draws, with a value that contrasts with ``bg_luma``."""
    hue, sat, v_raw = (float(x) for x in hsv_draw)
    sat = sat**0.7
    if bg_luma < 128.0:
        lo, hi = min((bg_luma + 80.0) / 255.0, 1.0), 1.0
    else:
        lo, hi = 0.0, max((bg_luma - 80.0) / 255.0, 0.0)
    v = lo + (hi - lo) * v_raw
    return np.array(colorsys.hsv_to_rgb(hue, sat, v), np.float32) * 255.0


def _iou(a: tuple[int, int, int, int], b: np.ndarray) -> np.ndarray:
    """IoU of box a against boxes b (N, 4), all as x0, y0, x1, y1 (exclusive ends)."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1)


# --------------------------------------------------------------------------- one image
@dataclass(frozen=True)
class Rendered:
    image: np.ndarray  # uint8 (H, W, 3), BGR (OpenCV order)
    boxes: np.ndarray  # int64 (N, 4) pixel boxes x0, y0, x1, y1 (x1/y1 exclusive)
    classes: np.ndarray  # int64 (N,) ids into the ``classes`` list
    items: np.ndarray  # int64 (N,) rows of the ItemBank that were pasted

    def yolo_lines(self) -> list[str]:
        h, w = self.image.shape[:2]
        out = []
        for c, (x0, y0, x1, y1) in zip(self.classes.tolist(), self.boxes.tolist()):
            cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
            bw, bh = (x1 - x0) / w, (y1 - y0) / h
            out.append(f"{c} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
        return out


def _class_ids(bank: ItemBank, classes: Sequence[str | int]) -> list[int]:
    if isinstance(classes, (str, bytes)) or not len(classes):
        raise ValueError(f"classes must be a non-empty list of Fashion-MNIST class names, got {classes!r}")
    ids = []
    for c in classes:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= int(c) < len(bank.class_names):
            ids.append(int(c))
        elif isinstance(c, str) and c in bank.class_names:
            ids.append(bank.class_names.index(c))
        else:
            raise ValueError(f"unknown class {c!r}; choose from {', '.join(bank.class_names)}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate classes in {list(classes)!r}")
    return ids


def _check_range(name: str, value: Sequence[int], lo: int) -> tuple[int, int]:
    a, b = (int(v) for v in value)
    if not lo <= a <= b:
        raise ValueError(f"{name} must be ({lo} <= min <= max), got {tuple(value)!r}")
    return a, b


def render_image(
    seed: int,
    split: str,
    index: int,
    *,
    classes: Sequence[str | int],
    min_side: int = 160,
    max_side: int = 256,
    objects: Sequence[int] = (2, 6),
    scale: Sequence[int] = (16, 96),
    background: bool = True,
    bank: ItemBank | None = None,
) -> Rendered:
    """Render image ``index`` of ``split`` ('train' or 'val') for ``seed``.

    ``background=False`` renders the very same objects (same boxes, items and
    tints' hue/saturation) on a black canvas, which is what the tests use to
    check that boxes are tight on the pasted pixels.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    bank = bank or load_items()
    cls_ids = _class_ids(bank, classes)
    min_side, max_side = _check_range("min_side/max_side", (min_side, max_side), 8)
    n_lo, n_hi = _check_range("objects", objects, 1)
    s_lo, s_hi = _check_range("scale", scale, 2)
    if s_lo > min_side - 2:
        raise ValueError(f"scale min {s_lo} does not fit in min_side {min_side}")
    src = SPLITS[split]
    pools = [bank.rows(c, src) for c in cls_ids]
    if any(p.size == 0 for p in pools):
        raise ValueError(f"no {bank.split_names[src]} items for one of the classes {list(classes)!r}")

    ss = np.random.SeedSequence([int(seed), src, int(index)])
    layout_rng, bg_rng = (np.random.default_rng(s) for s in ss.spawn(2))

    w = int(layout_rng.integers(min_side, max_side + 1))
    h = int(layout_rng.integers(min_side, max_side + 1))
    if background:
        canvas = _background(bg_rng, h, w)
    else:
        canvas = np.zeros((h, w, 3), np.float32)
    occupied = np.zeros((h, w), bool)

    boxes: list[tuple[int, int, int, int]] = []
    out_cls: list[int] = []
    out_items: list[int] = []
    hi_scale = min(s_hi, min(h, w) - 2)
    for _ in range(int(layout_rng.integers(n_lo, n_hi + 1))):
        k = int(layout_rng.integers(len(cls_ids)))
        row = int(layout_rng.choice(pools[k]))
        long_side = math.exp(layout_rng.uniform(math.log(s_lo), math.log(max(hi_scale, s_lo))))
        aspect = math.exp(layout_rng.uniform(math.log(0.8), math.log(1.25)))
        flip = bool(layout_rng.random() < 0.5)
        hsv_draw = layout_rng.random(3)
        alpha, shading = _item_patch(_item_intensity(bank, row), long_side, aspect, flip)
        ph, pw = alpha.shape
        if ph > h or pw > w:
            continue
        mask = alpha > 0
        for _try in range(_PLACEMENT_TRIES):
            x = int(layout_rng.integers(0, w - pw + 1))
            y = int(layout_rng.integers(0, h - ph + 1))
            box = (x, y, x + pw, y + ph)
            if boxes and _iou(box, np.asarray(boxes)).max() > MAX_IOU:
                continue
            if np.any(occupied[y : y + ph, x : x + pw] & mask):
                continue
            region = canvas[y : y + ph, x : x + pw]
            luma = float((region[..., ::-1] @ np.array([0.299, 0.587, 0.114], np.float32))[mask].mean())
            color = _tint(hsv_draw, luma)[::-1]  # RGB -> BGR
            a = alpha[..., None]
            canvas[y : y + ph, x : x + pw] = region * (1.0 - a) + color * shading[..., None] * a
            occupied[y : y + ph, x : x + pw] |= mask
            boxes.append(box)
            out_cls.append(k)
            out_items.append(row)
            break

    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return Rendered(
        image=image,
        boxes=np.asarray(boxes, np.int64).reshape(-1, 4),
        classes=np.asarray(out_cls, np.int64),
        items=np.asarray(out_items, np.int64),
    )


# --------------------------------------------------------------------------- dataset
