"""Where the time goes: ncnn latency of a detector's backbone, neck and head, by split export.

    lwdet parts MODEL_YAML_OR_WEIGHTS [--imgsz 320 --threads 1 --loops 50]

ncnn's Python wheel has no per-layer timer (that needs a build with NCNN_BENCHMARK), so the detector is exported
three times through pnnx: its backbone section alone, backbone + neck (every layer before the head), and the whole
detector. Each graph is timed as benchncnn times a model (zero-filled weights, every output extracted) in one
process, interleaved round by round so that machine noise hits the three alike; the neck's time is the difference
of the first two medians, the head's (prediction convs, DFL decode, sigmoid, concat) the difference of the last two.
The whole graph is also run layer by layer (``layer_type_times``) for the time per ncnn layer type.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from lwdet.artifacts import NCNN_PARAM

LOGGER = logging.getLogger(__name__)
PARTS = ("backbone", "neck", "head")


class Prefix(nn.Module):
    """The detector's layers [0, stop) run as the engine runs them, returning the outputs of ``outputs``."""

    def __init__(self, layers: nn.Sequential, stop: int, outputs: list[int]):
        super().__init__()
        self.layers = layers[:stop]
        self.outputs = outputs

    def forward(self, x):
        y = []
        for m in self.layers:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x)
        return tuple(y[i] for i in self.outputs)


def split(model: nn.Module) -> dict[str, nn.Module]:
    """{'backbone': ..., 'backbone+neck': ..., 'full': model} for an lwdet detector (export-ready copy)."""
    layers = model.model
    n_backbone = len(model.yaml["backbone"])
    detect = layers[-1]
    reads = {
        j % len(layers) if j != -1 else m.i - 1
        for m in layers[n_backbone:]
        for j in (m.f if isinstance(m.f, list) else [m.f])
    }
    backbone_out = sorted(j for j in reads if j < n_backbone)  # what the neck reads from the backbone
    head_in = [j % len(layers) if j != -1 else len(layers) - 2 for j in detect.f]
    return {
        "backbone": Prefix(layers, n_backbone, backbone_out),
        "backbone+neck": Prefix(layers, len(layers) - 1, head_in),
        "full": model,
    }


def _export_graph(module: nn.Module, im: torch.Tensor, folder: Path) -> Path:
    from lwdet.export.ncnn import _run_pnnx
    from lwdet.export.prepare import _trace

    folder.mkdir(parents=True)
    _trace(module, im).save(str(folder / "model.pt"))
    _run_pnnx(folder, im, half=False)
    return folder / NCNN_PARAM


def part_latency(weights_or_model, imgsz: int = 320, threads: int = 1, loops: int = 50, warmup: int = 5) -> dict:
    """Median ncnn ms of the backbone, neck and head, plus the whole graph's, at ``imgsz`` and ``threads``."""
    from lwdet.edge.bench.loops import _set_cpu
    from lwdet.edge.runner import NcnnParamNet
    from lwdet.export import check_imgsz, export_ready, load_model

    model, _ = load_model(weights_or_model)
    hw = check_imgsz(imgsz, model)
    model, im = export_ready(model, hw, "ncnn")
    _set_cpu(threads, 0)
    with tempfile.TemporaryDirectory(prefix="lwdet-parts-") as tmp:
        nets = {}
        for name, module in split(model).items():
            param = _export_graph(module.eval(), im, Path(tmp) / name.replace("+", "_"))
            nets[name] = NcnnParamNet(param, (hw[1], hw[0], 3), threads=threads)
        layer_ms = layer_type_times(
            Path(tmp) / "full" / NCNN_PARAM, (hw[1], hw[0], 3), threads, max(loops // 2, 1), warmup
        )
        try:
            mats = {k: n.input_mat() for k, n in nets.items()}
            times = {k: [] for k in nets}
            for i in range(warmup + loops):  # interleaved: a noisy second slows all three graphs alike
                for k, net in nets.items():
                    t0 = time.perf_counter()
                    net.run(mats[k], fetch=False)
                    if i >= warmup:
                        times[k].append((time.perf_counter() - t0) * 1e3)
        finally:
            for net in nets.values():
                net.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "backbone_ms": med["backbone"],
        "neck_ms": med["backbone+neck"] - med["backbone"],
        "head_ms": med["full"] - med["backbone+neck"],
        "total_ms": med["full"],
        "threads": threads,
        "imgsz": list(hw),
        "loops": loops,
        "layer_type_ms": layer_ms,
    }


def layer_type_times(
    param: str | Path, input_shape: tuple[int, int, int], threads: int = 1, loops: int = 20, warmup: int = 3
) -> dict[str, float]:
    """Mean ncnn ms per layer type (Convolution, Swish, Concat, ...) of one inference, layer by layer.

    One extractor per inference; every layer's output is extracted in graph order (raw layout, no conversion), so
    each ``extract`` call runs exactly that layer, its inputs being computed already. Zero-filled weights, as
    benchncnn. The per-call overhead (microseconds) lands on each layer alike; compare shares, not sums.
    """
    import ncnn

    from lwdet.edge.runner import FILL, parse_param

    graph = parse_param(param)
    net = ncnn.Net()
    net.opt.num_threads = threads
    net.opt.lightmode = False  # keep every blob: a later layer must find its inputs computed
    try:
        if net.load_param(str(param)) != 0 or net.load_model(ncnn.DataReaderFromEmpty()) != 0:
            raise RuntimeError(f"{param}: ncnn could not load this .param")
        order = [(layer.type, layer.tops[0]) for layer in net.layers() if layer.type != "Input" and layer.tops]
        mat = ncnn.Mat(*input_shape)
        mat.fill(FILL)
        totals: dict[str, float] = {}
        for i in range(warmup + loops):
            with net.create_extractor() as ex:
                ex.input(graph.input, mat)
                for kind, top in order:
                    t0 = time.perf_counter()
                    ex.extract(top, 1)
                    if i >= warmup:
                        totals[kind] = totals.get(kind, 0.0) + (time.perf_counter() - t0) * 1e3
    finally:
        net.clear()
    return dict(sorted(((k, v / loops) for k, v in totals.items()), key=lambda kv: -kv[1]))
