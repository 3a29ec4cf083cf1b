"""The results table of an experiment (``<out>/results.csv``): every column, the status values, one writer, one reader.

One row per run, keyed by ``model`` (the run's name). The writer rewrites the whole file atomically (a crash never
leaves a torn CSV); several processes sharing one experiment merge their rows under a lock (``merge_result``).
``run_dir`` is stored relative to the table's folder (the study's ``out``), so a table and the run folders beside it
travel together (a report's ``data/`` copy renders anywhere); the reader resolves it against that folder and still
reads the absolute values tables written before held.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

RESULTS = "results.csv"  # in an experiment's out folder: this table
PEERS_CSV = "peers.csv"  # beside it: the peer graphs timed at the experiment's input size
# beside it: the one side-by-side timing pass after training (a bench CSV whose rows are named by run); the report's
# latency, memory and peers come from it when it is there, as the fastest loop over the passes (SIDE_BY_SIDE_STAT)
SIDE_BY_SIDE = "latency.csv"
SIDE_BY_SIDE_STAT = "infer_min_ms"

DONE = "done"  # a finished row: skipped when the experiment runs again
FAILED = "failed"  # its run raised (column error says why, one line): listed, not ranked, tried again next time

# what a report needs of every row
CORE_COLUMNS = (
    "model", "backbone", "neck", "head",
    "params_m", "gflops", "macs_m", "mac_mb", "peak_act_mb", "pt_mb", "ncnn_bin_mb",
    "train_s", "epoch_s",
    "map50", "map5095", "precision", "recall", "f1",
    "latency_ms_t1", "latency_ms_t2", "ncnn_peak_mb", "onnx_ms_t1",
    "backbone_ms", "neck_ms", "head_ms",
    "parity_ok", "run_dir",
)  # fmt: skip
# optional for a report (older tables lack them). imgsz / machine: what the latency was measured at and on;
# latency_graph: which graph was timed, "trained" (the run's own export) or "rebuilt" (its YAML, random weights)
CONTEXT_COLUMNS = ("imgsz", "machine", "teacher", "latency_graph")
# a study with a `sliced:` section: mAP on full-size images, sliced vs letterbox, and PyTorch ms per image
SLICED_COLUMNS = (
    "sliced_map50", "sliced_map5095", "letterbox_map50", "letterbox_map5095",
    "sliced_ms_per_image", "letterbox_ms_per_image",
)  # fmt: skip
# a study with a `tune:` section (lwdet.study.tune): the row's chosen training arguments (`key=value ...`, also in
# `train`), its tuning's trials, epochs trained in all, its trainers' CPU seconds, the tuned keys chosen at the edge
TUNE_COLUMNS = ("tuned", "tune_trials", "tune_epochs", "tune_cpu_s", "tune_edge")
TEST_COLUMNS = ("test_map50", "test_map5095", "test_precision", "test_recall", "test_f1")
# started / finished: the run's time span (UTC, ISO 8601; training included when it trained in that invocation);
# node: where it ran (host, and the Ray node id's first 12 hex digits on Ray)
SPAN_COLUMNS = ("started", "finished", "node")
COLUMNS = (
    *CORE_COLUMNS,
    "seed",
    "teacher",
    "distill_weight",
    "train",
    *TUNE_COLUMNS,
    "imgsz",
    "machine",
    "latency_graph",
    *TEST_COLUMNS,
    *SLICED_COLUMNS,
    *SPAN_COLUMNS,
    "error",
    "status",
)
# train: the engine training arguments a row set on top of the budget (its `train:` mapping), as `key=value ...`


def train_text(train: dict | None) -> str:
    """A row's ``train:`` mapping as the results column writes it: ``lr0=0.016 scale=0.5`` (the CLI's form)."""
    return " ".join(f"{k}={v}" for k, v in sorted((train or {}).items()))


SEARCH_COLUMNS = ("arch", "epochs", "stopped_early", "lr0", "trial")  # a search's table: COLUMNS, then these
TEXT_COLUMNS = (
    "model", "backbone", "neck", "head", "run_dir", "machine", "teacher", "train", "latency_graph",
    "started", "finished", "node", "error", "status",
)  # fmt: skip


def _cell(v) -> object:
    return "" if v is None else v


def write_csv(path: Path, rows: Iterable[dict], columns: Sequence[str]) -> Path:
    """Atomic rewrite of a CSV with ``columns`` (others ignored, None empty): a crash never leaves a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
            w.writeheader()
            w.writerows({k: _cell(r.get(k)) for k in columns} for r in rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_table(path: str | Path, what: str = "CSV") -> list[dict]:
    """Every row of a CSV as text (FileNotFoundError naming ``what`` when the file is missing)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def relative_to(value, base: Path) -> object:
    """A path as the table stores it: relative to ``base`` when inside it, else as given."""
    if not value:
        return value
    p = Path(str(value))
    if not p.is_absolute():
        return str(value)
    for b in (Path(base), Path(base).resolve()):
        with contextlib.suppress(ValueError):
            return p.relative_to(b).as_posix() or "."
    return str(value)


def resolve(value, base: Path) -> object:
    """A stored path read back: a relative one against ``base``, an absolute one (older tables) as it is."""
    if not value:
        return value
    p = Path(str(value))
    return str(p if p.is_absolute() else Path(base) / p)


def read_results(path: str | Path) -> dict[str, dict]:
    """model -> row (text), ``run_dir`` absolute; {} when there is no table yet."""
    path = Path(path)
    if not path.is_file():
        return {}
    rows = read_table(path, "results table")
    return {r["model"]: {**r, "run_dir": resolve(r.get("run_dir"), path.parent)} for r in rows if "model" in r}


def write_results(path: str | Path, rows: Iterable[dict], columns: Sequence[str] = COLUMNS) -> Path:
    """The table, rewritten atomically; ``run_dir`` stored relative to its folder."""
    path = Path(path)
    return write_csv(path, ({**r, "run_dir": relative_to(r.get("run_dir"), path.parent)} for r in rows), columns)


@contextlib.contextmanager
def claim(path: Path, wait: bool = False):
    """Exclusive hold on ``path`` (a lock file) across processes; yields False if another process holds it.

    ``flock`` locks die with their process, so a killed experiment leaves nothing to clean up. Without ``fcntl``
    (Windows) every claim succeeds: run one process at a time there.
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
    """Put ``row`` into the results table, keeping rows other processes wrote meanwhile; plan order."""
    with claim(path.with_name(f".{path.name}.lock"), wait=True):
        done = read_results(path)
        done[row["model"]] = row
        write_results(
            path, sorted(done.values(), key=lambda r: order.index(r["model"]) if r["model"] in order else len(order))
        )
