"""Bench loops: ncnn exports, bare peer .params and other runtimes, timed as benchncnn does (numpy + ncnn + stdlib).

Inference only, per loop: a fresh extractor, the input fed, every output extracted; warmup loops first; the
input Mat is made once (benchncnn fills it with 0.01; lwdet models get the preprocessed image, same cost).
End-to-end, per loop: letterbox + normalise, inference with numpy in and out, NMS + boxes back to the image.
Peak memory is the process's VmHWM after resetting it (``/proc/self/clear_refs``) before the model loads, so
each row has its own peak; ``mem_model_mb`` is that peak minus the resident size before loading.

The package ``lwdet.edge.bench`` re-exports the public names of its layers (``bench.bench_all``, ``bench.FIELDS``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import ncnn
import numpy as np

from lwdet.artifacts import check_imgsz, export_siblings
from lwdet.edge.bench.output import (
    FIELDS,
    find_model_dirs,
    find_params,
    table_header,
    table_line,
    with_device,
    write_csv,
    write_json,
)
from lwdet.edge.bench.sysinfo import (
    DEVICE_FIELDS,
    device_info,
    memory_mb,
    peak_memory_mb,
    reset_peak_memory,
    soc_temp_c,
)
from lwdet.edge.bench.timing import STATS, Progress, merge_rounds, summarize, time_loops
from lwdet.edge.postprocess import CONF, IOU, postprocess
from lwdet.edge.preprocess import preprocess
from lwdet.edge.runner import NcnnDetector, NcnnParamNet, parse_param, read_export_meta
from lwdet.units import kb, mb

__all__ = [  # the layers' names, as callers reach them through ``lwdet.edge.bench``
    "DEMO_IMAGE",
    "DEVICE_FIELDS",
    "FIELDS",
    "PEER_INPUT_SHAPES",
    "RUNTIMES",
    "STATS",
    "bench_all",
    "bench_detector",
    "bench_param",
    "bench_runtime",
    "demo_image",
    "device_info",
    "find_model_dirs",
    "find_params",
    "load_image",
    "merge_rounds",
    "summarize",
    "table_header",
    "table_line",
    "time_loops",
    "with_device",
    "write_csv",
    "write_json",
]

LOGGER = logging.getLogger(__name__)

# (w, h, c) each peer is timed at in ncnn's benchmark/benchncnn.cpp (the published Pi numbers)
PEER_INPUT_SHAPES = {
    "nanodet_m": (320, 320, 3),
    "yolo-fastestv2": (352, 352, 3),
    "FastestDet": (352, 352, 3),
    "shufflenet_v2": (224, 224, 3),
    "mobilenet_v2": (224, 224, 3),
    "mobilenet_v3": (224, 224, 3),
    "mnasnet": (224, 224, 3),
}
RUNTIMES = ("ncnn", "onnx", "torch")  # onnx and torch only through a caller-given loader
DEMO_IMAGE = "synthetic 640x480"  # what end-to-end rows time when no image is given


def _set_cpu(threads: int, powersave: int) -> None:
    """As benchncnn: which cores (0 all, 1 little, 2 big), no dynamic OpenMP teams, ``threads`` OpenMP threads."""
    if powersave not in (0, 1, 2):
        raise ValueError(f"powersave must be 0 (all cores), 1 (little cores) or 2 (big cores), got {powersave}")
    if ncnn.set_cpu_powersave(powersave) != 0:
        LOGGER.warning(f"ncnn could not set powersave={powersave} on this CPU; running on all cores")
    ncnn.set_omp_dynamic(0)
    ncnn.set_omp_num_threads(threads)


def _row(
    kind: str, name: str, runtime: str, path: Path, input_wh: str, threads: int, powersave: int, loops: int, warmup: int
) -> dict:
    return {
        "kind": kind,
        "model": name,
        "runtime": runtime,
        "threads": threads,
        "powersave": powersave,
        "input": input_wh,
        "loops": loops,
        "warmup": warmup,
        "path": str(path),
    }


def _finish(row: dict, base_mb: float | None, reset: bool) -> dict:
    peak = peak_memory_mb()
    row.update(
        mem_peak_mb=round(peak, 1),
        mem_peak_reset=reset,
        soc_temp_c=soc_temp_c(),
        mem_model_mb=round(peak - base_mb, 1) if reset and base_mb is not None else None,
        time_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return {k: row.get(k) for k in FIELDS if k not in DEVICE_FIELDS}  # every key, in order; None = not measured


def _same_imgsz(folder, exported: tuple[int, int], asked: int | tuple[int, int] | None) -> None:
    want = None if asked is None else check_imgsz(asked)
    if want is not None and tuple(want) != tuple(exported):
        raise ValueError(
            f"{folder}: exported at imgsz {exported[0]}x{exported[1]} (h x w), asked for "
            f"{want[0]}x{want[1]}; the size is baked into the ncnn graph, so re-export instead"
        )


def demo_image(h: int = 480, w: int = 640) -> np.ndarray:
    """A deterministic BGR test card (gradient + blocks) for end-to-end timing when no image is given."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 255 // max(h + w - 2, 1)], -1)
    img = img.astype(np.uint8)
    for i, (c, s) in enumerate([((40, 40, 200), 0.3), ((200, 200, 40), 0.2), ((30, 160, 30), 0.15)]):
        y0, x0, side = int(h * (0.1 + 0.25 * i)), int(w * (0.1 + 0.3 * i)), int(min(h, w) * s)
        img[y0 : y0 + side, x0 : x0 + side] = c
    return img


def load_image(path: str | Path) -> np.ndarray:
    import cv2  # image I/O only

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: cannot read this image")
    return image


def bench_detector(
    folder: str | Path,
    threads: int = 1,
    loops: int = 100,
    warmup: int = 10,
    powersave: int = 0,
    image: str | Path | None = None,
    imgsz: int | tuple[int, int] | None = None,
    conf: float = CONF,
    iou: float = IOU,
    cooldown: float = 0.0,
    progress: Progress | None = None,
    fp16: bool | None = None,
) -> dict:
    """One row: inference-only and end-to-end timings, memory and sizes of an lwdet ncnn export.

    ``fp16``: ncnn's fp16 storage and arithmetic on / off; None: the board's default (``lwdet.edge.boards``)."""
    img = load_image(image) if image else demo_image()
    _set_cpu(threads, powersave)
    reset = reset_peak_memory()
    base = memory_mb()
    det = NcnnDetector(folder, threads=threads, conf=conf, iou=iou, fp16=fp16)
    try:
        _same_imgsz(folder, det.imgsz, imgsz)
        x, _ = preprocess(img, det.imgsz)
        mat = det.to_mat(x)
        h, w = det.imgsz
        row = _row("lwdet", det.name, "ncnn", det.folder, f"{w}x{h}x3", threads, powersave, loops, warmup)
        time.sleep(cooldown)
        row.update(
            {
                f"infer_{k}": v
                for k, v in summarize(
                    time_loops(lambda: det.run(mat, fetch=False), loops, warmup, progress, f"{det.name} t{threads}")
                ).items()
            }
        )
        parts, last = [], []

        def end_to_end():
            t0 = time.perf_counter()
            x, lb = preprocess(img, det.imgsz)
            t1 = time.perf_counter()
            out = det.infer(x)
            t2 = time.perf_counter()
            last[:] = [postprocess(out, lb, conf, iou)]
            parts.append((t1 - t0, time.perf_counter() - t2))

        times = time_loops(end_to_end, loops, warmup, progress, f"{det.name} e2e")
        pre, post = np.mean(parts[warmup:], axis=0) * 1e3
        row.update(
            {f"e2e_{k}": v for k, v in summarize(times).items()},
            pre_ms=float(pre),
            post_ms=float(post),
            detections=len(last[0]),
            image=str(image) if image else DEMO_IMAGE,
            param_kb=round(kb(det.files["param"].stat().st_size), 1),
            weights_mb=round(mb(det.files["bin"].stat().st_size), 2),
            fp16=det.meta.fp16,
            ncnn_fp16=det.fp16,
        )
    finally:
        det.close()
    return _finish(row, base, reset)


def bench_param(
    param: str | Path,
    input_shape: tuple[int, int, int] | None = None,
    threads: int = 1,
    loops: int = 100,
    warmup: int = 10,
    powersave: int = 0,
    cooldown: float = 0.0,
    progress: Progress | None = None,
) -> dict:
    """One row for a bare .param with empty weights (a peer), inference only, as benchncnn."""
    param = Path(param)
    shape = input_shape or PEER_INPUT_SHAPES.get(param.stem)
    _set_cpu(threads, powersave)
    reset = reset_peak_memory()
    base = memory_mb()
    net = NcnnParamNet(param, shape, threads=threads)
    try:
        mat = net.input_mat()
        row = _row(
            "peer", net.name, "ncnn", param, "x".join(map(str, net.input_shape)), threads, powersave, loops, warmup
        )
        time.sleep(cooldown)
        times = time_loops(lambda: net.run(mat, fetch=False), loops, warmup, progress, f"{net.name} t{threads}")
        row.update({f"infer_{k}": v for k, v in summarize(times).items()}, param_kb=round(kb(param.stat().st_size), 1))
        mat = None  # the Mat goes before its Net (see lwdet.edge.runner)
    finally:
        net.close()
    return _finish(row, base, reset)


def bench_runtime(
    folder: str | Path,
    runtime: str,
    load: Callable[[Path, int, np.ndarray], Callable[[], object]],
    threads: int = 1,
    loops: int = 100,
    warmup: int = 10,
    image: str | Path | None = None,
    progress: Progress | None = None,
) -> dict | None:
    """Inference-only row for the model an ncnn export came from, in another runtime ("onnx": its .onnx, "torch":
    its .pt, see ``export_siblings``); ``load(path, threads, x)`` loads it and returns one inference call on the
    (3, H, W) input ``x``. None (and a warning) when the export has no such file."""
    meta = read_export_meta(folder)
    suffix = "pt" if runtime == "torch" else runtime
    path = export_siblings(folder)[suffix]
    if path is None:
        LOGGER.warning(f"{folder}: no .{suffix} beside or inside it; skipping {runtime}")
        return None
    h, w = meta.imgsz
    x, _ = preprocess(load_image(image) if image else demo_image(), (h, w))
    reset = reset_peak_memory()
    base = memory_mb()
    try:
        fn = load(path, threads, x)
    except ImportError as e:  # onnxruntime / torch are optional: a Pi has neither
        LOGGER.warning(f"{runtime} is not importable ({e}); skipping {runtime}")
        return None
    row = _row("lwdet", meta.model, runtime, path, f"{w}x{h}x3", threads, 0, loops, warmup)
    row.update(
        {
            f"infer_{k}": v
            for k, v in summarize(time_loops(fn, loops, warmup, progress, f"{meta.model} {runtime} t{threads}")).items()
        },
        weights_mb=round(mb(path.stat().st_size), 2),
        image=str(image) if image else DEMO_IMAGE,
    )
    return _finish(row, base, reset)


def bench_all(
    models: Iterable[str | Path] = (),
    params: Iterable[str | Path] = (),
    threads: Iterable[int] = (1,),
    runtimes: Iterable[str] = ("ncnn",),
    load_other: Callable | None = None,
    input_shape: tuple[int, int, int] | None = None,
    image: str | Path | None = None,
    imgsz: int | None = None,
    conf: float = CONF,
    powersave: int = 0,
    cooldown: float = 0.0,
    loops: int = 100,
    warmup: int = 10,
    progress: Progress | None = None,
    on_row: Callable[[dict], None] | None = None,
    rounds: int = 1,
    fp16: bool | None = None,
) -> list[dict]:
    """Rows for every export x runtime and every peer .param, at each thread count; ``on_row`` sees each one.

    ``rounds`` > 1 makes that many passes over all of them, round-robin, and merges each one's passes
    (``merge_rounds``): on a shared VM, or a Pi that heats up, a slow minute then hits every model alike instead
    of whichever was being timed.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    common = dict(loops=loops, warmup=warmup, progress=progress)
    models, params, runtimes = [Path(m) for m in models], [Path(p) for p in params], list(runtimes)
    if unknown := sorted(set(runtimes) - set(RUNTIMES)):
        raise ValueError(f"unknown runtime(s) {unknown}; known: {', '.join(RUNTIMES)}")
    if set(runtimes) - {"ncnn"} and load_other is None:
        raise ValueError(f"runtimes {runtimes} need a load_other(path, threads, x) for the non-ncnn ones")
    for folder in models:  # check every input before the first (possibly long) timing
        _same_imgsz(folder, read_export_meta(folder).imgsz, imgsz)
    for param in params:
        if input_shape is None and param.stem not in PEER_INPUT_SHAPES and parse_param(param).input_shape is None:
            raise ValueError(
                f"{param}: input size unknown (not in PEER_INPUT_SHAPES, not in its Input layer); give it as w,h,c"
            )
    if image is not None:
        load_image(image)
    passes = []
    for i in range(rounds):
        if rounds > 1:
            LOGGER.info("pass %d of %d", i + 1, rounds)
        rows = []
        for t in threads:
            for folder in models:
                for runtime in runtimes:
                    if runtime == "ncnn":
                        row = bench_detector(
                            folder,
                            t,
                            image=image,
                            imgsz=imgsz,
                            conf=conf,
                            powersave=powersave,
                            cooldown=cooldown,
                            fp16=fp16,
                            **common,
                        )
                    else:
                        row = bench_runtime(folder, runtime, load_other, t, image=image, **common)
                    if row:
                        rows.append(row)
                        if on_row:
                            on_row(row)
            for param in params:
                rows.append(bench_param(param, input_shape, t, powersave=powersave, cooldown=cooldown, **common))
                if on_row:
                    on_row(rows[-1])
        passes.append(rows)
    return merge_rounds(passes)
