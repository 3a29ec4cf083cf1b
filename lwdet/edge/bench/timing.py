"""Timing statistics: per-loop timing as benchncnn does it, summaries, and merging repeated passes (numpy only)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

STATS = ("min_ms", "median_ms", "mean_ms", "p90_ms", "max_ms", "fps")
Progress = Callable[[Iterable, str], Iterable]


def summarize(times_ms) -> dict[str, float]:
    """min / median / mean / p90 / max in ms and FPS (1000 / mean) of per-loop times."""
    t = np.asarray(times_ms, dtype=float)
    if not t.size:
        raise ValueError("no timings to summarize (loops must be >= 1)")
    mean = float(t.mean())
    return {
        "min_ms": float(t.min()),
        "median_ms": float(np.median(t)),
        "mean_ms": mean,
        "p90_ms": float(np.percentile(t, 90)),
        "max_ms": float(t.max()),
        "fps": 1000.0 / mean if mean else 0.0,
    }


def time_loops(
    fn: Callable[[], object], loops: int, warmup: int, progress: Progress | None = None, desc: str = ""
) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``loops`` times; the per-loop times in ms."""
    if loops < 1 or warmup < 0:
        raise ValueError(f"loops must be >= 1 and warmup >= 0, got loops={loops}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in progress(range(loops), desc) if progress else range(loops):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def merge_rounds(passes: Sequence[Sequence[dict]]) -> list[dict]:
    """One row per model x runtime x threads from several passes over the same models: the median over the passes
    of each median / mean / p90 (and of pre / post ms), the lowest min, the highest max and peak memory, FPS from
    the merged mean; ``rounds`` = how many passes."""
    merged = []
    for group in zip(*passes):
        row = dict(group[0])
        for prefix in ("infer_", "e2e_"):
            if row.get(f"{prefix}mean_ms") is None:
                continue
            for stat in ("median_ms", "mean_ms", "p90_ms"):
                row[prefix + stat] = float(np.median([g[prefix + stat] for g in group]))
            row[prefix + "min_ms"] = min(g[prefix + "min_ms"] for g in group)
            row[prefix + "max_ms"] = max(g[prefix + "max_ms"] for g in group)
            row[prefix + "fps"] = 1000.0 / row[prefix + "mean_ms"] if row[prefix + "mean_ms"] else 0.0
        for key in ("pre_ms", "post_ms"):
            if row.get(key) is not None:
                row[key] = float(np.median([g[key] for g in group]))
        peaks = [g["mem_peak_mb"] for g in group if g.get("mem_peak_mb") is not None]
        row["mem_peak_mb"] = max(peaks) if peaks else None
        row["rounds"] = len(group)
        merged.append(row)
    return merged
