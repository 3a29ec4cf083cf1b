"""The report's inputs: a study results CSV, bench CSVs, each run's epoch CSV (the engine's results.csv), a data copy."""

from __future__ import annotations

import logging
import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from lwdet import artifacts
from lwdet.experiment.table import (
    CORE_COLUMNS,
    PEERS_CSV,
    RESULTS,
    SIDE_BY_SIDE,
    SIDE_BY_SIDE_STAT,
    TEXT_COLUMNS,
    read_table,
    resolve,
    write_csv,
)

LOGGER = logging.getLogger(__name__)

COLUMNS = CORE_COLUMNS  # what the report needs of every row (the whole table: lwdet.experiment.table.COLUMNS)
SLICED_ACCURACY = "sliced_map50"  # the y axis of the full-size Pareto plot
LAYER_TIMES = artifacts.LAYER_TIMES  # in a run folder: ncnn ms per layer type (lwdet.parts)
DATA = "data"  # in a report folder: the study CSV and each run's epoch CSV, so the report can be written again
LATENCY = "latency_ms_t1"  # the x axis of the Pareto plot and what --max-latency-ms limits
ACCURACY = "map5095"
MEMORY = "ncnn_peak_mb"
DENSITY = "map5095_per_mparam"  # accuracy density, derived
BENCH_TEXT = (
    "model",
    "kind",
    "runtime",
    "input",
    "image",
    "path",
    "board",
    "cpu",
    "arch",
    "os",
    "governor",
    "time_utc",
    "python",
    "ncnn",
    "numpy",
    "opencv",
)


def _value(key: str, text):
    if key in TEXT_COLUMNS or text is None:
        return text
    if isinstance(text, (int, float, bool)):
        return text
    s = str(text).strip()
    if s == "" or s.lower() in ("none", "nan"):
        return None
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    try:
        return float(s)
    except ValueError:
        return s


def _num(row: dict, key: str) -> float | None:
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def fmt(v) -> str:
    """A table cell: 3 significant-ish digits, booleans as yes / NO, missing as -."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:.0f}"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def with_density(row: dict) -> dict:
    """``row`` plus mAP50-95 per million parameters (None when either is missing)."""
    m, p = row.get(ACCURACY), row.get("params_m")
    ok = isinstance(m, (int, float)) and isinstance(p, (int, float)) and p > 0
    return {**row, DENSITY: m / p if ok else None}


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a study results CSV, numbers parsed (empty -> None), ``run_dir`` resolved against the CSV's folder (an
    absolute one, from an older table, kept), with the accuracy density added."""
    rows = [{k.strip(): v for k, v in r.items() if k} for r in read_table(path, "study results CSV")]
    return [
        with_density({k: _value(k, resolve(v, Path(path).parent) if k == "run_dir" else v) for k, v in r.items()})
        for r in rows
    ]


def read_bench(path: str | Path) -> list[dict]:
    """Rows of a ``bench_edge.py --csv`` file (numbers parsed)."""
    rows = [
        {k: (v if k in BENCH_TEXT else _value(k, v)) for k, v in r.items() if k} for r in read_table(path, "bench CSV")
    ]
    for r in rows:
        r["threads"] = int(r["threads"]) if isinstance(r.get("threads"), float) else r.get("threads")
    return rows


def _key(name: str) -> str:
    name = str(name).strip().lower()
    for suffix in (artifacts.NCNN_SUFFIX, ".ncnn.param", ".param"):
        name = name.removesuffix(suffix)
    return name


def apply_bench(
    rows: Sequence[dict], bench: Sequence[dict], stat: str = "infer_median_ms"
) -> tuple[list[dict], list[dict]]:
    """Replace latency/memory columns by the bench rows of the same model (their ``stat``); returns (rows, unmatched
    bench rows)."""
    by_model: dict[str, dict[int, dict]] = {}
    for b in bench:
        if b.get("runtime", "ncnn") not in (None, "", "ncnn"):
            continue
        by_model.setdefault(_key(b.get("model", "")), {})[int(b.get("threads") or 1)] = b
    out, used = [], set()
    for r in rows:
        hit = by_model.get(_key(r.get("model", "")))
        r = dict(r)
        if hit:
            used.add(_key(r["model"]))
            r["_bench"] = True
            for threads, col in ((1, "latency_ms_t1"), (2, "latency_ms_t2")):
                r[col] = hit[threads].get(stat) if threads in hit else None
            first = hit.get(1) or hit[min(hit)]
            r[MEMORY] = first.get("mem_peak_mb")
            r["machine"] = machine_of(first) or r.get("machine")
        else:
            LOGGER.warning("bench CSV has no row for %s; keeping this machine's latency", r.get("model"))
        out.append(r)
    peers = [b for k, t in by_model.items() if k not in used for b in [t.get(1) or t[min(t)]]]
    return out, peers


def machine_of(bench_row: dict) -> str | None:
    """'board or CPU (arch, N cores)' from a bench row's device columns; None when it has none."""
    name = bench_row.get("board") or bench_row.get("cpu")
    if not name:
        return None
    cores = _num(bench_row, "cores")
    extra = ", ".join(x for x in (bench_row.get("arch"), f"{cores:g} cores" if cores else None) if x)
    return f"{name} ({extra})" if extra else str(name)


def read_results(path: str | Path) -> dict[str, list[float]]:
    """A run's epoch CSV (the engine's results.csv) as column -> float values (NaN where not a number).

    Read with polars, as the engine reads it (``BaseTrainer.read_results_csv``); names are stripped of padding.
    """
    import polars as pl

    df = pl.read_csv(path, infer_schema_length=None)
    return {
        str(c).strip(): [
            float("nan") if v is None else float(v) for v in df[c].cast(pl.Float64, strict=False).to_list()
        ]
        for c in df.columns
    }


def _run_file(row: dict, base: Path | None, name: str) -> Path | None:
    """``name`` in the row's run folder: as recorded, relative to ``base``, or a folder of that name in ``base``
    (a report's data copy)."""
    run = row.get("run_dir")
    if not run:
        return None
    for cand in (Path(run), (base / run) if base else None, (base / Path(run).name) if base else None):
        if cand is not None and (cand / name).is_file():
            return cand / name
    return None


def epoch_curves(rows: Sequence[dict], base: Path | None = None) -> dict[str, dict[str, list[float]]]:
    """model -> its run's epoch CSV columns, for the rows whose run folder (or data copy) has one."""
    runs = {}
    for r in rows:
        f = _run_file(r, base, artifacts.RESULTS_CSV)
        if f is None:
            LOGGER.warning(
                "no results.csv for %s (run_dir %s); left out of the curves", r.get("model"), r.get("run_dir")
            )
            continue
        runs[str(r.get("model"))] = read_results(f)
    return runs


SEED_RUN = re.compile(r"^(?P<base>.+)-seed(?P<seed>\d+)$")  # lwdet.study names a repeat run "<model>-seed<N>"


def load_study(results_csv: str | Path, bench_csv: str | Path | None = None) -> tuple[list[dict], list[dict], str]:
    """(rows, peer bench rows, where latency comes from): the study CSV, latency/memory from ``bench_csv`` if given,
    else from the study's side-by-side pass (``SIDE_BY_SIDE`` beside the CSV) when it has one.

    Without either, the peers are the study's own ``peers.csv`` (1 thread), when it timed them.
    """
    rows = read_rows(results_csv)
    side = Path(results_csv).parent / SIDE_BY_SIDE
    if not bench_csv and side.is_file():
        bench = read_bench(side)
        n = len(rows)
        rows, peers = apply_bench(rows, bench, stat=SIDE_BY_SIDE_STAT)
        matched = sum(r.pop("_bench", False) for r in rows)
        passes = max((int(b.get("rounds") or 1) for b in bench), default=1)
        return (
            rows,
            [b for b in peers if b.get("threads") == 1],
            f"one side-by-side pass after training (`{SIDE_BY_SIDE}`: every graph and peer in one process, "
            f"{passes} passes, fastest loop) for {matched} of {n} detectors",
        )
    if not bench_csv:
        own = Path(results_csv).parent / PEERS_CSV
        peers = [b for b in read_bench(own) if b.get("threads") == 1] if own.is_file() else []
        return rows, peers, "this machine"
    n = len(rows)
    rows, peers = apply_bench(rows, read_bench(bench_csv))
    matched = sum(r.pop("_bench", False) for r in rows)
    return rows, peers, f"`{bench_csv}` for {matched} of {n} detectors (the rest: the study machine)"


def keep_data(results_csv: Path, rows: Sequence[dict], out: Path) -> Path:
    """Copy the study CSV, its peers CSV and each run's epoch CSV and layer times into ``out/data``: the committed
    report can then be written again (``python -m lwdet.report out/data/results.csv``, e.g. with a Pi's bench CSV)
    after the run folders are gone. Nothing is copied onto itself."""
    data = out / DATA
    if results_csv.resolve().parent == data.resolve():
        return data
    data.mkdir(parents=True, exist_ok=True)
    table = read_table(results_csv, "study results CSV")
    kept = {}  # model -> the folder its run's files are copied into, relative to data/
    for r in rows:
        for name in (artifacts.RESULTS_CSV, LAYER_TIMES):
            f = _run_file(r, results_csv.parent, name)
            if f is not None:
                (data / f.parent.name).mkdir(exist_ok=True)
                shutil.copyfile(f, data / f.parent.name / name)
                kept[str(r.get("model"))] = f.parent.name
    # the copy's run folders are its own subfolders: it renders wherever it is copied to
    for r in table:
        run = resolve(r.get("run_dir"), results_csv.parent)
        r["run_dir"] = kept.get(r.get("model")) or (Path(run).name if run else run)
    write_csv(data / RESULTS, table, list(table[0]) if table else CORE_COLUMNS)
    for name in (PEERS_CSV, SIDE_BY_SIDE):
        if (results_csv.parent / name).is_file():
            shutil.copyfile(results_csv.parent / name, data / name)
    return data
