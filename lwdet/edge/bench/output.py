"""Bench output: discovery of what to time, the CSV / JSON files and the console table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lwdet.artifacts import NCNN_BIN as BIN
from lwdet.artifacts import NCNN_PARAM as PARAM
from lwdet.edge.bench.sysinfo import DEVICE_FIELDS
from lwdet.edge.bench.timing import STATS

FIELDS = (
    "kind",
    "model",
    "runtime",
    "threads",
    "powersave",
    "input",
    *(f"infer_{s}" for s in STATS),
    *(f"e2e_{s}" for s in STATS),
    "pre_ms",
    "post_ms",
    "detections",
    "image",
    "mem_peak_mb",
    "mem_model_mb",
    "mem_peak_reset",
    "param_kb",
    "weights_mb",
    "fp16",
    "ncnn_fp16",
    "loops",
    "warmup",
    "rounds",
    "soc_temp_c",
    "path",
    *DEVICE_FIELDS,
    "time_utc",
)


def find_model_dirs(root: str | Path) -> list[Path]:
    """Every ncnn export folder (holding model.ncnn.param and .bin) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    dirs = sorted({p.parent for p in root.rglob(PARAM) if (p.parent / BIN).is_file()})
    if not dirs:
        raise ValueError(f"{root}: no ncnn export folders (with {PARAM} and {BIN}) under it")
    return dirs


def find_params(root: str | Path) -> list[Path]:
    """Every bare .param in ``root`` (not recursive), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    params = sorted(p for p in root.glob("*.param") if p.name != PARAM)
    if not params:
        raise ValueError(f"{root}: no .param files in it")
    return params


def with_device(rows: list[dict], device: dict) -> list[dict]:
    return [{**row, **{k: device.get(k) for k in DEVICE_FIELDS}} for row in rows]


def write_csv(rows: list[dict], path: str | Path, device: dict) -> None:
    """One row per model x runtime x threads, device columns on every row so files from several boards concatenate."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in with_device(rows, device):
            writer.writerow(
                {k: ("" if v is None else round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
            )


def write_json(rows: list[dict], path: str | Path, device: dict, settings: dict | None = None) -> None:
    Path(path).write_text(json.dumps({"device": device, "settings": settings or {}, "results": rows}, indent=2))


_COLUMNS = (
    ("model", 28, "{}"),
    ("runtime", 7, "{}"),
    ("threads", 7, "{}"),
    ("input", 11, "{}"),
    ("infer_min_ms", 8, "{:.2f}"),
    ("infer_median_ms", 10, "{:.2f}"),
    ("infer_mean_ms", 8, "{:.2f}"),
    ("infer_p90_ms", 8, "{:.2f}"),
    ("infer_fps", 7, "{:.1f}"),
    ("e2e_mean_ms", 8, "{:.2f}"),
    ("e2e_fps", 7, "{:.1f}"),
    ("mem_peak_mb", 8, "{:.0f}"),
)
_HEADS = {
    "infer_min_ms": "min ms",
    "infer_median_ms": "median ms",
    "infer_mean_ms": "mean ms",
    "infer_p90_ms": "p90 ms",
    "infer_fps": "FPS",
    "e2e_mean_ms": "e2e ms",
    "e2e_fps": "e2e FPS",
    "mem_peak_mb": "peak MB",
}


def table_header() -> str:
    return "  ".join(f"{_HEADS.get(k, k):>{w}}" if i else f"{k:<{w}}" for i, (k, w, _) in enumerate(_COLUMNS))


def table_line(row: dict) -> str:
    cells = []
    for i, (key, width, fmt) in enumerate(_COLUMNS):
        value = row.get(key)
        text = "-" if value is None else fmt.format(value)
        cells.append(f"{text[:width]:<{width}}" if i == 0 else f"{text:>{width}}")
    return "  ".join(cells)
