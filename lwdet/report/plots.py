"""Figures a person can read: the latency / accuracy Pareto plot, accuracy against paper costs, and where ncnn time
goes. Labels are placed by adjustText (no two collide), axis titles are words, and each plot says what it was
measured on (input size, threads, machine). Training curves: ``lwdet.report.curves``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from lwdet.report.analysis import pareto_front
from lwdet.report.rows import ACCURACY, LATENCY, LAYER_TIMES, SLICED_ACCURACY, _num, _run_file

DPI = 120
FIGSIZE = (9.0, 6.0)
BASELINE = "yolov5n"  # lwdet's detectors are named "<baseline>-<parts>": plots drop the shared prefix
DETECTOR_PEERS = ("nanodet", "fastest")  # name parts of the peer graphs that are detectors (the rest: classifiers)
AXIS = {  # column -> axis title in words
    LATENCY: "ncnn latency per image (ms)",
    "latency_ms_t2": "ncnn latency per image, 2 threads (ms)",
    ACCURACY: "val mAP@0.5:0.95",
    "map50": "val mAP@0.5",
    SLICED_ACCURACY: "full-size val mAP@0.5, sliced inference (tiles merged)",
    "gflops": "GFLOPs per image",
    "mac_mb": "memory access cost per image (MB)",
    "params_m": "parameters (millions)",
}
THREADS = {LATENCY: 1, "latency_ms_t2": 2}


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    pyplot().close(fig)
    return path


def is_detector_peer(row: dict) -> bool:
    """Only detector peers belong on a detector's latency axis; classifier backbones are listed, not drawn."""
    return any(k in str(row.get("model", "")).lower() for k in DETECTOR_PEERS)


def short_name(model) -> str:
    """``yolov5n-shufflenetv2_050-litepan`` -> ``shufflenetv2_050-litepan``: the plots say the prefix once."""
    name = str(model)
    rest = name.removeprefix(f"{BASELINE}-")
    return name if rest == name or re.fullmatch(r"seed\d+", rest) else rest  # yolov5n-seed1 stays whole


def measured_on(rows: Sequence[dict], x: str = LATENCY) -> str:
    """'input 160x160 px · ncnn, 1 thread · <machine>' from the rows' imgsz / machine columns (what is known)."""
    parts = []
    sizes = sorted({int(v) for r in rows if (v := _num(r, "imgsz")) is not None})
    if sizes:
        parts.append("input " + " / ".join(f"{s}x{s}" for s in sizes) + " px")
    if x in THREADS:
        parts.append(f"ncnn, {THREADS[x]} thread{'s' if THREADS[x] > 1 else ''}")
    machines = list(dict.fromkeys(str(r["machine"]) for r in rows if r.get("machine")))
    if machines:
        parts.append("; ".join(machines))
    return " · ".join(parts)


def place_labels(
    ax,
    points: Sequence[tuple[float, float, str]],
    colors: Sequence[str] | None = None,
    sizes: Sequence[float] | None = None,
) -> list:
    """One text per (x, y, label), none overlapping another: adjustText spreads them, then any pair still touching
    is pulled apart vertically; a leader line joins a label that moved away to its point."""
    from adjustText import adjust_text

    texts = [
        ax.text(
            x,
            y,
            label,
            fontsize=(sizes[i] if sizes else 7),
            color=(colors[i] if colors else "0.2"),
            ha="left",
            va="bottom",
            bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.75),
        )
        for i, (x, y, label) in enumerate(points)
    ]  # the white ground keeps a label legible over a line
    if len(texts) > 1:
        adjust_text(
            texts, x=[p[0] for p in points], y=[p[1] for p in points], ax=ax, expand=(1.1, 1.3), force_text=(0.3, 0.6)
        )
        _separate(ax, texts)
    renderer = ax.figure.canvas.get_renderer()
    to_data = ax.transData.inverted()
    for t, (x, y, _) in zip(texts, points):
        box = t.get_window_extent(renderer)
        px, py = ax.transData.transform((x, y))
        near = (min(max(px, box.x0), box.x1), min(max(py, box.y0), box.y1))  # the label's point nearest its dot
        if ((near[0] - px) ** 2 + (near[1] - py) ** 2) ** 0.5 > 6:
            ax.annotate(
                "",
                xy=(x, y),
                xytext=tuple(to_data.transform(near)),
                arrowprops=dict(arrowstyle="-", color="0.55", lw=0.5),
            )
    return texts


def _separate(ax, texts, rounds: int = 100) -> None:
    """Move the upper of every overlapping pair of labels up until no two overlap (display pixels)."""
    renderer = ax.figure.canvas.get_renderer()
    for _ in range(rounds):
        boxes = [t.get_window_extent(renderer) for t in texts]
        moved = False
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                if boxes[i].overlaps(boxes[j]):
                    up, down = (i, j) if boxes[i].y0 >= boxes[j].y0 else (j, i)
                    x, y = ax.transData.transform(texts[up].get_position())
                    dy = boxes[down].y1 - boxes[up].y0 + 1.0
                    texts[up].set_position(tuple(ax.transData.inverted().transform((x, y + dy))))
                    boxes[up] = texts[up].get_window_extent(renderer)
                    moved = True
        if not moved:
            return


def _names_note(rows: Sequence[dict]) -> str:
    return (
        f"names drop the prefix '{BASELINE}-'"
        if any(short_name(r.get("model")) != str(r.get("model")) for r in rows)
        else ""
    )


def pareto_figure(rows: Sequence[dict], peers: Sequence[dict] = (), x: str = LATENCY, y: str = ACCURACY):
    """Latency vs accuracy, bubble area ~ params, frontier drawn and named in red; detector peers as dotted lines.

    Returns the matplotlib Figure (None when no row has both values).
    """
    pts = [r for r in rows if _num(r, x) is not None and _num(r, y) is not None]
    if not pts:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    xs, ys = [_num(r, x) for r in pts], [_num(r, y) for r in pts]
    ax.scatter(
        xs,
        ys,
        s=[30 + 80 * (_num(r, "params_m") or 0.0) for r in pts],
        alpha=0.35,
        edgecolors="k",
        linewidths=0.5,
        label="detector (area ~ parameters)",
        zorder=2,
    )
    front = pareto_front(pts, x, y)
    ax.plot(
        [_num(r, x) for r in front],
        [_num(r, y) for r in front],
        "r-",
        lw=1.2,
        drawstyle="steps-post",
        label="Pareto frontier (faster or more accurate than every other)",
        zorder=3,
    )
    if max(xs) > 6 * min(xs) > 0:  # spread the fast corner: equal ratios take equal room
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    styles = (":", "--", "-.")
    for i, p in enumerate(p for p in peers if is_detector_peer(p) and _num(p, "infer_median_ms") is not None):
        lat = _num(p, "infer_median_ms")
        ax.axvline(
            lat,
            color=f"C{(i + 2) % 10}",
            ls=styles[i % 3],
            lw=1.0,
            label=f"{p.get('model')} (peer graph, {lat:.2g} ms, no accuracy here)",
        )
    ax.margins(x=0.08, y=0.1)
    lo, hi = ax.get_ylim()
    if min(ys) >= 0:  # mAP is never negative: only a sliver of room below 0
        ax.set_ylim(max(lo, -0.03 * max(hi, 1e-3)), hi)
    ax.set_xlabel(AXIS.get(x, x))
    ax.set_ylabel(AXIS.get(y, y))
    ax.grid(alpha=0.3, which="both")
    ax.set_title(measured_on(pts, x), fontsize=9, loc="left")
    on = [any(r is f for f in front) for r in pts]
    place_labels(
        ax,
        [(a, b, short_name(r.get("model"))) for r, a, b in zip(pts, xs, ys)],
        colors=["#c00000" if o else "0.3" for o in on],
        sizes=[7.5 if o else 6.5 for o in on],
    )
    note = _names_note(pts)
    ax.legend(
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=2,
        frameon=False,
        markerscale=0.6,
        title=note or None,
        title_fontsize=7,
    )
    return fig


def plot_pareto(
    rows: Sequence[dict], path: Path, peers: Sequence[dict] = (), x: str = LATENCY, y: str = ACCURACY
) -> Path | None:
    fig = pareto_figure(rows, peers, x, y)
    return None if fig is None else save(fig, path)


def scatter_figure(rows: Sequence[dict], x: str, xlabel: str | None = None, y: str = ACCURACY):
    pts = [r for r in rows if _num(r, x) is not None and _num(r, y) is not None]
    if not pts:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(FIGSIZE[0] - 1.5, FIGSIZE[1] - 1.0))
    ax.scatter([_num(r, x) for r in pts], [_num(r, y) for r in pts], s=25, zorder=2)
    ax.margins(0.08)
    ax.set_xlabel(xlabel or AXIS.get(x, x))
    ax.set_ylabel(AXIS.get(y, y))
    ax.grid(alpha=0.3)
    title = " · ".join(t for t in (measured_on(pts, x), _names_note(pts)) if t)
    ax.set_title(title, fontsize=8, loc="left")
    place_labels(ax, [(_num(r, x), _num(r, y), short_name(r.get("model"))) for r in pts], sizes=[6.5] * len(pts))
    return fig


def plot_scatter(rows: Sequence[dict], x: str, xlabel: str | None, path: Path, y: str = ACCURACY) -> Path | None:
    fig = scatter_figure(rows, x, xlabel, y)
    return None if fig is None else save(fig, path)


def plot_time_split(rows: Sequence[dict], path: Path) -> Path | None:
    """Stacked horizontal bars: ncnn ms of backbone, neck and head per detector (lwdet.parts)."""
    keys = ("backbone_ms", "neck_ms", "head_ms")
    pts = [r for r in rows if all(_num(r, k) is not None for k in keys)]
    if not pts:
        return None
    pts = sorted(pts, key=lambda r: sum(_num(r, k) for k in keys))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], 1.2 + 0.25 * len(pts)))
    left = [0.0] * len(pts)
    for part, color in zip(keys, ("#4c72b0", "#dd8452", "#55a868")):
        w = [max(_num(r, part), 0.0) for r in pts]
        ax.barh(range(len(pts)), w, left=left, color=color, label=part.removesuffix("_ms"))
        left = [a + b for a, b in zip(left, w)]
    ax.set_yticks(range(len(pts)), [short_name(r["model"]) for r in pts], fontsize=7)
    ax.set_xlabel("ncnn time per image, 1 thread, each part exported alone (ms)")
    ax.set_title(" · ".join(t for t in (measured_on(pts, ""), _names_note(pts)) if t), fontsize=8, loc="left")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(alpha=0.3, axis="x")
    return save(fig, path)


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
    plt = pyplot()
    names = sorted(shares)
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], 1.2 + 0.25 * len(names)))
    left = [0.0] * len(names)
    for k in [*kinds, "other"]:
        w = [
            sum(v for t, v in shares[n].items() if t not in kinds) if k == "other" else shares[n].get(k, 0.0)
            for n in names
        ]
        ax.barh(range(len(names)), w, left=left, label=k)
        left = [a + b for a, b in zip(left, w)]
    ax.set_yticks(range(len(names)), [short_name(n) for n in names], fontsize=7)
    ax.set_xlabel("share of the ncnn time per image, 1 thread (%)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return save(fig, path)
