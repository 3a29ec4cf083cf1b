"""The study's results CSV: one row per run, rewritten atomically, merged under a lock when several study processes
share one config (each holds its runs through a lock file per run)."""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from pathlib import Path

from lwdet.report import COLUMNS as REPORT_COLUMNS
from lwdet.report.rows import SLICED_COLUMNS

TEST_COLUMNS = ("test_map50", "test_map5095", "test_precision", "test_recall", "test_f1")
# started / finished: the run's time span (UTC, ISO 8601; training included when it trained in that invocation);
# node: where it ran (host, and the Ray node id's first 12 hex digits on Ray); error: why a row failed (status
# lwdet.report.rows.FAILED: one line; the row is tried again on the next invocation)
SPAN_COLUMNS = ("started", "finished", "node")
# imgsz / machine: what the latency was measured at and on (the report writes them on its plots); latency_graph:
# which graph was timed, the run's trained export or its YAML rebuilt with random weights (lwdet.study.kept)
COLUMNS = (
    *REPORT_COLUMNS,
    "seed",
    "teacher",
    "distill_weight",
    "imgsz",
    "machine",
    "latency_graph",
    *TEST_COLUMNS,
    *SLICED_COLUMNS,
    *SPAN_COLUMNS,
    "error",
    "status",
)


def read_results(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def write_results(path: Path, rows: list[dict]) -> None:
    """Atomic rewrite: a crash never leaves a torn CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS} for r in rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def claim(path: Path, wait: bool = False):
    """Exclusive hold on ``path`` (a lock file) across processes; yields False if another process holds it.

    ``flock`` locks die with their process, so a killed study leaves nothing to clean up. Without ``fcntl``
    (Windows) every claim succeeds: run one study process at a time there.
    """
    try:
        import fcntl
    except ImportError:
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def merge_result(path: Path, row: dict, order: list[str]) -> None:
    """Put ``row`` into the results CSV, keeping rows other processes wrote meanwhile; plan order."""
    with claim(path.with_name(f".{path.name}.lock"), wait=True):
        done = read_results(path)
        done[row["model"]] = row
        write_results(
            path, sorted(done.values(), key=lambda r: order.index(r["model"]) if r["model"] in order else len(order))
        )
