"""Projected Raspberry Pi 4 / Pi 5 latency for rows timed on another machine: a PROJECTION, not a measurement.

ncnn publishes Pi 4 (1 and 4 threads) and Pi 5 (4 threads) timings of seven peer graphs (``PUBLISHED``; the graphs
are in ../shared/peers/ncnn). Time the same graphs on this machine in the same run (``bench_edge.py --peers``) and
each Pi setting gets a scale: the geometric mean of published / here over the peers, from whichever thread count
here predicts it best (``fit``). Its leave-one-out error (each peer predicted from the other six) is the ± every
projection carries. A bench CSV from a real Pi replaces all of this. Method and measured error: docs/pi-projection.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# ncnn benchmark/README.md (avg ms, loop_count 10), as listed in ../shared/peers/README.md
PUBLISHED: dict[str, dict[str, float]] = {
    "mobilenet_v2": {"pi4-t4": 61.88, "pi4-t1": 93.48, "pi5-t4": 10.52},
    "mobilenet_v3": {"pi4-t4": 47.53, "pi4-t1": 72.81, "pi5-t4": 7.35},
    "shufflenet_v2": {"pi4-t4": 24.56, "pi4-t1": 42.12, "pi5-t4": 3.39},
    "mnasnet": {"pi4-t4": 51.98, "pi4-t1": 83.98, "pi5-t4": 7.10},
    "nanodet_m": {"pi4-t4": 68.38, "pi4-t1": 103.45, "pi5-t4": 11.18},
    "yolo-fastestv2": {"pi4-t4": 37.47, "pi4-t1": 47.03, "pi5-t4": 4.80},
    "FastestDet": {"pi4-t4": 38.69, "pi4-t1": 52.61, "pi5-t4": 5.34},
}
TARGETS = {"pi4-t1": ("pi4", 1), "pi4-t4": ("pi4", 4), "pi5-t4": ("pi5", 4)}
# What every projection assumes: ncnn's defaults on the board, as ncnn's published timings ran (fp16 storage on the
# Pi 4's Cortex-A72; fp16 storage and arithmetic on the Pi 5's Cortex-A76), whatever precision the export stores.
ASSUMES = {"pi4": "ncnn defaults (fp16 storage)", "pi5": "ncnn defaults (fp16 storage + arithmetic)"}
# int8: ncnn benchmark/README.md, avg ms of (model, model_int8). Pi 4: "Raspberry Pi 4 Model B Broadcom BCM2711B0,
# Cortex-A72 (ARMv8) (1.8GHz x 4)", `benchncnn 10 4 0 -1 1` / `benchncnn 10 1 0 -1 1` (the section PUBLISHED's Pi 4
# columns come from). Pi 5: "Raspberry Pi 5 Broadcom BCM2712, Cortex-A76 (ARMv8) (2.4GHz x 4)" (ncnn PR #5058,
# refreshed by #5216), `benchncnn 10 {4,1} 0 -1 -1`, as ../shared/peers/ncnn-pi5-int8.csv lists it; its 4-thread
# mobilenet fp average is a noisy run (min 9.00, max 72.98), so that pair is the two minima. On the Pi 5 int8 barely
# pays: 1.02-1.21x at 4 threads, 0.69-1.41x at 1 thread (vgg16, resnet18, googlenet, squeezenet_ssd slower).
PUBLISHED_INT8: dict[str, dict[str, tuple[float, float]]] = {
    "pi4-t4": {
        "squeezenet": (46.65, 42.59),
        "mobilenet": (61.17, 34.37),
        "googlenet": (114.35, 101.25),
        "resnet18": (123.12, 83.92),
        "vgg16": (547.09, 394.23),
        "resnet50": (262.83, 196.65),
        "squeezenet_ssd": (127.61, 105.47),
        "mobilenet_ssd": (121.46, 71.14),
    },
    "pi4-t1": {
        "squeezenet": (73.96, 69.42),
        "mobilenet": (124.32, 84.82),
        "googlenet": (235.94, 210.00),
        "resnet18": (191.10, 158.50),
        "vgg16": (1071.85, 869.84),
        "resnet50": (534.11, 423.96),
        "squeezenet_ssd": (179.30, 157.89),
        "mobilenet_ssd": (251.00, 170.56),
    },
    "pi5-t4": {
        "squeezenet": (7.38, 7.21),
        "mobilenet": (9.00, 8.68),  # the minima: the fp average is a noisy run
        "googlenet": (25.35, 24.12),
        "resnet18": (19.96, 16.74),
        "vgg16": (129.24, 107.01),
        "resnet50": (46.21, 40.75),
        "squeezenet_ssd": (30.37, 28.15),
        "mobilenet_ssd": (24.52, 22.05),
    },
    "pi5-t1": {  # no Pi 5 1-thread fp32 projection target (PUBLISHED has none); kept for the record
        "squeezenet": (11.87, 11.82),
        "mobilenet": (20.30, 14.44),
        "googlenet": (48.71, 49.15),
        "resnet18": (29.68, 36.42),
        "vgg16": (189.63, 273.10),
        "resnet50": (89.43, 80.16),
        "squeezenet_ssd": (38.29, 40.94),
        "mobilenet_ssd": (45.90, 36.35),
    },
}
BOARDS = {"pi4": ("pi4-t1", "pi4-t4"), "pi5": ("pi5-t4",)}
STAT = "infer_min_ms"  # the least disturbed loop: this machine is shared, a Pi is timed idle


@dataclass
class Scale:
    """Pi ms = ``ratio`` x this machine's ms at ``threads_here``; ``loo_mean`` / ``loo_max``: leave-one-out relative
    error (0.12 = 12 %) over ``n`` peers."""

    target: str
    threads_here: int
    ratio: float
    loo_mean: float
    loo_max: float
    n: int


def ratio(here: Sequence[float], published: Sequence[float]) -> float:
    """Geometric mean of published / here (a multiplicative scale, so each peer weighs the same)."""
    if not here or len(here) != len(published):
        raise ValueError("ratio: need as many timings here as published, at least one")
    return math.exp(sum(math.log(p / h) for h, p in zip(here, published)) / len(here))


def leave_one_out(here: Sequence[float], published: Sequence[float]) -> list[float]:
    """Relative error |predicted - published| / published of each peer, predicted from the scale of the others."""
    if len(here) < 2:
        raise ValueError("leave-one-out needs at least two peers")
    errors = []
    for i in range(len(here)):
        rest_h, rest_p = [h for j, h in enumerate(here) if j != i], [p for j, p in enumerate(published) if j != i]
        errors.append(abs(here[i] * ratio(rest_h, rest_p) - published[i]) / published[i])
    return errors


def peer_timings(rows: Iterable[dict], stat: str = STAT) -> dict[int, dict[str, float]]:
    """{threads: {peer: ms}} from bench rows of the peers in ``PUBLISHED`` (ncnn runtime)."""
    out: dict[int, dict[str, float]] = {}
    for r in rows:
        if r.get("model") in PUBLISHED and r.get("runtime", "ncnn") == "ncnn" and r.get(stat) not in (None, ""):
            out.setdefault(int(r["threads"]), {})[r["model"]] = float(r[stat])
    return out


def fit(rows: Iterable[dict], stat: str = STAT, min_peers: int = 5) -> dict[str, Scale]:
    """One ``Scale`` per Pi setting: from each thread count timed here, the one with the lowest mean LOO error."""
    timed = peer_timings(rows, stat)
    scales = {}
    for target in TARGETS:
        for threads, peers in sorted(timed.items()):
            names = [n for n in PUBLISHED if n in peers]
            if len(names) < min_peers:
                continue
            here, pub = [peers[n] for n in names], [PUBLISHED[n][target] for n in names]
            errs = leave_one_out(here, pub)
            s = Scale(target, threads, ratio(here, pub), sum(errs) / len(errs), max(errs), len(names))
            if target not in scales or s.loo_mean < scales[target].loo_mean:
                scales[target] = s
    if not scales:
        raise ValueError(
            f"no projection: time at least {min_peers} of the peers {', '.join(PUBLISHED)} in the same "
            f"run (bench_edge.py --peers ../shared/peers/ncnn)"
        )
    return scales


def project(
    rows: Iterable[dict], scales: dict[str, Scale], boards: Iterable[str] = ("pi4", "pi5"), stat: str = STAT
) -> list[dict]:
    """Projected rows: for each bench row timed at a Scale's ``threads_here``, that Pi setting's ms ± LOO error."""
    unknown = [b for b in boards if b not in BOARDS]
    if unknown:
        raise ValueError(f"--estimate: unknown board(s) {', '.join(unknown)}; known: {', '.join(BOARDS)}")
    out = []
    for r in rows:
        if r.get(stat) in (None, "") or r.get("runtime", "ncnn") != "ncnn":
            continue
        for board in boards:
            for target in BOARDS[board]:
                s = scales.get(target)
                if s is None or int(r["threads"]) != s.threads_here:
                    continue
                ms = float(r[stat]) * s.ratio
                out.append(
                    {
                        "model": r["model"],
                        "kind": r.get("kind"),
                        "board": board,
                        "pi_threads": TARGETS[target][1],
                        "from_threads": s.threads_here,
                        "projected_ms": ms,
                        "error_pct": 100 * s.loo_mean,
                        "low_ms": ms * (1 - s.loo_mean),
                        "high_ms": ms * (1 + s.loo_mean),
                        "published_ms": PUBLISHED.get(r["model"], {}).get(target),
                        "assumes": ASSUMES[board],
                        "label": "projected",
                    }
                )
    return out


def int8_speedup(target: str) -> tuple[float, float, float] | None:
    """ncnn's published fp32 / int8 time ratio on a Pi setting: (geometric mean, min, max) over its models; None
    where nothing is published (the Pi 5)."""
    pairs = PUBLISHED_INT8.get(target)
    if not pairs:
        return None
    r = [f / i for f, i in pairs.values()]
    return math.exp(sum(map(math.log, r)) / len(r)), min(r), max(r)


def project_int8(fp32_projected: list[dict]) -> list[dict]:
    """int8 rows from the fp32 export's projected rows: Pi ms / ncnn's published int8 speed-up (geometric mean),
    low / high from the fastest / slowest published speed-up and the fp32 projection's own error. This machine's
    int8 timing plays no part: x86 int8 kernels are not ARM's."""
    out = []
    for p in fp32_projected:
        target = next(t for t, (b, n) in TARGETS.items() if b == p["board"] and n == p["pi_threads"])
        sp = int8_speedup(target)
        if sp is None:
            continue
        geo, lo, hi = sp
        out.append({**p, "projected_ms": p["projected_ms"] / geo, "low_ms": p["low_ms"] / hi,
                    "high_ms": p["high_ms"] / lo, "int8_speedup": geo, "int8_speedup_range": [lo, hi],
                    "published_ms": None,
                    "label": f"projected (int8: fp32 projection / ncnn's published {p['board']} int8 speed-up)"})  # fmt: skip
    return out


def table(projected: list[dict]) -> str:
    """Plain-text table, every line marked projected."""
    lines = [f"{'model':<28} {'board':<5} {'threads':>7} {'projected ms':>13} {'± LOO':>7} {'published':>9}"]
    for p in projected:
        pub = "" if p["published_ms"] is None else f"{p['published_ms']:.2f}"
        lines.append(
            f"{p['model']:<28} {p['board']:<5} {p['pi_threads']:>7} {p['projected_ms']:>13.2f} "
            f"{p['error_pct']:>6.0f}% {pub:>9}   (projected from {p['from_threads']} thread(s) here)"
        )
    return "\n".join(lines)


def describe(scales: dict[str, Scale]) -> str:
    """The scales, and the board setting every projection assumes (``ASSUMES``)."""
    assumes = "; assumes " + ", ".join(f"{b}: {a}" for b, a in ASSUMES.items())
    return (
        "; ".join(
            f"{t}: x{s.ratio:.3g} of {s.threads_here}-thread ms here, LOO error mean {100 * s.loo_mean:.0f} % "
            f"max {100 * s.loo_max:.0f} % ({s.n} peers)"
            for t, s in scales.items()
        )
        + assumes
    )


def read_rows(path) -> list[dict]:
    """Rows of a bench CSV (``bench_edge.py --csv``, or docs/pi/peers.csv), as strings; ``fit`` parses what it uses."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def estimate(rows: list[dict], boards: Iterable[str], calibration=None, stat: str = STAT) -> tuple[dict, list[dict]]:
    """What ``--estimate pi4,pi5`` prints: the scales fitted on the peers timed in ``rows`` (or, when the run timed
    none, in the bench CSV ``calibration`` from the same machine) and the projected rows for everything else."""
    peers = [r for r in rows if r.get("model") in PUBLISHED]
    scales = fit(peers or (read_rows(calibration) if calibration else []), stat)
    return scales, project([r for r in rows if r.get("model") not in PUBLISHED], scales, list(boards), stat)
