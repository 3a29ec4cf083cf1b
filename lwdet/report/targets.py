"""The study's targets, judged from its rows (same data, budget and input): speed against YOLOv5n, against the
engine's newest nano detector, and against the Yolo-FastestV2 peer graph. Each target is met, not met, or cannot be
judged (a missing row or number, said in words), never an error.

A detector's accuracy is the mean over its seed runs (``seed_groups``), on the test split when every row has one
(``verdict_split``: the val split is where configurations are chosen), else on val; its latency is its first run's,
the one on the plots and the frontier. Latency is ncnn at 1 thread (``latency_ms_t1``), at the study's input size; a
candidate must have been timed on the reference's machine where both rows name it (``--bench-csv`` may cover some
rows only)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from lwdet.experiment.table import FAILED
from lwdet.report.analysis import one_run_each, seed_groups
from lwdet.report.plots import BASELINE
from lwdet.report.rows import ACCURACY, LATENCY, _num, machine_of
from lwdet.report.rows import fmt as _fmt

RIVALS = ("yolo11n", "yolo26n")  # the engine's newest nano detectors: target (a+) takes the more accurate
PEER = "fastestv2"  # the Yolo-FastestV2 peer graph: a peer row whose name, lowercased without - and _, has this
ENGINE = re.compile(r"yolo(v?\d+)[nsmlx]?u?")  # an engine model's name (yolov8n, yolo11n, yolo26n, yolov5nu)
LATENCY_SHARE = 0.5  # (a), (a+): at most this share of the reference's latency ...
ACCURACY_SHARE = 0.95  # ... with at least this share of its mAP50-95
PEER_MAP50_SHARE = 0.5  # (b): at least this share of the baseline's mAP50
MET, NOT_MET, UNJUDGED = "met", "not met", "cannot be judged"


class Split(NamedTuple):
    """The split the verdicts read: its name and its mAP50-95 and mAP50 columns."""

    name: str
    map5095: str
    map50: str

    @property
    def label5095(self) -> str:
        return f"{self.name} mAP50-95"

    @property
    def label50(self) -> str:
        return f"{self.name} mAP50"


VAL = Split("val", ACCURACY, "map50")
TEST = Split("test", "test_map5095", "test_map50")  # columns of lwdet.experiment.table.TEST_COLUMNS


def verdict_split(rows: Sequence[dict]) -> Split:
    """TEST when every row (failed ones aside) has a test mAP50-95 and mAP50, else VAL: the one place that decides
    which split the targets read."""
    kept = [r for r in rows if r.get("status") != FAILED]
    tested = bool(kept) and all(_num(r, k) is not None for r in kept for k in (TEST.map5095, TEST.map50))
    return TEST if tested else VAL


def role(row: dict) -> str:
    """ "baseline" (yolov5n), "engine" (an engine model row: yolo11n, yolo26n, ...) or "lwdet" (every other row)."""
    model = str(row.get("model") or "").lower()
    if model == BASELINE:
        return "baseline"
    own_yaml = not row.get("neck") and not row.get("head")  # a `model:` row: backbone = the YAML's stem
    if ENGINE.fullmatch(model) or (own_yaml and ENGINE.fullmatch(str(row.get("backbone") or "").lower())):
        return "engine"
    return "lwdet"


def detectors(rows: Sequence[dict], split: Split | None = None) -> list[dict]:
    """One entry per detector (first run's row), the split's mAP50-95 and mAP50 columns (``verdict_split``'s by
    default) the mean over its seed runs, ``seeds`` their number."""
    split = split or verdict_split(rows)
    groups = seed_groups(rows)
    out = []
    for r in one_run_each(rows):
        group = groups.get(r.get("model"), [r])
        d = {**r, "seeds": len(group)}
        for key in (split.map5095, split.map50):
            vals = [v for g in group if (v := _num(g, key)) is not None]
            d[key] = sum(vals) / len(vals) if vals else None
        out.append(d)
    return out


def _seeds(d: dict) -> str:
    return f", mean of {d['seeds']} seeds" if d.get("seeds", 1) > 1 else ""


def _judged(target: str, goal: str, why: str) -> dict:
    return {"target": target, "goal": goal, "reference": "-", "candidate": "-", "latency": "-", "accuracy": "-",
            "verdict": f"{UNJUDGED}: {why}"}  # fmt: skip


def _timed(ds: Sequence[dict], key: str, machine: str | None) -> list[dict]:
    """Detectors with a latency and ``key``, timed on ``machine`` where both say (a partial --bench-csv mixes)."""
    return [
        d
        for d in ds
        if _num(d, LATENCY) is not None
        and _num(d, key) is not None
        and (not machine or not d.get("machine") or d["machine"] == machine)
    ]


def _against(target: str, goal: str, ref: dict, lwdet: Sequence[dict], split: Split) -> dict:
    """(a) / (a+): the most accurate lwdet detector at <= LATENCY_SHARE x ``ref``'s latency (none that fast: the
    fastest), its latency ratio and share of ``ref``'s mAP50-95 (on ``split``)."""
    key, label = split.map5095, split.label5095
    ref_ms, ref_map = _num(ref, LATENCY), _num(ref, key)
    if ref_ms is None or ref_map is None or ref_map <= 0:
        return _judged(target, goal, f"{ref['model']} has no latency or no {label} above 0")
    timed = _timed(lwdet, key, ref.get("machine"))
    if not timed:
        return _judged(target, goal, f"no lwdet detector has a {label} and a latency from {ref['model']}'s machine")
    fast = [d for d in timed if d[LATENCY] <= LATENCY_SHARE * ref_ms]
    cand = max(fast, key=lambda d: d[key]) if fast else min(timed, key=lambda d: d[LATENCY])
    ratio, share = cand[LATENCY] / ref_ms, cand[key] / ref_map
    return {
        "target": target,
        "goal": goal,
        "reference": f"{ref['model']}: {_fmt(ref_ms)} ms, {label} {_fmt(ref_map)}{_seeds(ref)}",
        "candidate": f"{cand['model']}{'' if fast else ' (none is that fast: the fastest)'}{_seeds(cand)}",
        "latency": f"{_fmt(cand[LATENCY])} ms = {ratio:.2f}x",
        "accuracy": f"{label} {_fmt(cand[key])} = {100 * share:.1f} %",
        "verdict": MET if ratio <= LATENCY_SHARE and share >= ACCURACY_SHARE else NOT_MET,
        "_model": cand["model"],
    }


def _size(text) -> int | None:
    m = re.match(r"\s*(\d+)", str(text or ""))
    return int(m[1]) if m else None


def _against_peer(
    target: str, goal: str, base: dict | None, lwdet: Sequence[dict], peers: Sequence[dict], sizes, split: Split
) -> dict:
    """(b): the fastest lwdet detector no slower than the Yolo-FastestV2 peer graph with >= PEER_MAP50_SHARE of the
    baseline's mAP50 on ``split`` (none that accurate: the most accurate one no slower; none that fast: the
    fastest)."""
    peer = next((p for p in peers if PEER in re.sub(r"[-_]", "", str(p.get("model", "")).lower())), None)
    if peer is None:
        return _judged(target, goal, "no Yolo-FastestV2 peer timing (the study's peers.csv or --bench-csv)")
    peer_ms, threads, at = _num(peer, "infer_median_ms"), peer.get("threads"), _size(peer.get("input"))
    if peer_ms is None or threads not in (None, 1):
        return _judged(target, goal, f"{peer['model']} has no 1-thread median latency")
    if at is not None and sizes and at not in sizes:
        return _judged(target, goal, f"{peer['model']} was timed at {at} px, the study at {'/'.join(map(str, sizes))}")
    key, label = split.map50, split.label50
    base_map = _num(base, key) if base else None
    if base_map is None or base_map <= 0:
        return _judged(target, goal, f"no {BASELINE} row with a {label} above 0")
    timed = _timed(lwdet, key, machine_of(peer))
    if not timed:
        return _judged(target, goal, f"no lwdet detector has a {label} and a latency from {peer['model']}'s machine")
    fast = [d for d in timed if d[LATENCY] <= peer_ms]
    good = [d for d in fast if d[key] >= PEER_MAP50_SHARE * base_map]
    if good:
        cand, note = min(good, key=lambda d: d[LATENCY]), ""
    elif fast:
        cand, note = max(fast, key=lambda d: d[key]), " (none that fast is accurate enough: the most accurate)"
    else:
        cand, note = min(timed, key=lambda d: d[LATENCY]), " (none is that fast: the fastest)"
    ratio, share = cand[LATENCY] / peer_ms, cand[key] / base_map
    return {
        "target": target,
        "goal": goal,
        "reference": f"{peer['model']} (peer graph): {_fmt(peer_ms)} ms{f' at {at} px' if at else ''}; "
        f"{base['model']}: {label} {_fmt(base_map)}{_seeds(base)}",
        "candidate": f"{cand['model']}{note}{_seeds(cand)}",
        "latency": f"{_fmt(cand[LATENCY])} ms = {ratio:.2f}x",
        "accuracy": f"{label} {_fmt(cand[key])} = {100 * share:.1f} %",
        "verdict": MET if ratio <= 1 and share >= PEER_MAP50_SHARE else NOT_MET,
        "_model": cand["model"],
    }


def targets(rows: Sequence[dict], peers: Sequence[dict] = ()) -> list[dict]:
    """Targets (a), (a+) and (b): one dict each with the cells target, goal, reference, candidate, latency (ms and
    ratio to the reference), accuracy (and share of the reference's) and verdict ("met", "not met" or "cannot be
    judged: why"); ``_model`` names the candidate where there is one. ``peers``: bench rows (1 thread). Accuracy is
    read on ``verdict_split(rows)``."""
    split = verdict_split(rows)
    ds = detectors(rows, split)
    base = next((d for d in ds if role(d) == "baseline"), None)
    lwdet = [d for d in ds if role(d) == "lwdet"]
    names = ("model", "backbone")
    rivals = [d for d in ds if role(d) == "engine" and {str(d.get(k)).lower() for k in names} & set(RIVALS)]
    sizes = sorted({int(v) for r in rows if (v := _num(r, "imgsz")) is not None})
    share, lat = f"{100 * ACCURACY_SHARE:.0f} %", f"{LATENCY_SHARE:g}x"
    goal_a = f"<= {lat} {BASELINE}'s latency, >= {share} of its mAP50-95"
    no_base = _judged("(a)", goal_a, f"the study has no {BASELINE} row")
    out = [_against("(a)", goal_a, base, lwdet, split) if base else no_base]
    goal_r = f"<= {lat} the latency of the more accurate of YOLO11n / YOLO26n, >= {share} of its mAP50-95"
    scored = [d for d in rivals if _num(d, split.map5095) is not None]
    if scored:
        out.append(_against("(a+)", goal_r, max(scored, key=lambda d: d[split.map5095]), lwdet, split))
    else:
        why = f"its YOLO11n / YOLO26n rows have no {split.label5095}"
        why = "the study has no YOLO11n or YOLO26n row" if not rivals else why
        out.append(_judged("(a+)", goal_r, why))
    goal_b = f"no slower than the Yolo-FastestV2 peer graph, >= {100 * PEER_MAP50_SHARE:.0f} % of {BASELINE}'s mAP50"
    out.append(_against_peer("(b)", goal_b, base, lwdet, peers, sizes, split))
    return out
