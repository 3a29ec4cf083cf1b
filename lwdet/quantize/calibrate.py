"""Activation statistics of an fp32 ncnn model on calibration images: per input blob of every quantizable layer,
max |x| (first pass) and a histogram of |x| over [0, max] (second pass), computed by ncnn itself (extractors)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ncnn
import numpy as np

from lwdet.quantize.graph import Graph
from lwdet.quantize.thresholds import BINS, scale, threshold

LOGGER = logging.getLogger(__name__)


@dataclass
class BlobStats:
    absmax: float = 0.0
    elements: int = 0  # per image
    hist: np.ndarray | None = None


class FloatNet:
    """An ncnn model run in fp32 (fp16 off, int8 on where the model has it), every blob kept (lightmode off)."""

    def __init__(self, param: str | Path, model: str | Path, threads: int = 1):
        self.net = ncnn.Net()
        o = self.net.opt
        o.use_vulkan_compute, o.lightmode, o.num_threads = False, False, threads
        o.use_fp16_storage = o.use_fp16_packed = o.use_fp16_arithmetic = False
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(model)) != 0:
            raise RuntimeError(f"ncnn {ncnn.__version__} cannot load {param}")
        self.input = self.net.input_names()[0]

    def run(self, x: np.ndarray, blobs: Sequence[str]) -> list[np.ndarray]:
        x = np.ascontiguousarray(x[0] if x.ndim == 4 else x, dtype=np.float32)
        outs = []
        with self.net.create_extractor() as ex:
            ex.input(self.input, ncnn.Mat(x))
            for b in blobs:
                ret, m = ex.extract(b)
                if ret != 0:
                    raise RuntimeError(f"ncnn failed to compute blob {b!r} (code {ret})")
                outs.append(np.array(m))
                del m
        return outs

    def close(self) -> None:
        self.net.clear()


def collect_stats(
    param: str | Path,
    model: str | Path,
    images: Sequence[Path],
    load: Callable[[Path], np.ndarray],
    blobs: Sequence[str],
    progress: Callable | None = None,
) -> dict[str, BlobStats]:
    """max |x| and a ``BINS``-bin histogram of |x| of each blob over ``images`` (``load``: path -> (3, H, W))."""
    net = FloatNet(param, model)
    stats = {b: BlobStats() for b in blobs}
    bar = progress or (lambda it, **_: it)
    try:
        for f in bar(images, desc="calibration: ranges"):
            for b, a in zip(blobs, net.run(load(f), blobs)):
                s = stats[b]
                s.absmax = max(s.absmax, float(np.abs(a).max()) if a.size else 0.0)
                s.elements = max(s.elements, int(a.size))
        for s in stats.values():
            s.hist = np.zeros(BINS, dtype=np.int64)
        for f in bar(images, desc="calibration: histograms"):
            for b, a in zip(blobs, net.run(load(f), blobs)):
                s = stats[b]
                if s.absmax > 0:
                    v = np.abs(a[a != 0])  # zeros skipped, as ncnn2table: a ReLU's would swamp the first bin
                    h, _ = np.histogram(v, bins=BINS, range=(0.0, s.absmax))
                    s.hist += h
    finally:
        net.close()
    return stats


def blob_scales(graph: Graph, stats: dict[str, BlobStats], method: str) -> dict[str, float]:
    """Each quantizable layer's input scale (127 / threshold), by layer name."""
    out = {}
    for lay in graph.quantizable():
        s = stats[lay.bottoms[0]]
        out[lay.name] = scale(threshold(method, s.hist, s.absmax, s.elements))
    return out
