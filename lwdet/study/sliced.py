"""A study step: a trained run's accuracy on full-size images, sliced vs letterbox (:mod:`lwdet.sliced_eval`).

The study config's ``sliced:`` section names the full-size images (and labels) relative to the dataset folder, e.g.
the ``images/val-full`` a data YAML's ``lwdet_import: {full_val: true}`` writes. The row's ``weights/best.pt``
runs through the engine's predictor (:class:`lwdet.sliced_eval.EngineDetector`) at the study's ``imgsz``, once over
the tile grid and once letterboxed whole; mAP is the engine's. The result is kept in the run folder
(:data:`lwdet.artifacts.SLICED_EVAL`) with its settings, and reused while the settings and the weights are the same.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from lwdet.artifacts import SLICED_EVAL, best_weights

LOGGER = logging.getLogger(__name__)

# (results column, sliced_eval.table() row mode, its key)
_FROM_TABLE = (
    ("sliced_map50", "sliced", "mAP50"),
    ("sliced_map5095", "sliced", "mAP50-95"),
    ("letterbox_map50", "letterbox", "mAP50"),
    ("letterbox_map5095", "letterbox", "mAP50-95"),
    ("sliced_ms_per_image", "sliced", "ms_per_image"),
    ("letterbox_ms_per_image", "letterbox", "ms_per_image"),
)


def folders(dataset_root: str | Path, opts: dict, config: str = "study config") -> tuple[Path, Path | None]:
    """(images, labels or None) of the ``sliced`` section; FileNotFoundError naming the config when missing."""
    root = Path(dataset_root)
    out = []
    for key in ("images", "labels"):
        if opts.get(key) is None:
            out.append(None)
            continue
        p = Path(os.path.expanduser(opts[key]))
        p = p if p.is_absolute() else root / p
        if not p.exists():
            raise FileNotFoundError(
                f"{config}: sliced.{key}: {p} not found (relative to the dataset folder {root}; a data YAML's "
                "'lwdet_import' with full_val: true writes images/val-full and labels/val-full)"
            )
        out.append(p)
    return out[0], out[1]


def dataset_folder(data_yaml: str | Path) -> Path:
    """The dataset folder of the study's data YAML, built first if it is a missing generated / imported one."""
    from lwdet.data import ensure_dataset

    return Path(ensure_dataset(data_yaml)["path"])


def sliced_columns(run_dir: str | Path, dataset_root: str | Path, imgsz: int, opts: dict, config: str = "") -> dict:
    """The ``sliced_*`` / ``letterbox_*`` results columns of a trained run (reused from its run folder if current)."""
    best = best_weights(run_dir)
    images, labels = folders(dataset_root, opts, config or "study config")
    settings = {
        "images": str(images),
        "labels": None if labels is None else str(labels),
        "tile": int(opts["tile"]),
        "overlap": int(opts["overlap"]),
        "full_image": bool(opts["full_image"]),
        "imgsz": int(imgsz),
        "weights_mtime_ns": best.stat().st_mtime_ns,
    }
    kept = Path(run_dir) / SLICED_EVAL
    rows = None
    if kept.is_file():
        try:
            saved = json.loads(kept.read_text(encoding="utf-8"))
            rows = saved["rows"] if saved.get("settings") == settings else None
        except (OSError, ValueError, KeyError, TypeError):
            rows = None
    if rows is None:
        rows = _evaluate(best, images, labels, settings)
        _write_json(kept, {"settings": settings, "rows": rows})
    else:
        LOGGER.info("%s: full-size accuracy from %s", Path(run_dir).name, kept)
    by_mode = {r["mode"]: r for r in rows}
    return {col: float(by_mode[mode][key]) for col, mode, key in _FROM_TABLE}


def _evaluate(best: Path, images: Path, labels: Path | None, s: dict) -> list[dict]:
    from lwdet.sliced_eval import EngineDetector, evaluate, table

    LOGGER.info("%s: accuracy on the full-size images in %s, sliced and letterboxed", best.parent.parent.name, images)
    det = EngineDetector(best, s["imgsz"])
    results = evaluate(det, images, labels, s["tile"], s["overlap"], s["full_image"])
    return table(results, coco=False)  # the engine's mAP; lwdet sliced-eval adds pycocotools' as a check


def _write_json(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(obj, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
