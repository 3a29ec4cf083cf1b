"""Letterbox and normalise an image as the engine's predictor does (its ``LetterBox``), without torch."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

PAD_VALUE = 114


class Letterbox(NamedTuple):
    """How an image was letterboxed: ``letterboxed = original * ratio + pad``, per axis."""

    ratio: tuple[float, float]  # (x, y): resized side / original side, from the rounded resized size as the engine
    pad: tuple[int, int]  # (left, top) border in pixels
    shape: tuple[int, int]  # original (h, w)
    new_shape: tuple[int, int]  # letterboxed (h, w)


def _hw(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def letterbox(
    image: np.ndarray,
    new_shape: int | tuple[int, int],
    auto: bool = False,
    stride: int = 32,
    scaleup: bool = True,
    center: bool = True,
    pad_value: int = PAD_VALUE,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``new_shape`` (h, w); with ``auto`` pad only to a stride multiple.

    Same arithmetic as the engine's ``LetterBox`` (its rounding included), so boxes map back identically.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR image, got an array of shape {image.shape}")
    h0, w0 = image.shape[:2]
    new_h, new_w = _hw(new_shape)
    r = min(new_h / h0, new_w / w0)
    if not scaleup:
        r = min(r, 1.0)
    w1, h1 = max(round(w0 * r), 1), max(round(h0 * r), 1)
    dw, dh = new_w - w1, new_h - h1
    if auto:  # smallest stride-multiple rectangle instead of the full new_shape
        dw, dh = dw % stride, dh % stride
    if center:
        top, bottom = round(dh / 2 - 0.1), round(dh / 2 + 0.1)
        left, right = round(dw / 2 - 0.1), round(dw / 2 + 0.1)
    else:
        top, bottom, left, right = 0, dh, 0, dw
    if (w1, h1) != (w0, h0):
        image = cv2.resize(image, (w1, h1), interpolation=interpolation)
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    return image, Letterbox((w1 / w0, h1 / h0), (left, top), (h0, w0), image.shape[:2])


def to_input(letterboxed_bgr: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) BGR -> float32 (3, H, W) RGB in [0, 1], contiguous, as the engine feeds its model."""
    x = np.ascontiguousarray(letterboxed_bgr[..., ::-1].transpose(2, 0, 1))  # (3, H, W) RGB
    return x.astype(np.float32) / np.float32(255)


def preprocess(image_bgr: np.ndarray, imgsz: int | tuple[int, int], **letterbox_kwargs) -> tuple[np.ndarray, Letterbox]:
    """Letterbox to ``imgsz`` (h, w) and normalise: returns the (3, H, W) float32 input and how to undo it."""
    image, lb = letterbox(image_bgr, imgsz, **letterbox_kwargs)
    return to_input(image), lb
