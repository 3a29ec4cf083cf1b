"""ncnn's int8 format for a graph, and which layers to keep in float.

A quantized layer is what ncnn2int8 writes (tools/quantize/net_quantize.cpp): int8 weights (tag 0x000D4B38) with one
scale per output channel (Convolution, InnerProduct: ``8=2``) or per group (ConvolutionDepthWise: ``8=1``), then
the bias as it was, the weight scales and the input blob's scale as float32. ncnn quantizes the input on the fly and
dequantizes the output, so every other layer runs as before and any subset of layers can stay float.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from lwdet.quantize.graph import TAG_INT8, Blob, Graph, Layer

LOGGER = logging.getLogger(__name__)


def _round(x: np.ndarray) -> np.ndarray:
    """C's round(): halves away from zero (numpy's rounds halves to even), as ncnn's float2int8."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def weight_scales(lay: Layer) -> np.ndarray:
    """127 / max|w| per output channel (per group for depthwise); 1 for an all-zero channel, as ncnn2table."""
    groups = lay.int_param(7, 1) if lay.type == "ConvolutionDepthWise" else lay.int_param(0)
    absmax = np.abs(lay.blobs[0].values.reshape(groups, -1)).max(axis=1)
    return np.where(absmax > 0, 127.0 / np.maximum(absmax, 1e-30), 1.0).astype(np.float32)


def quantize_layer(lay: Layer, input_scale: float) -> Layer:
    """The layer in ncnn's int8 format: int8 weights, ``8=`` set, weight and input scales appended."""
    ws = weight_scales(lay)
    w = lay.blobs[0].values.reshape(len(ws), -1)
    q = np.clip(_round(w * ws[:, None]), -127, 127).astype(np.int8).reshape(-1)
    term = "1" if lay.type == "ConvolutionDepthWise" else "2"
    blobs = [Blob(q, True, TAG_INT8), *lay.blobs[1:], Blob(ws, False), Blob(np.float32([input_scale]), False)]
    return replace(lay, params={**lay.params, "8": term}, blobs=blobs)


def int8_graph(graph: Graph, scales: dict[str, float], keep_float: Sequence[str] = ()) -> Graph:
    """A copy of ``graph`` with every layer in ``scales`` quantized except those in ``keep_float``."""
    keep = set(keep_float)
    layers = [quantize_layer(lay, scales[lay.name]) if lay.name in scales and lay.name not in keep else lay
              for lay in graph.layers]  # fmt: skip
    return Graph(layers, graph.blob_count)


def output_error(ref: np.ndarray, out: np.ndarray, side: int) -> float:
    """How far a raw detector output (4 + nc, N) moved: class-score L1 per anchor plus box L1 in input sides, both
    weighted by the reference's best score per anchor (what mAP sees: confident anchors)."""
    w = ref[4:].max(axis=0)
    w = w / max(float(w.sum()), 1e-12)
    box = np.abs(out[:4] - ref[:4]).sum(axis=0) / side
    score = np.abs(out[4:] - ref[4:]).sum(axis=0)
    return float(np.sum(w * (box + score)))


@dataclass
class Step:
    """One candidate of the keep-float search: how many of the most sensitive layers stay float, and its mAP."""

    kept: int
    map5095: float
    passed: bool


@dataclass
class Search:
    target: float  # the lowest accepted mAP50-95
    steps: list[Step] = field(default_factory=list)


def keep_float_search(
    ranked: Callable[[], Sequence[str]], evaluate: Callable[[Sequence[str]], float], target: float, max_kept: int
) -> tuple[list[str] | None, Search]:
    """The fewest most-sensitive layers to keep float so that ``evaluate(kept) >= target``: 0, then 1, 2, 4, ...
    up to ``max_kept``, then bisection between the last failure and the first success. None: no count passed.
    ``ranked`` (most sensitive first) is asked for only when quantizing every layer misses the target."""
    s = Search(target)
    order: list[str] = []
    done: dict[int, float] = {}

    def ok(k: int) -> bool:
        if k not in done:
            done[k] = evaluate(order[:k])
            s.steps.append(Step(k, done[k], done[k] >= target))
            LOGGER.info("int8 with %d layer(s) kept float: mAP50-95 %.4f (target >= %.4f)", k, done[k], target)
        return done[k] >= target

    if ok(0):
        return [], s
    order = list(ranked())
    max_kept = min(max_kept, len(order))
    lo, k = 0, 1
    if max_kept < 1:
        return None, s
    while not ok(min(k, max_kept)):
        if k >= max_kept:
            return None, s
        lo, k = k, k * 2
    hi = min(k, max_kept)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return order[:hi], s


def rank_layers(
    graph: Graph,
    scales: dict[str, float],
    inputs: Sequence[np.ndarray],
    workdir,
    side: int,
    progress: Callable | None = None,
) -> list[tuple[str, float]]:
    """Every quantizable layer with the ``output_error`` it causes alone (only it int8) on ``inputs``, worst first."""
    from pathlib import Path

    from lwdet.quantize.calibrate import FloatNet

    workdir = Path(workdir)
    param, model = workdir / "fp32.param", workdir / "fp32.bin"
    graph.write(param, model)
    ref_net = FloatNet(param, model)
    out = ref_net.net.output_names()[0]
    refs = [ref_net.run(x, [out])[0] for x in inputs]
    ref_net.close()
    bar = progress or (lambda it, **_: it)
    errors = []
    for name in bar(list(scales), desc="int8 sensitivity"):
        one = int8_graph(graph, {name: scales[name]})
        one.write(workdir / "one.param", workdir / "one.bin")
        net = FloatNet(workdir / "one.param", workdir / "one.bin")
        try:
            errors.append(
                (name, float(np.mean([output_error(r, net.run(x, [out])[0], side) for r, x in zip(refs, inputs)])))
            )
        finally:
            net.close()
    return sorted(errors, key=lambda e: -e[1])
