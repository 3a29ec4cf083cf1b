"""What an export computes on this CPU: raw outputs on fixed inputs and detections on a folder (torch-free).

Run on x86 and on each board (or each emulated CPU, ``tools/pi_emulated.sh``); ``lwdet.pi_numerics`` compares the
files on the host (raw-output differences, pycocotools mAP50-95). Nothing here is a latency: the emulated check
records numbers, not time.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import cv2
import ncnn
import numpy as np

from lwdet.edge.boards import cpu_part, default_fp16, fp16_arithmetic
from lwdet.edge.preprocess import preprocess
from lwdet.edge.runner import NcnnDetector

IMAGES = {".jpg", ".jpeg", ".png", ".bmp"}
MAP_CONF, MAP_MAX_DET = 0.001, 300  # the validator's settings for mAP


def image_files(folder: str | Path) -> list[Path]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGES)
    if not files:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(sorted(IMAGES))})")
    return files


def fixed_inputs(imgsz: tuple[int, int], images: list[Path], n_random: int = 2) -> np.ndarray:
    """(n, 3, H, W) float32: seeded uniform noise, then ``images`` letterboxed as the runtime does."""
    rng = np.random.default_rng(0)
    xs = [rng.random((3, *imgsz), dtype=np.float32) for _ in range(n_random)]
    for f in images:
        img = cv2.imread(str(f))
        if img is None:
            raise ValueError(f"{f}: cannot read this image")
        xs.append(preprocess(img, imgsz)[0])
    return np.stack(xs).astype(np.float32)


def measure(export: str | Path, inputs: np.ndarray, images: list[Path], fp16: bool | None) -> tuple[np.ndarray, dict]:
    """Raw outputs (n, 4 + nc, N) on ``inputs`` and detections (conf >= 0.001, as for mAP) on every image."""
    det = NcnnDetector(export, threads=1, conf=MAP_CONF, max_det=MAP_MAX_DET, fp16=fp16)
    try:
        raw = np.stack([det.infer(x) for x in inputs])
        found = {}
        for f in images:
            img = cv2.imread(str(f))
            if img is None:
                raise ValueError(f"{f}: cannot read this image")
            found[f.name] = {
                "hw": list(img.shape[:2]),
                "dets": [[round(float(v), 4) for v in d] for d in det.predict(img)],
            }
    finally:
        det.close()
    info = {
        "machine": platform.machine(),
        "cpu_part": cpu_part(),
        "asimdhp": fp16_arithmetic(),
        "ncnn": ncnn.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "fp16_asked": fp16,
        "fp16_used": det.fp16,
        "board_default": default_fp16(det.meta.board_numerics),
        "images": len(images),
    }
    return raw, {"info": info, "detections": found}


def save(out: str | Path, raw: np.ndarray, result: dict) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out.with_suffix(".npy"), raw)
    out.with_suffix(".json").write_text(json.dumps(result) + "\n", encoding="utf-8")
