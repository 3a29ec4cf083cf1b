"""Drawing for the Pi app: boxes with labels on filled backgrounds, and a status (FPS / latency) panel.

Labels stay readable: the text colour (black or white) contrasts with the class colour it sits on, the font scales
with the frame, and a label is moved inside the image when its box touches an edge. Torch-free (OpenCV, numpy).
"""

from __future__ import annotations

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_color(class_id: int) -> tuple[int, int, int]:
    """A fixed BGR colour per class id."""
    return (int(class_id) * 67 % 256, (int(class_id) * 149 + 80) % 256, (int(class_id) * 211 + 160) % 256)


def text_color(bgr) -> tuple[int, int, int]:
    """Black on light backgrounds, white on dark ones (ITU-R BT.601 luma)."""
    b, g, r = (float(v) for v in bgr[:3])
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def font_scale(image: np.ndarray) -> tuple[float, int]:
    """(scale, thickness) for labels: readable on 160 px thumbnails and 1080p frames alike."""
    scale = max(0.35, min(1.2, min(image.shape[:2]) / 900))
    return scale, max(1, round(scale * 2))


def label_rect(image_shape, text: str, x: float, y: float, scale: float, thickness: int):
    """(x0, y0, x1, y1, baseline_y) of a label whose box's top-left corner is (x, y): above the box when there is
    room, else inside it below the top edge, shifted left/down so that it stays in the image."""
    h, w = image_shape[:2]
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    pad = max(1, thickness)
    lw, lh = tw + 2 * pad, th + base + 2 * pad
    x0 = int(min(max(0, round(x)), max(0, w - lw)))
    y0 = int(round(y)) - lh if round(y) - lh >= 0 else int(round(y))
    y0 = int(min(max(0, y0), max(0, h - lh)))
    return x0, y0, min(w, x0 + lw), min(h, y0 + lh), y0 + pad + th


def draw_label(
    image: np.ndarray, text: str, x: float, y: float, color, scale: float | None = None, thickness: int | None = None
) -> tuple[int, int, int, int]:
    """A filled ``color`` rectangle with ``text`` in a contrasting colour at (x, y) (clipped); returns its rect."""
    if scale is None or thickness is None:
        scale, thickness = font_scale(image)
    x0, y0, x1, y1, by = label_rect(image.shape, text, x, y, scale, thickness)
    cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), color, -1)
    cv2.putText(image, text, (x0 + max(1, thickness), by), FONT, scale, text_color(color), thickness, cv2.LINE_AA)
    return x0, y0, x1, y1


def draw_detections(image: np.ndarray, detections) -> np.ndarray:
    """Boxes and ``name score`` labels for (xyxy, score, class_id, class_name) tuples, in place; returns image."""
    scale, thickness = font_scale(image)
    for (x1, y1, x2, y2), score, class_id, name in detections:
        color = class_color(class_id)
        cv2.rectangle(image, (round(x1), round(y1)), (round(x2), round(y2)), color, max(1, thickness))
        draw_label(image, f"{name} {score:.2f}", x1, y1, color, scale, thickness)
    return image


def draw_status(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Status text (FPS, latency, ...) on a darkened panel at the top-left, in place; returns image."""
    if not lines:
        return image
    scale, thickness = font_scale(image)
    sizes = [cv2.getTextSize(t, FONT, scale, thickness) for t in lines]
    pad = 4 * thickness
    step = max(th + base for (_, th), base in sizes) + pad
    w = min(image.shape[1], max(tw for (tw, _), _ in sizes) + 2 * pad)
    h = min(image.shape[0], step * len(lines) + pad)
    panel = image[:h, :w]
    panel[:] = (panel.astype(np.uint16) * 2 // 5).astype(np.uint8)  # 40 % brightness behind the text
    for i, text in enumerate(lines):
        cv2.putText(image, text, (pad, (i + 1) * step - pad // 2), FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return image
