"""What the rows say: the Pareto frontier, seed noise, the best detector under limits, ranking stability, and where
paper costs (FLOPs, memory access, params) and measured latency disagree."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from lwdet.report.rows import ACCURACY, LATENCY, MEMORY, SEED_RUN, _num, epoch_curves
from lwdet.report.rows import fmt as _fmt

# figure name -> (epoch CSV column, axis label)
CURVES = {
    "map50": ("metrics/mAP50(B)", "val mAP@0.5"),
    "map5095": ("metrics/mAP50-95(B)", "val mAP@0.5:0.95"),
    "precision": ("metrics/precision(B)", "val precision"),
    "recall": ("metrics/recall(B)", "val recall"),
    "f1": ("metrics/F1(B)", "val F1 (mean over classes)"),
    "box_loss": ("train/box_loss", "train box loss"),
    "cls_loss": ("train/cls_loss", "train class loss"),
}
PROXIES = (("gflops", "GFLOPs"), ("mac_mb", "memory access cost"), ("params_m", "params"))


def pareto_front(rows: Sequence[dict], x: str = LATENCY, y: str = ACCURACY) -> list[dict]:
    """Rows not dominated: no other row has x <= and y >= with one strictly better. Sorted by x."""
    pts = [(r, _num(r, x), _num(r, y)) for r in rows]
    pts = [(r, a, b) for r, a, b in pts if a is not None and b is not None]
    front = [r for r, a, b in pts if not any(a2 <= a and b2 >= b and (a2 < a or b2 > b) for _, a2, b2 in pts)]
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
        row = {
            "model": model,
            "seeds": ", ".join("?" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in seeds),
        }
        for key, label in ((ACCURACY, "val"), ("test_map5095", "test")):
            vals = [_num(r, key) for r in group]
            if all(v is not None for v in vals):
                row[f"{label}_map5095"] = " / ".join(_fmt(v) for v in vals)
                row[f"{label}_spread"] = max(vals) - min(vals)
        out.append(row)
    return out


def best_under(
    rows: Sequence[dict],
    max_latency_ms: float | None = None,
    max_params_m: float | None = None,
    max_memory_mb: float | None = None,
    min_map: float | None = None,
) -> list[dict]:
    """Rows meeting every given limit, best mAP50-95 first (ties: lower latency, then fewer params).

    A row that lacks a limited value (e.g. no latency measured) does not qualify for that limit.
    """
    limits = (
        (LATENCY, max_latency_ms, 1),
        ("params_m", max_params_m, 1),
        (MEMORY, max_memory_mb, 1),
        (ACCURACY, min_map, -1),
    )
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


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-a between two scorings of the same items (1: same order, -1: reversed); None under 2 items."""
    n = len(a)
    if n < 2:
        return None

    def sign(x: float) -> int:
        return (x > 0) - (x < 0)

    s = sum(sign(a[i] - a[j]) * sign(b[i] - b[j]) for i in range(n) for j in range(i + 1, n))
    return s / (n * (n - 1) / 2)


def ranking_over_epochs(
    rows: Sequence[dict],
    base: Path | None = None,
    fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    curves: dict[str, dict[str, list[float]]] | None = None,
) -> tuple[list[dict], dict]:
    """Per-epoch val mAP50-95 of every run at fractions of the budget, and how stable the ranking is.

    Returns (table rows: model + ``ep<N>`` columns, {"ep<N>": Kendall tau of the ranking at epoch N against the
    last epoch}). Runs of different lengths are compared at the same epoch numbers (those of the shortest run).
    ``curves``: the runs' epoch CSVs read already (``epoch_curves``).
    """
    col = CURVES["map5095"][0]
    curves = epoch_curves(rows, base) if curves is None else curves
    runs = {}
    for model, cols in curves.items():
        values = [v for v in cols.get(col, []) if not math.isnan(v)]
        if values:
            runs[model] = values
    if not runs:
        return [], {}
    n = min(len(v) for v in runs.values())
    epochs = sorted({max(1, round(f * n)) for f in fractions})
    table = [{"model": m, **{f"ep{e}": v[e - 1] for e in epochs}} for m, v in runs.items()]
    last = [v[n - 1] for v in runs.values()]
    taus = {f"ep{e}": kendall_tau([v[e - 1] for v in runs.values()], last) for e in epochs}
    return table, taus


def cost_vs_latency(
    rows: Sequence[dict], x: str = LATENCY, margin: float = 0.05, top: int = 10
) -> tuple[list[dict], dict]:
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
                pairs.append(
                    {
                        "fewer_flops": a.get("model"),
                        "but_slower_than": b.get("model"),
                        "gflops_ratio": fa / fb,
                        "latency_ratio": slower,
                        "mac_ratio": mac,
                    }
                )
    pairs.sort(key=lambda p: -p["latency_ratio"])
    return pairs[:top], taus


PLATEAU_EPOCHS = 10  # the last this many epochs ...
PLATEAU_SHARE = 0.05  # ... add less than this share of the final mAP50-95: a plateau
PLATEAU_SMOOTH = 3  # both ends are the mean of this many epochs (ending there), to damp epoch-to-epoch noise


def _ending_at(by_epoch: dict[int, float], epoch: int) -> float | None:
    vals = [by_epoch[e] for e in range(epoch - PLATEAU_SMOOTH + 1, epoch + 1) if e in by_epoch]
    return sum(vals) / len(vals) if vals else None


def plateau(curves: dict[str, dict[str, list[float]]]) -> list[dict]:
    """Per run: has val mAP50-95 stopped rising? From the raw per-epoch values of its epoch CSV (not the best so
    far): ``final_map5095`` = mean of the last PLATEAU_SMOOTH epochs, ``map5095_10_earlier`` = the same mean ending
    PLATEAU_EPOCHS epochs before, ``last10_share`` = (final - earlier) / final, and a verdict: "plateau" (share
    < PLATEAU_SHARE), "still rising", "too short" (PLATEAU_EPOCHS epochs or fewer) or "no accuracy" (final <= 0)."""
    col = CURVES["map5095"][0]
    out = []
    for model, cols in curves.items():
        values = cols.get(col, [])
        epochs = cols.get("epoch") or [float(i) for i in range(1, len(values) + 1)]
        by_epoch = {int(e): v for e, v in zip(epochs, values) if not (math.isnan(e) or math.isnan(v))}
        if not by_epoch:
            continue
        last = max(by_epoch)
        row = {"model": model, "epochs": last, "final_map5095": _ending_at(by_epoch, last)}
        earlier = _ending_at(by_epoch, last - PLATEAU_EPOCHS) if last > PLATEAU_EPOCHS else None
        row["map5095_10_earlier"] = earlier
        share = None
        if earlier is None:
            verdict = "too short"
        elif row["final_map5095"] <= 0:
            verdict = "no accuracy"
        else:
            share = (row["final_map5095"] - earlier) / row["final_map5095"]
            verdict = "plateau" if share < PLATEAU_SHARE else "still rising"
        out.append({**row, "last10_share": share, "verdict": verdict})
    return out
