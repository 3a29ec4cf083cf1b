"""Comparison report: tables, Pareto plot and training curves from a study results CSV.

Input: one row per detector (``COLUMNS``, as written by ``lwdet.study``) plus each row's run folder
(``run_dir/results.csv`` for the curves). Output, in one folder: ``report.md`` and small PNGs.

A bench CSV from a real Raspberry Pi (``bench_edge.py --all ... --csv PI.csv``) can replace this machine's
latency and memory columns: rows are matched by model name, ``infer_median_ms`` at threads 1 / 2 becomes
``latency_ms_t1`` / ``latency_ms_t2`` and ``mem_peak_mb`` (threads 1) becomes ``ncnn_peak_mb``. Bench rows that
match no detector (e.g. ``kind=peer`` networks) are drawn as labelled vertical markers on the Pareto plot.

    python -m lwdet.report runs/study/results.csv --out docs/study --max-latency-ms 80 --bench-csv pi.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import re
import shutil
import sys
from pathlib import Path
from typing import Iterable, Sequence

from lwdet import artifacts

LOGGER = logging.getLogger(__name__)

COLUMNS = (
    "model", "backbone", "neck", "head", "params_m", "gflops", "macs_m", "mac_mb", "peak_act_mb", "pt_mb", "ncnn_bin_mb",
    "train_s", "epoch_s", "map50", "map5095", "precision", "recall", "f1", "latency_ms_t1", "latency_ms_t2",
    "ncnn_peak_mb", "onnx_ms_t1", "backbone_ms", "neck_ms", "head_ms", "parity_ok", "run_dir",
)
TEXT_COLUMNS = ("model", "backbone", "neck", "head", "run_dir")
PEERS_CSV = "peers.csv"  # beside a study's results.csv: the peer graphs timed at the study's input size
LAYER_TIMES = artifacts.LAYER_TIMES  # in a run folder: ncnn ms per layer type (lwdet.parts)
DATA = "data"  # in a report folder: the study CSV and each run's epoch CSV, so the report can be written again
LATENCY = "latency_ms_t1"  # the x axis of the Pareto plot and what --max-latency-ms limits
ACCURACY = "map5095"
MEMORY = "ncnn_peak_mb"
DENSITY = "map5095_per_mparam"  # accuracy density, derived
SEED_RUN = re.compile(r"^(?P<base>.+)-seed(?P<seed>\d+)$")  # lwdet.study names a repeat run "<model>-seed<N>"
# figure name -> (results.csv column, axis label)
CURVES = {
    "map50": ("metrics/mAP50(B)", "mAP50"),
    "map5095": ("metrics/mAP50-95(B)", "mAP50-95"),
    "precision": ("metrics/precision(B)", "precision"),
    "recall": ("metrics/recall(B)", "recall"),
    "f1": ("metrics/F1(B)", "F1"),
    "box_loss": ("train/box_loss", "train box loss"),
    "cls_loss": ("train/cls_loss", "train cls loss"),
}
DPI = 100
CURVES_INSIDE = 8  # up to this many lines the legend sits inside the curve axes
LINESTYLES = ("-", "--", ":")
FIGSIZE = (6.0, 4.0)
# (title, columns) of the markdown tables; every column of COLUMNS appears in one of them
TABLES = (
    ("Accuracy", ("model", "map50", "map5095", "precision", "recall", "f1", DENSITY, "parity_ok")),
    ("Cost", ("model", "params_m", "gflops", "macs_m", "mac_mb", "peak_act_mb", "pt_mb", "ncnn_bin_mb")),
    ("Speed and memory (ncnn; onnxruntime at 1 thread for comparison)",
     ("model", "latency_ms_t1", "latency_ms_t2", "ncnn_peak_mb", "onnx_ms_t1")),
    ("Where the time goes (ncnn, 1 thread, split export)", ("model", "backbone_ms", "neck_ms", "head_ms")),
    ("Training", ("model", "backbone", "neck", "head", "train_s", "epoch_s", "run_dir")),
)


# ------------------------------------------------------------------------------------------------------ rows
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


def with_density(row: dict) -> dict:
    """``row`` plus mAP50-95 per million parameters (None when either is missing)."""
    m, p = row.get(ACCURACY), row.get("params_m")
    ok = isinstance(m, (int, float)) and isinstance(p, (int, float)) and p > 0
    return {**row, DENSITY: m / p if ok else None}


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a study results CSV, numbers parsed (empty -> None), with the accuracy density added."""
    with open(path, newline="", encoding="utf-8") as f:
        return [with_density({k.strip(): _value(k.strip(), v) for k, v in r.items() if k}) for r in csv.DictReader(f)]


def read_bench(path: str | Path) -> list[dict]:
    """Rows of a ``bench_edge.py --csv`` file (numbers parsed)."""
    with open(path, newline="", encoding="utf-8") as f:
        text = ("model", "kind", "runtime", "input", "image", "path", "board", "cpu", "arch", "os", "governor",
                "time_utc", "python", "ncnn", "numpy", "opencv")
        rows = [{k: (v if k in text else _value(k, v)) for k, v in r.items() if k} for r in csv.DictReader(f)]
    for r in rows:
        r["threads"] = int(r["threads"]) if isinstance(r.get("threads"), float) else r.get("threads")
    return rows


def _key(name: str) -> str:
    name = str(name).strip().lower()
    for suffix in ("_ncnn_model", ".ncnn.param", ".param"):
        name = name.removesuffix(suffix)
    return name


def apply_bench(rows: Sequence[dict], bench: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """Replace latency/memory columns by the bench rows of the same model; returns (rows, unmatched bench rows)."""
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
                r[col] = hit[threads].get("infer_median_ms") if threads in hit else None
            first = hit.get(1) or hit[min(hit)]
            r[MEMORY] = first.get("mem_peak_mb")
        else:
            LOGGER.warning("bench CSV has no row for %s; keeping this machine's latency", r.get("model"))
        out.append(r)
    peers = [b for k, t in by_model.items() if k not in used for b in [t.get(1) or t[min(t)]]]
    return out, peers


def _num(row: dict, key: str) -> float | None:
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def pareto_front(rows: Sequence[dict], x: str = LATENCY, y: str = ACCURACY) -> list[dict]:
    """Rows not dominated: no other row has x <= and y >= with one strictly better. Sorted by x."""
    pts = [(r, _num(r, x), _num(r, y)) for r in rows]
    pts = [(r, a, b) for r, a, b in pts if a is not None and b is not None]
    front = [r for r, a, b in pts
             if not any(a2 <= a and b2 >= b and (a2 < a or b2 > b) for _, a2, b2 in pts)]
    return sorted(front, key=lambda r: (_num(r, x), -_num(r, y)))


def seed_groups(rows: Sequence[dict]) -> dict[str, list[dict]]:
    """Detectors trained with more than one seed: model name -> its rows, the run named after the model first.

    A row ``<model>-seed<N>`` belongs to ``<model>`` when that row exists too (``lwdet.study`` names repeats so).
    """
    names = {r.get("model") for r in rows}
    groups: dict[str, list[dict]] = {}
    for r in rows:
        m = SEED_RUN.match(str(r.get("model", "")))
        base = m["base"] if m and m["base"] in names else r.get("model")
        groups.setdefault(base, []).append(r)
    return {k: sorted(v, key=lambda r: r.get("model") != k) for k, v in groups.items() if len(v) > 1}


def one_run_each(rows: Sequence[dict]) -> list[dict]:
    """``rows`` without the repeat-seed runs, so a detector is one point on the frontier, not one per seed."""
    repeats = {id(r) for g in seed_groups(rows).values() for r in g[1:]}
    return [r for r in rows if id(r) not in repeats]


def seed_noise(rows: Sequence[dict]) -> list[dict]:
    """Per detector with repeat seeds: the seeds, val / test mAP50-95 of each, and their spread (max - min)."""
    out = []
    for model, group in seed_groups(rows).items():
        seeds = [r.get("seed") for r in group]
        row = {"model": model, "seeds": ", ".join("?" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
                                                  for v in seeds)}
        for key, label in ((ACCURACY, "val"), ("test_map5095", "test")):
            vals = [_num(r, key) for r in group]
            if all(v is not None for v in vals):
                row[f"{label}_map5095"] = " / ".join(_fmt(v) for v in vals)
                row[f"{label}_spread"] = max(vals) - min(vals)
        out.append(row)
    return out


def best_under(rows: Sequence[dict], max_latency_ms: float | None = None, max_params_m: float | None = None,
               max_memory_mb: float | None = None, min_map: float | None = None) -> list[dict]:
    """Rows meeting every given limit, best mAP50-95 first (ties: lower latency, then fewer params).

    A row that lacks a limited value (e.g. no latency measured) does not qualify for that limit.
    """
    limits = ((LATENCY, max_latency_ms, 1), ("params_m", max_params_m, 1), (MEMORY, max_memory_mb, 1),
              (ACCURACY, min_map, -1))
    keep = []
    for r in rows:
        ok = _num(r, ACCURACY) is not None
        for col, limit, sign in limits:
            if limit is not None:
                v = _num(r, col)
                ok = ok and v is not None and sign * v <= sign * float(limit)
        if ok:
            keep.append(r)
    inf = float("inf")
    return sorted(keep, key=lambda r: (-_num(r, ACCURACY), _num(r, LATENCY) or inf, _num(r, "params_m") or inf))


# ------------------------------------------------------------------------------------------------------ figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


DETECTOR_PEERS = ("nanodet", "fastest")  # name parts of the peer graphs that are detectors (the rest: classifiers)


def is_detector_peer(row: dict) -> bool:
    """Only detector peers belong on a detector's latency axis; classifier backbones are listed, not drawn."""
    return any(k in str(row.get("model", "")).lower() for k in DETECTOR_PEERS)


LABEL_STEP_PT = 9  # one label line, in points


def label_lifts(points: Sequence[tuple[float, float, int]], width_per_char: float = 0.0085,
                height: float = 0.045) -> list[int]:
    """Lines to lift each (x, y, label length) label so labels do not overlap, lowest points first.

    Positions are taken as fractions of the data range (the axes' extent up to its margins); a label spans
    ``width_per_char`` of the width per character and ``height`` of the height, about a 6-7 pt font on FIGSIZE.
    """
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    wx, wy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    placed: list[tuple[float, float, float]] = []  # (left, right, bottom) of placed labels, as fractions
    lifts = [0] * len(points)
    for i in sorted(range(len(points)), key=lambda k: (ys[k], xs[k])):
        left, bottom = (xs[i] - min(xs)) / wx, (ys[i] - min(ys)) / wy
        right = left + width_per_char * points[i][2]
        while any(left < r and l < right and abs(bottom + lifts[i] * height - b) < height for l, r, b in placed):
            lifts[i] += 1
        placed.append((left, right, bottom + lifts[i] * height))
    return lifts


def plot_pareto(rows: Sequence[dict], path: Path, peers: Sequence[dict] = (), x: str = LATENCY,
                y: str = ACCURACY) -> Path | None:
    """Latency vs mAP50-95, bubble area ~ params, frontier drawn and named; peers as labelled vertical lines."""
    pts = [r for r in rows if _num(r, x) is not None and _num(r, y) is not None]
    if not pts:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    sizes = [40 + 120 * (_num(r, "params_m") or 0.0) for r in pts]
    ax.scatter([_num(r, x) for r in pts], [_num(r, y) for r in pts], s=sizes, alpha=0.45, edgecolors="k",
               linewidths=0.5, label="detector (area ~ params)")
    front = pareto_front(pts, x, y)
    ax.plot([_num(r, x) for r in front], [_num(r, y) for r in front], "r-", lw=1.2, drawstyle="steps-post",
            label="Pareto frontier")
    lifts = label_lifts([(_num(r, x), _num(r, y), len(str(r.get("model")))) for r in pts])
    for r, lift in zip(pts, lifts):
        on = any(r is f for f in front)
        ax.annotate(str(r.get("model")), (_num(r, x), _num(r, y)), fontsize=7 if on else 6,
                    color="red" if on else "0.35", xytext=(4, 3 + LABEL_STEP_PT * lift), textcoords="offset points",
                    arrowprops=dict(arrowstyle="-", color="0.7", lw=0.5) if lift else None)
    for p in (p for p in peers if is_detector_peer(p)):
        lat = _num(p, "infer_median_ms")
        if lat is not None:
            ax.axvline(lat, color="0.6", ls=":", lw=0.8)
            ax.text(lat, ax.get_ylim()[0], f" {p.get('model')}", rotation=90, fontsize=6, color="0.4", va="bottom")
    ax.set_xlabel(f"{x} (ncnn median, ms)")
    ax.set_ylabel("mAP50-95")
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    ax.legend(fontsize=7, loc="lower right", markerscale=0.5)
    return _save(fig, path)


def plot_scatter(rows: Sequence[dict], x: str, xlabel: str, path: Path, y: str = ACCURACY) -> Path | None:
    pts = [r for r in rows if _num(r, x) is not None and _num(r, y) is not None]
    if not pts:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.scatter([_num(r, x) for r in pts], [_num(r, y) for r in pts], s=30)
    for r in pts:
        ax.annotate(str(r.get("model")), (_num(r, x), _num(r, y)), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.margins(0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mAP50-95")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_time_split(rows: Sequence[dict], path: Path) -> Path | None:
    """Stacked horizontal bars: ncnn ms of backbone, neck and head per detector (lwdet.parts)."""
    pts = [r for r in rows if all(_num(r, k) is not None for k in ("backbone_ms", "neck_ms", "head_ms"))]
    if not pts:
        return None
    pts = sorted(pts, key=lambda r: sum(_num(r, k) for k in ("backbone_ms", "neck_ms", "head_ms")))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(FIGSIZE[0] + 1.5, 0.9 + 0.22 * len(pts)))
    left = [0.0] * len(pts)
    for part, color in (("backbone_ms", "#4c72b0"), ("neck_ms", "#dd8452"), ("head_ms", "#55a868")):
        w = [max(_num(r, part), 0.0) for r in pts]
        ax.barh(range(len(pts)), w, left=left, color=color, label=part.removesuffix("_ms"))
        left = [a + b for a, b in zip(left, w)]
    ax.set_yticks(range(len(pts)), [str(r["model"]) for r in pts], fontsize=6)
    ax.set_xlabel("ncnn ms, 1 thread (split export)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def plot_layer_types(rows: Sequence[dict], path: Path, base: Path | None = None, top: int = 6) -> Path | None:
    """Stacked bars of each detector's ncnn time share per layer type (the run folder's layer-time JSON)."""
    shares = {}
    for r in rows:
        f = _run_file(r, base, LAYER_TIMES)
        if f is not None:
            ms = json.loads(f.read_text(encoding="utf-8"))
            total = sum(ms.values()) or 1.0
            shares[str(r["model"])] = {k: 100 * v / total for k, v in ms.items()}
    if not shares:
        return None
    overall: dict[str, float] = {}
    for s in shares.values():
        for k, v in s.items():
            overall[k] = overall.get(k, 0.0) + v
    kinds = sorted(overall, key=lambda k: -overall[k])[:top]
    plt = _pyplot()
    names = sorted(shares)
    fig, ax = plt.subplots(figsize=(FIGSIZE[0] + 2.5, 1.2 + 0.22 * len(names)))
    left = [0.0] * len(names)
    for k in [*kinds, "other"]:
        w = [sum(v for t, v in shares[n].items() if t not in kinds) if k == "other" else shares[n].get(k, 0.0)
             for n in names]
        ax.barh(range(len(names)), w, left=left, label=k)
        left = [a + b for a, b in zip(left, w)]
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_xlabel("share of ncnn time, 1 thread (%)")
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def read_results(path: str | Path) -> dict[str, list[float]]:
    """A run's results.csv as column -> values (the engine may pad names with spaces)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cols: dict[str, list[float]] = {}
    for r in rows:
        for k, v in r.items():
            if k is None:
                continue
            try:
                cols.setdefault(k.strip(), []).append(float(v))
            except (TypeError, ValueError):
                cols.setdefault(k.strip(), []).append(float("nan"))
    return cols


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


def _results_csv(row: dict, base: Path | None) -> Path | None:
    return _run_file(row, base, "results.csv")


def plot_curves(rows: Sequence[dict], out: Path, base: Path | None = None) -> list[Path]:
    """One figure per CURVES metric, one line per detector, from each run's results.csv."""
    runs = {}
    for r in rows:
        f = _results_csv(r, base)
        if f is None:
            LOGGER.warning("no results.csv for %s (run_dir %s); left out of the curves", r.get("model"),
                           r.get("run_dir"))
            continue
        runs[str(r.get("model"))] = read_results(f)
    if not runs:
        return []
    plt = _pyplot()
    colors = plt.get_cmap("tab10").colors
    many = len(runs) > CURVES_INSIDE  # legend beside the axes, not over the lines
    written = []
    for name, (col, label) in CURVES.items():
        fig, ax = plt.subplots(figsize=(FIGSIZE[0] + 3.0, FIGSIZE[1]) if many else FIGSIZE)
        drawn = 0
        for i, (model, cols) in enumerate(runs.items()):
            if col in cols:  # 10 colours, then the same colours dashed, then dotted: no two lines alike
                ax.plot(cols.get("epoch", list(range(1, len(cols[col]) + 1))), cols[col], lw=1.2, label=model,
                        color=colors[i % len(colors)], ls=LINESTYLES[i // len(colors) % len(LINESTYLES)])
                drawn += 1
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if many:
            ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        else:
            ax.legend(fontsize=6, ncol=2)
        written.append(_save(fig, out / f"curve_{name}.png"))
    return written


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-a between two scorings of the same items (1: same order, -1: reversed); None under 2 items."""
    n = len(a)
    if n < 2:
        return None
    def sign(x: float) -> int:
        return (x > 0) - (x < 0)

    s = sum(sign(a[i] - a[j]) * sign(b[i] - b[j]) for i in range(n) for j in range(i + 1, n))
    return s / (n * (n - 1) / 2)


def ranking_over_epochs(rows: Sequence[dict], base: Path | None = None,
                        fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0)) -> tuple[list[dict], dict]:
    """Per-epoch val mAP50-95 of every run at fractions of the budget, and how stable the ranking is.

    Returns (table rows: model + ``ep<N>`` columns, {"ep<N>": Kendall tau of the ranking at epoch N against the
    last epoch}). Runs of different lengths are compared at the same epoch numbers (those of the shortest run).
    """
    col = CURVES["map5095"][0]
    runs = {}
    for r in rows:
        f = _results_csv(r, base)
        if f is not None:
            values = [v for v in read_results(f).get(col, []) if not math.isnan(v)]
            if values:
                runs[str(r.get("model"))] = values
    if not runs:
        return [], {}
    n = min(len(v) for v in runs.values())
    epochs = sorted({max(1, round(f * n)) for f in fractions})
    table = [{"model": m, **{f"ep{e}": v[e - 1] for e in epochs}} for m, v in runs.items()]
    last = [v[n - 1] for v in runs.values()]
    taus = {f"ep{e}": kendall_tau([v[e - 1] for v in runs.values()], last) for e in epochs}
    return table, taus


PROXIES = (("gflops", "GFLOPs"), ("mac_mb", "memory access cost"), ("params_m", "params"))


def cost_vs_latency(rows: Sequence[dict], x: str = LATENCY, margin: float = 0.05,
                    top: int = 10) -> tuple[list[dict], dict]:
    """Where the paper cost and the measured latency disagree.

    Returns (pairs: detector A has at least ``margin`` fewer GFLOPs than B yet is at least ``margin`` slower,
    the ``top`` largest latency ratios first; {proxy column: Kendall tau of that proxy against latency}).
    The margin keeps timing noise from making pairs.
    """
    pts = [r for r in rows if _num(r, x) is not None]
    taus = {}
    for key, _ in PROXIES:
        have = [r for r in pts if _num(r, key) is not None]
        taus[key] = kendall_tau([_num(r, key) for r in have], [_num(r, x) for r in have])
    pairs = []
    for a in pts:
        for b in pts:
            fa, fb = _num(a, "gflops"), _num(b, "gflops")
            if fa is None or fb is None or fb <= 0 or fa > (1 - margin) * fb:
                continue
            slower = _num(a, x) / _num(b, x)
            if slower >= 1 + margin:
                mac = (_num(a, "mac_mb") / _num(b, "mac_mb")) if _num(a, "mac_mb") and _num(b, "mac_mb") else None
                pairs.append({"fewer_flops": a.get("model"), "but_slower_than": b.get("model"),
                              "gflops_ratio": fa / fb, "latency_ratio": slower, "mac_ratio": mac})
    pairs.sort(key=lambda p: -p["latency_ratio"])
    return pairs[:top], taus


# ------------------------------------------------------------------------------------------------------ markdown
def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:.0f}"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (reports are committed)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _constraints_text(limits: dict) -> str:
    names = {"max_latency_ms": "latency <= {} ms", "max_params_m": "params <= {} M",
             "max_memory_mb": "ncnn peak memory <= {} MB", "min_map": "mAP50-95 >= {}"}
    return ", ".join(names[k].format(v) for k, v in limits.items() if v is not None) or "none"




def load_study(results_csv: str | Path, bench_csv: str | Path | None = None) -> tuple[list[dict], list[dict], str]:
    """(rows, peer bench rows, where latency comes from): the study CSV, latency/memory from ``bench_csv`` if given.

    Without ``bench_csv`` the peers are the study's own ``peers.csv`` (1 thread), when it timed them.
    """
    rows = read_rows(results_csv)
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
    shutil.copyfile(results_csv, data / "results.csv")
    if (results_csv.parent / PEERS_CSV).is_file():
        shutil.copyfile(results_csv.parent / PEERS_CSV, data / PEERS_CSV)
    for r in rows:
        for name in ("results.csv", LAYER_TIMES):
            f = _run_file(r, results_csv.parent, name)
            if f is not None:
                (data / f.parent.name).mkdir(exist_ok=True)
                shutil.copyfile(f, data / f.parent.name / name)
    return data


def write_report(results_csv: str | Path, out_dir: str | Path, *, bench_csv: str | Path | None = None,
                 max_latency_ms: float | None = None, max_params_m: float | None = None,
                 max_memory_mb: float | None = None, min_map: float | None = None) -> Path:
    """Write ``report.md`` and the PNGs into ``out_dir``; returns the markdown file."""
    results_csv, out = Path(results_csv), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, peers, latency_source = load_study(results_csv, bench_csv)
    rows = sorted(rows, key=lambda r: -(_num(r, ACCURACY) or -1.0))
    limits = dict(max_latency_ms=max_latency_ms, max_params_m=max_params_m, max_memory_mb=max_memory_mb,
                  min_map=min_map)
    points = one_run_each(rows)  # one point per detector: repeat-seed runs are reported as noise, not plotted
    figs = [plot_pareto(points, out / "pareto_latency_map.png", peers),
            plot_scatter(rows, "gflops", "GFLOPs", out / "map_vs_gflops.png"),
            plot_scatter(rows, "mac_mb", "memory access cost (MB)", out / "map_vs_mac.png"),
            plot_time_split(rows, out / "time_by_part.png"),
            plot_layer_types(rows, out / "time_by_layer_type.png", results_csv.parent),
            *plot_curves(rows, out, results_csv.parent)]
    front = pareto_front(points)
    best = best_under(points, **limits)
    keep_data(results_csv, rows, out)
    md = [f"# Detector comparison\n", f"Source: `{_shown(results_csv)}`; {len(rows)} detectors; latency and memory from "
          f"{latency_source}. Rows sorted by mAP50-95. `{DENSITY}` = mAP50-95 per million parameters.\n"]
    shown = [{**r, "run_dir": _shown(Path(r["run_dir"]))} if r.get("run_dir") else r for r in rows]
    for title, cols in TABLES:
        md += [f"## {title}\n", markdown_table(shown, cols), ""]
    test = ("model", "test_map50", "test_map5095", "test_precision", "test_recall", "test_f1")
    if any(_num(r, "test_map5095") is not None for r in rows):
        md += ["## Accuracy on the test split\n", markdown_table(rows, test), ""]
    table, taus = ranking_over_epochs(rows, results_csv.parent)
    if len(table) > 1:
        md += ["## Is the ranking stable? (val mAP50-95 per epoch, from each run's results.csv)\n",
               "Kendall's tau of each epoch's ranking against the last epoch's (1 = same order): "
               + ", ".join(f"{k[2:]}: {_fmt(v)}" for k, v in taus.items()) + ". Compare the gaps between detectors "
               "with the gap between the baseline's seeds.\n", markdown_table(table, list(table[0])), ""]
    noise = seed_noise(rows)
    if noise:
        md += ["## Seed noise (the same detector and budget, another seed)\n",
               "Differences between detectors smaller than the spread are not evidence. Only the first seed's run "
               "is drawn on the plots and ranked on the frontier.\n", markdown_table(noise, list(noise[0])), ""]
    md += ["## Pareto frontier (latency vs mAP50-95)\n",
           "On the frontier: no other detector is as fast or faster and as accurate or more, and better in one.\n",
           markdown_table(front, ("model", LATENCY, ACCURACY, "params_m")) if front else "_no latency measured_", ""]
    pairs, proxy_taus = cost_vs_latency(points)
    if any(v is not None for v in proxy_taus.values()):
        md += ["## Where FLOPs and latency disagree\n",
               "Kendall's tau of each paper cost against the measured ncnn latency (1 thread; 1 = it orders the "
               "detectors exactly as the clock does): " + ", ".join(f"{label} {_fmt(proxy_taus[k])}"
                                                                    for k, label in PROXIES) + ".\n"]
        md += (["Pairs where a detector has fewer GFLOPs yet is slower (both by 5% or more; largest latency "
                "ratio first; ratios are A / B):\n", markdown_table(pairs, list(pairs[0])), ""]
               if pairs else ["_no detector with 5% fewer GFLOPs is 5% slower than another_", ""])
    md += [f"## Best under constraints ({_constraints_text(limits)})\n",
           markdown_table(best, ("model", ACCURACY, LATENCY, "params_m", MEMORY)) if best
           else "_no detector meets the constraints_", ""]
    if peers:
        md += ["## Peer networks (bench CSV; drawn as dotted lines on the Pareto plot)\n", markdown_table(peers, ("model", "threads", "infer_median_ms",
                                                                       "mem_peak_mb")), ""]
    md += ["## Figures\n"] + [f"![{f.stem}]({f.name})" for f in figs if f is not None] + [""]
    report = out / "report.md"
    report.write_text("\n".join(md), encoding="utf-8")
    LOGGER.info("report: %s (%d figures)", report, sum(f is not None for f in figs))
    return report


# ------------------------------------------------------------------------------------------------------ CLI
def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lwdet.report", description=__doc__.split("\n")[0])
    p.add_argument("results_csv", help="study results CSV (one row per detector)")
    p.add_argument("--out", default="docs/study", help="output folder (default: docs/study)")
    p.add_argument("--bench-csv", help="bench_edge.py --csv file from the target device; replaces latency/memory")
    p.add_argument("--max-latency-ms", type=float)
    p.add_argument("--max-params-m", type=float)
    p.add_argument("--max-memory-mb", type=float)
    p.add_argument("--min-map", type=float, help="minimum mAP50-95")
    a = p.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    limits = dict(max_latency_ms=a.max_latency_ms, max_params_m=a.max_params_m, max_memory_mb=a.max_memory_mb,
                  min_map=a.min_map)
    report = write_report(a.results_csv, a.out, bench_csv=a.bench_csv, **limits)
    best = best_under(load_study(a.results_csv, a.bench_csv)[0], **limits)
    print(f"report: {report}")
    print(f"best under ({_constraints_text(limits)}): " + (", ".join(
        f"{r['model']} (mAP50-95 {_fmt(r.get(ACCURACY))}, {_fmt(r.get(LATENCY))} ms)" for r in best[:5]) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
