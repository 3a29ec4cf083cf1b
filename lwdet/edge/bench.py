"""Timing as benchncnn does, end-to-end timing, peak memory, file sizes and device facts (numpy + ncnn + stdlib).

Inference only, per loop: a fresh extractor, the input fed, every output extracted; warmup loops first; the
input Mat is made once (benchncnn fills it with 0.01; lwdet models get the preprocessed image, same cost).
End-to-end, per loop: letterbox + normalise, inference with numpy in and out, NMS + boxes back to the image.
Peak memory is the process's VmHWM after resetting it (``/proc/self/clear_refs``) before the model loads, so
each row has its own peak; ``mem_model_mb`` is that peak minus the resident size before loading.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

import ncnn
import numpy as np

from lwdet.edge.postprocess import CONF, IOU, postprocess
from lwdet.edge.preprocess import preprocess
from lwdet.edge.runner import (BIN, PARAM, NcnnDetector, NcnnParamNet, export_siblings, parse_param,
                              read_export_meta)

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
STATS = ("min_ms", "median_ms", "mean_ms", "p90_ms", "max_ms", "fps")
DEVICE_FIELDS = ("board", "cpu", "arch", "cores", "mem_total_mb", "cpu_max_mhz", "governor", "os",
                 "python", "ncnn", "numpy", "opencv")
FIELDS = (
    "kind", "model", "runtime", "threads", "powersave", "input",
    *(f"infer_{s}" for s in STATS), *(f"e2e_{s}" for s in STATS), "pre_ms", "post_ms", "detections", "image",
    "mem_peak_mb", "mem_model_mb", "mem_peak_reset", "param_kb", "weights_mb", "fp16", "loops", "warmup",
    "rounds", "soc_temp_c", "path", *DEVICE_FIELDS, "time_utc",
)
DEMO_IMAGE = "synthetic 640x480"  # what end-to-end rows time when no image is given
CPU_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd41": "Cortex-A78"}
Progress = Callable[[Iterable, str], Iterable]


def summarize(times_ms) -> dict[str, float]:
    """min / median / mean / p90 / max in ms and FPS (1000 / mean) of per-loop times."""
    t = np.asarray(times_ms, dtype=float)
    if not t.size:
        raise ValueError("no timings to summarize (loops must be >= 1)")
    mean = float(t.mean())
    return {"min_ms": float(t.min()), "median_ms": float(np.median(t)), "mean_ms": mean,
            "p90_ms": float(np.percentile(t, 90)), "max_ms": float(t.max()), "fps": 1000.0 / mean if mean else 0.0}


def time_loops(fn: Callable[[], object], loops: int, warmup: int, progress: Progress | None = None,
               desc: str = "") -> list[float]:
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


# --- memory -------------------------------------------------------------------------------------------------------

def _proc_status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_memory() -> bool:
    """Reset the process's peak resident size (Linux >= 4.0); False where it cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_mb() -> float | None:
    """Resident size now, MB."""
    return _proc_status_mb("VmRSS")


def peak_memory_mb() -> float:
    """Peak resident size, MB (since the last reset where /proc allows it, else since the process began)."""
    peak = _proc_status_mb("VmHWM")
    if peak is None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, kB on Linux
    return peak


# --- device -------------------------------------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def _cpu_name(cpuinfo: str) -> str:
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if fields.get("model name"):
        return fields["model name"]
    part = fields.get("CPU part", "").lower()  # ARM cores name themselves only by part number
    if part:
        return CPU_PARTS.get(part, f"ARM CPU part {part}")
    return platform.processor() or "unknown"


def soc_temp_c() -> float | None:
    """SoC temperature in deg C where Linux exposes it (a hot Pi throttles: compare rows' temperatures)."""
    raw = _read("/sys/class/thermal/thermal_zone0/temp")
    try:
        return int(raw) / 1000 if raw else None
    except ValueError:
        return None


def device_info() -> dict:
    """What the numbers were measured on: board, CPU, cores, memory, clocks, OS and library versions."""
    meminfo = _read("/proc/meminfo") or ""
    mem_kb = next((int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal:")), None)
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    cv2 = sys.modules.get("cv2")
    return {
        "board": _read("/proc/device-tree/model") or "",
        "cpu": _cpu_name(_read("/proc/cpuinfo") or ""),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "mem_total_mb": round(mem_kb / 1024) if mem_kb else None,
        "cpu_max_mhz": int(max_khz) // 1000 if max_khz and max_khz.isdigit() else None,
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "",
        "os": platform.platform(),
        "python": platform.python_version(),
        "ncnn": ncnn.__version__,
        "numpy": np.__version__,
        "opencv": getattr(cv2, "__version__", ""),
    }


# --- benchmarks -----------------------------------------------------------------------------------------------------

def _set_cpu(threads: int, powersave: int) -> None:
    """As benchncnn: which cores (0 all, 1 little, 2 big), no dynamic OpenMP teams, ``threads`` OpenMP threads."""
    if powersave not in (0, 1, 2):
        raise ValueError(f"powersave must be 0 (all cores), 1 (little cores) or 2 (big cores), got {powersave}")
    if ncnn.set_cpu_powersave(powersave) != 0:
        LOGGER.warning(f"ncnn could not set powersave={powersave} on this CPU; running on all cores")
    ncnn.set_omp_dynamic(0)
    ncnn.set_omp_num_threads(threads)


def _row(kind: str, name: str, runtime: str, path: Path, input_wh: str, threads: int, powersave: int, loops: int,
         warmup: int) -> dict:
    return {"kind": kind, "model": name, "runtime": runtime, "threads": threads, "powersave": powersave,
            "input": input_wh, "loops": loops, "warmup": warmup, "path": str(path)}


def _finish(row: dict, base_mb: float | None, reset: bool) -> dict:
    peak = peak_memory_mb()
    row.update(mem_peak_mb=round(peak, 1), mem_peak_reset=reset, soc_temp_c=soc_temp_c(),
               mem_model_mb=round(peak - base_mb, 1) if reset and base_mb is not None else None,
               time_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return {k: row.get(k) for k in FIELDS if k not in DEVICE_FIELDS}  # every key, in order; None = not measured


def _check_imgsz(folder, exported: tuple[int, int], asked: int | tuple[int, int] | None) -> None:
    want = (asked, asked) if isinstance(asked, int) else asked
    if want is not None and tuple(want) != tuple(exported):
        raise ValueError(f"{folder}: exported at imgsz {exported[0]}x{exported[1]} (h x w), asked for "
                         f"{want[0]}x{want[1]}; the size is baked into the ncnn graph, so re-export instead")


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


def bench_detector(folder: str | Path, threads: int = 1, loops: int = 100, warmup: int = 10, powersave: int = 0,
                   image: str | Path | None = None, imgsz: int | tuple[int, int] | None = None, conf: float = CONF,
                   iou: float = IOU, cooldown: float = 0.0, progress: Progress | None = None) -> dict:
    """One row: inference-only and end-to-end timings, memory and sizes of an lwdet ncnn export."""
    img = load_image(image) if image else demo_image()
    _set_cpu(threads, powersave)
    reset = reset_peak_memory()
    base = memory_mb()
    det = NcnnDetector(folder, threads=threads, conf=conf, iou=iou)
    try:
        _check_imgsz(folder, det.imgsz, imgsz)
        x, _ = preprocess(img, det.imgsz)
        mat = det.to_mat(x)
        h, w = det.imgsz
        row = _row("lwdet", det.name, "ncnn", det.folder, f"{w}x{h}x3", threads, powersave, loops, warmup)
        time.sleep(cooldown)
        row.update({f"infer_{k}": v for k, v in summarize(
            time_loops(lambda: det.run(mat, fetch=False), loops, warmup, progress, f"{det.name} t{threads}")).items()})
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
        row.update({f"e2e_{k}": v for k, v in summarize(times).items()}, pre_ms=float(pre), post_ms=float(post),
                   detections=len(last[0]), image=str(image) if image else DEMO_IMAGE,
                   param_kb=round(det.files["param"].stat().st_size / 1024, 1),
                   weights_mb=round(det.files["bin"].stat().st_size / 2**20, 2), fp16=det.meta.get("fp16"))
    finally:
        det.close()
    return _finish(row, base, reset)


def bench_param(param: str | Path, input_shape: tuple[int, int, int] | None = None, threads: int = 1,
                loops: int = 100, warmup: int = 10, powersave: int = 0, cooldown: float = 0.0,
                progress: Progress | None = None) -> dict:
    """One row for a bare .param with empty weights (a peer), inference only, as benchncnn."""
    param = Path(param)
    shape = input_shape or PEER_INPUT_SHAPES.get(param.stem)
    _set_cpu(threads, powersave)
    reset = reset_peak_memory()
    base = memory_mb()
    net = NcnnParamNet(param, shape, threads=threads)
    try:
        mat = net.input_mat()
        row = _row("peer", net.name, "ncnn", param, "x".join(map(str, net.input_shape)), threads, powersave, loops,
                   warmup)
        time.sleep(cooldown)
        times = time_loops(lambda: net.run(mat, fetch=False), loops, warmup, progress, f"{net.name} t{threads}")
        row.update({f"infer_{k}": v for k, v in summarize(times).items()},
                   param_kb=round(param.stat().st_size / 1024, 1))
        del mat
    finally:
        net.close()
    return _finish(row, base, reset)


def bench_runtime(folder: str | Path, runtime: str, load: Callable[[Path, int, np.ndarray], Callable[[], object]],
                  threads: int = 1, loops: int = 100, warmup: int = 10, image: str | Path | None = None,
                  progress: Progress | None = None) -> dict | None:
    """Inference-only row for the model an ncnn export came from, in another runtime ("onnx": its .onnx, "torch":
    its .pt, see ``export_siblings``); ``load(path, threads, x)`` loads it and returns one inference call on the
    (3, H, W) input ``x``. None (and a warning) when the export has no such file."""
    meta = read_export_meta(folder)
    suffix = "pt" if runtime == "torch" else runtime
    path = export_siblings(folder)[suffix]
    if path is None:
        LOGGER.warning(f"{folder}: no .{suffix} beside or inside it; skipping {runtime}")
        return None
    h, w = meta["imgsz"]
    x, _ = preprocess(load_image(image) if image else demo_image(), (h, w))
    reset = reset_peak_memory()
    base = memory_mb()
    try:
        fn = load(path, threads, x)
    except ImportError as e:  # onnxruntime / torch are optional: a Pi has neither
        LOGGER.warning(f"{runtime} is not importable ({e}); skipping {runtime}")
        return None
    row = _row("lwdet", meta["model"], runtime, path, f"{w}x{h}x3", threads, 0, loops, warmup)
    row.update({f"infer_{k}": v for k, v in summarize(
        time_loops(fn, loops, warmup, progress, f"{meta['model']} {runtime} t{threads}")).items()},
        weights_mb=round(path.stat().st_size / 2**20, 2), image=str(image) if image else DEMO_IMAGE)
    return _finish(row, base, reset)


def bench_all(models: Iterable[str | Path] = (), params: Iterable[str | Path] = (), threads: Iterable[int] = (1,),
              runtimes: Iterable[str] = ("ncnn",), load_other: Callable | None = None,
              input_shape: tuple[int, int, int] | None = None, image: str | Path | None = None,
              imgsz: int | None = None, conf: float = CONF, powersave: int = 0, cooldown: float = 0.0,
              loops: int = 100, warmup: int = 10, progress: Progress | None = None,
              on_row: Callable[[dict], None] | None = None, rounds: int = 1) -> list[dict]:
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
        _check_imgsz(folder, read_export_meta(folder)["imgsz"], imgsz)
    for param in params:
        if input_shape is None and param.stem not in PEER_INPUT_SHAPES and parse_param(param).input_shape is None:
            raise ValueError(f"{param}: input size unknown (not in PEER_INPUT_SHAPES, not in its Input layer); "
                             f"give it as w,h,c")
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
                        row = bench_detector(folder, t, image=image, imgsz=imgsz, conf=conf, powersave=powersave,
                                             cooldown=cooldown, **common)
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


# --- discovery and output -------------------------------------------------------------------------------------------

def find_model_dirs(root: str | Path) -> list[Path]:
    """Every ncnn export folder (holding model.ncnn.param and .bin) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    dirs = sorted({p.parent for p in root.rglob(PARAM) if (p.parent / BIN).is_file()})
    if not dirs:
        raise ValueError(f"{root}: no ncnn export folders (with {PARAM} and {BIN}) under it")
    return dirs


def find_params(root: str | Path) -> list[Path]:
    """Every bare .param in ``root`` (not recursive), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    params = sorted(p for p in root.glob("*.param") if p.name != PARAM)
    if not params:
        raise ValueError(f"{root}: no .param files in it")
    return params


def with_device(rows: list[dict], device: dict) -> list[dict]:
    return [{**row, **{k: device.get(k) for k in DEVICE_FIELDS}} for row in rows]


def write_csv(rows: list[dict], path: str | Path, device: dict) -> None:
    """One row per model x runtime x threads, device columns on every row so files from several boards concatenate."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in with_device(rows, device):
            writer.writerow({k: ("" if v is None else round(v, 3) if isinstance(v, float) else v)
                             for k, v in row.items()})


def write_json(rows: list[dict], path: str | Path, device: dict, settings: dict | None = None) -> None:
    Path(path).write_text(json.dumps({"device": device, "settings": settings or {}, "results": rows}, indent=2))


_COLUMNS = (("model", 28, "{}"), ("runtime", 7, "{}"), ("threads", 7, "{}"), ("input", 11, "{}"),
            ("infer_min_ms", 8, "{:.2f}"), ("infer_median_ms", 10, "{:.2f}"), ("infer_mean_ms", 8, "{:.2f}"),
            ("infer_p90_ms", 8, "{:.2f}"), ("infer_fps", 7, "{:.1f}"), ("e2e_mean_ms", 8, "{:.2f}"),
            ("e2e_fps", 7, "{:.1f}"), ("mem_peak_mb", 8, "{:.0f}"))
_HEADS = {"infer_min_ms": "min ms", "infer_median_ms": "median ms", "infer_mean_ms": "mean ms",
          "infer_p90_ms": "p90 ms", "infer_fps": "FPS", "e2e_mean_ms": "e2e ms", "e2e_fps": "e2e FPS",
          "mem_peak_mb": "peak MB"}


def table_header() -> str:
    return "  ".join(f"{_HEADS.get(k, k):>{w}}" if i else f"{k:<{w}}" for i, (k, w, _) in enumerate(_COLUMNS))


def table_line(row: dict) -> str:
    cells = []
    for i, (key, width, fmt) in enumerate(_COLUMNS):
        value = row.get(key)
        text = "-" if value is None else fmt.format(value)
        cells.append(f"{text[:width]:<{width}}" if i == 0 else f"{text:>{width}}")
    return "  ".join(cells)
