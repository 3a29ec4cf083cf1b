"""A study that spans checkouts: finished rows come back from the committed report's data folder.

The report keeps its data (``<report>/data/results.csv`` and each run's epoch CSV, ``lwdet.report.keep_data``), and
that folder is committed; the run folders (``<out>/``, weights included) are not, and are gone in a new checkout.
``adopt`` puts every finished row of the kept data that this checkout lacks back into ``<out>/results.csv``, with
its epoch CSV and layer times in ``<out>/<name>/`` and an ``ADOPTED`` marker there, so the study goes on with the
rows still to train and the report is written over all of them. An adopted row has no weights here: ``--rebench``
times it from its YAML (``steps.bench_row``), and it cannot be a teacher (its weights are gone).

A kept row is adopted only if it matches this config: a planned run name, the study's input size and, when its
epoch CSV is kept, the study's epoch count. A run folder already here wins (this checkout is training it again).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from lwdet.artifacts import LAYER_TIMES, RESULTS_CSV
from lwdet.experiment.table import DONE, RESULTS, claim, merge_result, read_results
from lwdet.report.rows import DATA
from lwdet.report.rows import read_results as read_curves

LOGGER = logging.getLogger(__name__)

ADOPTED = "study_adopted.json"  # in a run folder: its row came from a report's kept data, no weights here


def kept_results(cfg: dict) -> Path | None:
    """The committed data CSV of the study's report, when there is one."""
    if not cfg.get("report"):
        return None
    path = Path(cfg["report"]) / DATA / RESULTS
    return path if path.is_file() else None


def _epochs(csv_path: Path) -> int | None:
    if not csv_path.is_file():
        return None
    return len(read_curves(csv_path).get("epoch", []))


def _mismatch(row: dict, curves: Path, budget: dict) -> str | None:
    """Why a kept row does not belong to this config's budget (None when it does)."""
    if str(row.get("imgsz") or "") not in ("", str(int(budget["imgsz"]))):
        return f"trained at {row['imgsz']} px, the study is at {int(budget['imgsz'])} px"
    n = _epochs(curves)
    if n is not None and n != int(budget["epochs"]):
        return f"{n} epochs in its epoch CSV, the study trains {int(budget['epochs'])}"
    return None


def adopt(cfg: dict, order: list[str]) -> list[str]:
    """Bring back the finished rows of the kept data that ``<out>`` lacks; returns their names."""
    kept = kept_results(cfg)
    if kept is None:
        return []
    out = Path(cfg["out"])
    results = out / RESULTS
    adopted = []
    with claim(out / ".adopt.lock", wait=True):  # two study processes starting together adopt once
        have = read_results(results)
        for name, row in read_results(kept).items():
            if row.get("status") != DONE or have.get(name, {}).get("status") == DONE:
                continue
            run_dir = out / name
            if name not in order:
                LOGGER.warning("%s: %s is not a run of this config; not adopted", kept, name)
                continue
            if run_dir.exists():
                continue
            why = _mismatch(row, kept.parent / name / RESULTS_CSV, cfg["budget"])
            if why:
                LOGGER.warning("%s: %s %s; not adopted (it will train again)", kept, name, why)
                continue
            run_dir.mkdir(parents=True)
            for f in (RESULTS_CSV, LAYER_TIMES):
                if (kept.parent / name / f).is_file():
                    shutil.copyfile(kept.parent / name / f, run_dir / f)
            (run_dir / ADOPTED).write_text(
                json.dumps({"from": str(kept), "adopted": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n", encoding="utf-8"
            )
            merge_result(results, {**row, "run_dir": str(run_dir)}, order)
            adopted.append(name)
    if adopted:
        LOGGER.info(
            "adopted %d finished detectors from %s (trained in an earlier checkout; no weights here, "
            "--rebench times them from their YAMLs): %s",
            len(adopted),
            kept,
            ", ".join(adopted),
        )
    return adopted
