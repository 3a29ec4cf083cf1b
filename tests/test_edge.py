"""Tests for lwdet.edge (letterbox, NMS, ncnn runners, timing), bench_edge.py and deploy/raspberry-pi/detect.py.

The CLIs run in subprocesses where importing torch, ultralytics or yaml raises, as on a Pi without them. Parity
tests export a tiny model (yolov5n rows, nc=3, 96 px) through pnnx here, as the export module does.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # before anything imports ultralytics

import cv2
import numpy as np
import pytest

from lwdet.artifacts import Blob, ExportMeta
from lwdet.edge import (
    NcnnDetector,
    NcnnParamNet,
    bench,
    export_siblings,
    letterbox,
    nms,
    non_max_suppression,
    parse_param,
    preprocess,
    read_export_meta,
    scale_boxes,
)

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers" / "ncnn"
FASTESTV2 = PEERS / "yolo-fastestv2.param"
IMGSZ = 96
NAMES = ["red", "green", "blue"]
needs_peers = pytest.mark.skipif(not FASTESTV2.is_file(), reason=f"peer graphs not found at {PEERS}")


# --------------------------------------------------------------------------------------------------- letterbox
def test_letterbox_hand_computed():
    image = np.zeros((30, 100, 3), np.uint8)
    image[..., 0], image[..., 2] = 255, 51  # B, R
    out, lb = letterbox(image, 64)
    # r = min(64/30, 64/100) = 0.64 -> 64 x 19; 45 rows of padding: round(22.4) = 22 on top, 23 below
    assert out.shape == (64, 64, 3)
    assert lb.ratio == (0.64, 19 / 30) and lb.pad == (0, 22) and lb.shape == (30, 100) and lb.new_shape == (64, 64)
    assert (out[:22] == 114).all() and (out[41:] == 114).all() and (out[22:41] == (255, 0, 51)).all()

    x, _ = preprocess(image, 64)
    assert x.shape == (3, 64, 64) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[:, 30, 5], [0.2, 0.0, 1.0])  # RGB, /255
    np.testing.assert_allclose(x[:, 0, 0], [114 / 255] * 3)


def test_letterbox_auto_no_scaleup_and_top_left():
    image = np.zeros((30, 100, 3), np.uint8)
    out, lb = letterbox(image, 64, auto=True, stride=32)  # 45 % 32 = 13 rows: 6 on top, 7 below
    assert out.shape == (32, 64, 3) and lb.pad == (0, 6)
    out, lb = letterbox(np.zeros((20, 40, 3), np.uint8), 64, scaleup=False)  # stays 40 x 20: pad 24 and 44
    assert out.shape == (64, 64, 3) and lb.ratio == (1.0, 1.0) and lb.pad == (12, 22)
    out, lb = letterbox(image, (64, 80), center=False)
    assert out.shape == (64, 80, 3) and lb.pad == (0, 0) and lb.ratio == (0.8, 24 / 30)
    with pytest.raises(ValueError, match="HxWx3"):
        letterbox(np.zeros((10, 10), np.uint8), 64)


@pytest.mark.parametrize("shape", [(30, 100), (100, 30), (37, 53), (480, 640), (64, 64), (7, 300)])
@pytest.mark.parametrize("new_shape, auto", [((64, 64), False), ((96, 128), False), ((64, 64), True)])
def test_letterbox_equals_the_engines(shape, new_shape, auto):
    from ultralytics.data.augment import LetterBox

    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours, _ = letterbox(image, new_shape, auto=auto, stride=32)
    np.testing.assert_array_equal(ours, LetterBox(new_shape, auto=auto, stride=32)(image=image))


def test_scale_boxes_undoes_the_letterbox():
    _, lb = letterbox(np.zeros((30, 100, 3), np.uint8), 64)  # ratio (0.64, 19/30), pad (0, 22)
    boxes = np.array([[0, 22, 64, 41], [32, 31.5, 48, 41], [-10, 0, 70, 64]], np.float32)
    np.testing.assert_allclose(scale_boxes(boxes, lb), [[0, 0, 100, 30], [50, 15, 75, 30], [0, 0, 100, 30]], atol=1e-4)


# --------------------------------------------------------------------------------------------------------- NMS
def _pred(xyxy, scores) -> np.ndarray:
    """(4 + nc, N) head output from xyxy boxes and per-class scores."""
    b = np.asarray(xyxy, np.float32)
    xywh = np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], 1)
    return np.concatenate([xywh, np.asarray(scores, np.float32)], 1).T.copy()


HAND = _pred(
    [[0, 0, 10, 10], [1, 0, 11, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10], [2, 0, 12, 10]],
    [[0.9, 0.1], [0.8, 0.0], [0.0, 0.7], [0.6, 0.0], [0.25, 0.0], [0.5, 0.0]],
)  # A; B (IoU 90/110 with A); C (as B, class 1); D apart; E at exactly conf 0.25; F (IoU 80/120 = 0.67 with A)
A, C, D, F = [0, 0, 10, 10, 0.9, 0], [1, 0, 11, 10, 0.7, 1], [20, 20, 30, 30, 0.6, 0], [2, 0, 12, 10, 0.5, 0]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, [A, C, D, F]),  # B suppressed by A (0.82 > 0.7), E not above conf, C survives in its own class
        ({"agnostic": True}, [A, D, F]),
        ({"iou": 0.6}, [A, C, D]),  # F goes too (0.67 > 0.6)
        ({"max_det": 2}, [A, C]),
        ({"classes": [1]}, [C]),
        ({"conf": 0.65}, [A, C]),
        ({"conf": 0.95}, np.zeros((0, 6))),
    ],
)
def test_nms_hand_computed(kwargs, expected):
    np.testing.assert_allclose(non_max_suppression(HAND, **kwargs), np.asarray(expected).reshape(-1, 6), atol=1e-6)


@pytest.mark.parametrize("agnostic", [False, True])
def test_nms_equals_the_engines(agnostic):
    torch = pytest.importorskip("torch")
    from ultralytics.utils.nms import non_max_suppression as engine_nms

    rng = np.random.default_rng(1)
    n = 600
    pred = np.concatenate([rng.uniform(0, 96, (2, n)), rng.uniform(2, 40, (2, n)), rng.uniform(0, 1, (3, n))])
    pred = pred.astype(np.float32)
    ref = engine_nms(torch.from_numpy(pred[None]), 0.25, 0.7, agnostic=agnostic, max_det=300)[0].numpy()
    ours = non_max_suppression(pred, 0.25, 0.7, agnostic=agnostic)
    assert len(ref) > 50
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def _numpy_greedy_nms(boxes, scores, iou, max_keep=None):
    """The numpy NMS lwdet.edge used before OpenCV's: the reference the OpenCV one must agree with."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


@pytest.mark.parametrize("seed", range(8))
def test_opencv_nms_keeps_the_boxes_the_numpy_greedy_nms_kept(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    xy, wh = rng.uniform(0, 200, (n, 2)), rng.uniform(1, 60, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores, cls = rng.uniform(0.01, 1, n).astype(np.float32), rng.integers(0, 3, n)
    for iou in (0.3, 0.5, 0.7):
        for max_keep in (None, 10):
            ref = _numpy_greedy_nms(boxes, scores, iou, max_keep)
            assert len(ref) > 5 and np.array_equal(nms(boxes, scores, iou, max_keep), ref)
            per_class = _numpy_greedy_nms(boxes + cls[:, None].astype(np.float32) * 7680, scores, iou, max_keep)
            assert np.array_equal(nms(boxes, scores, iou, max_keep, class_ids=cls), per_class)


def test_summarize_and_time_loops():
    s = bench.summarize([1, 2, 3, 4, 10])
    assert s == pytest.approx({"min_ms": 1, "median_ms": 3, "mean_ms": 4, "p90_ms": 7.6, "max_ms": 10, "fps": 250})
    calls = []
    times = bench.time_loops(lambda: calls.append(1), loops=5, warmup=2)
    assert len(times) == 5 and len(calls) == 7 and min(times) >= 0
    with pytest.raises(ValueError):
        bench.time_loops(lambda: None, loops=0, warmup=0)


def test_merge_rounds_takes_medians_over_passes_and_extremes():
    def row(model, med, lo, hi, mem):
        return {
            "kind": "lwdet",
            "model": model,
            "threads": 1,
            "infer_min_ms": lo,
            "infer_median_ms": med,
            "infer_mean_ms": med,
            "infer_p90_ms": med + 1,
            "infer_max_ms": hi,
            "infer_fps": 1000 / med,
            "e2e_mean_ms": None,
            "pre_ms": None,
            "mem_peak_mb": mem,
        }

    passes = [
        [row("a", 5.0, 4.0, 9.0, 80.0), row("b", 2.0, 1.5, 3.0, 70.0)],
        [row("a", 9.0, 4.5, 30.0, 82.0), row("b", 4.0, 1.2, 5.0, 71.0)],  # a slow pass hits both
        [row("a", 6.0, 3.9, 7.0, 81.0), row("b", 2.5, 1.9, 2.6, 69.0)],
    ]
    a, b = bench.merge_rounds(passes)
    assert (a["model"], a["rounds"], b["model"]) == ("a", 3, "b")
    assert (a["infer_median_ms"], a["infer_min_ms"], a["infer_max_ms"], a["mem_peak_mb"]) == (6.0, 3.9, 30.0, 82.0)
    assert a["infer_p90_ms"] == 7.0 and a["infer_fps"] == pytest.approx(1000 / 6.0)
    assert (b["infer_median_ms"], b["infer_min_ms"]) == (2.5, 1.2) and b["e2e_mean_ms"] is None
    assert bench.merge_rounds([passes[0]])[0]["rounds"] == 1


# ---------------------------------------------------------------------------------------------- .param parsing
TINY_PARAM = """7767517
5 6
Input            in0  0 1 in0 0=8 1=6 2=3
Split            sp   1 2 in0 a b
Convolution      c1   1 1 a c 0=4 1=1 6=12
Convolution      c2   1 1 b d 0=4 1=1 6=12
Sigmoid          s    1 1 d e
Noop             out  2 1 c e out
"""  # the last line is past the declared layer count: ncnn ignores it, and so must the parser


def test_parse_param(tmp_path):
    path = tmp_path / "tiny.param"
    path.write_text(TINY_PARAM)
    g = parse_param(path)
    assert (g.input, g.outputs, g.input_shape, g.layers, g.blobs) == ("in0", ["c", "e"], (8, 6, 3), 5, 6)
    path.write_text("7767518\n1 1\n")
    with pytest.raises(ValueError, match="not a text ncnn .param"):
        parse_param(path)
    with pytest.raises(FileNotFoundError):
        parse_param(tmp_path / "missing.param")


@needs_peers
def test_parse_peer_params():
    nanodet = parse_param(PEERS / "nanodet_m.param")
    assert nanodet.input == "input.1" and nanodet.input_shape == (320, 320, 3)
    assert sorted(nanodet.outputs) == sorted(f"{k}_pred_stride_{s}" for k in ("cls", "dis") for s in (8, 16, 32))
    assert parse_param(FASTESTV2).outputs == ["output"]
    for name, shape in bench.PEER_INPUT_SHAPES.items():
        assert (PEERS / f"{name}.param").is_file(), name
        with NcnnParamNet(PEERS / f"{name}.param", shape) as net:
            assert net.input_shape == shape and net.output_names


@needs_peers
def test_param_net_runs_with_empty_weights():
    with NcnnParamNet(FASTESTV2, threads=1) as net:
        outs = net.infer()
    assert net.input_shape == (352, 352, 3) and len(outs) == 1 and outs[0].size > 0


# ------------------------------------------------------------------------------------------ the exported model
@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """<tmp>/tiny.pt, tiny.onnx and tiny_ncnn_model/ (pnnx, fp32, lwdet.json): the layout of a real export."""
    torch = pytest.importorskip("torch")
    pnnx = pytest.importorskip("pnnx")
    from lwdet import YOLO

    d = tmp_path_factory.mktemp("export")
    text = (ROOT / "models" / "yaml" / "yolov5n.yaml").read_text()
    (d / "tiny.yaml").write_text(re.sub(r"(?m)^nc: \d+", "nc: 3", text))
    torch.manual_seed(0)
    yolo = YOLO(str(d / "tiny.yaml"))
    # Random weights give every anchor the same score (~1e-4). Zero class biases and BN statistics from one batch
    # keep activations at unit scale, so scores spread over (0, 1) and NMS has real choices to make.
    for seq in yolo.model.model[-1].one2many["cls_head"]:
        seq[-1].bias.data.zero_()
    bns = [m for m in yolo.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0
    yolo.model.train()
    with torch.no_grad():
        yolo.model(torch.rand(4, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0)))
    for bn in bns:
        bn.momentum = 0.03
    yolo.model.eval().names = dict(enumerate(NAMES))
    yolo.save(str(d / "tiny.pt"))

    model = _export_mode(YOLO(str(d / "tiny.pt")).model)  # the saved (fp16-rounded) weights, as a real export
    folder, scratch = d / "tiny_ncnn_model", d / "pnnx"
    folder.mkdir()
    scratch.mkdir()
    x = torch.zeros(1, 3, IMGSZ, IMGSZ)
    model(x)  # dry run: the head caches its anchors, so the trace is the same on every call (as the engine does)
    cwd = os.getcwd()
    os.chdir(scratch)  # pnnx may leave debug files in the working directory
    names = dict(
        ncnnparam=folder / "model.ncnn.param",
        ncnnbin=folder / "model.ncnn.bin",
        ncnnpy=scratch / "m_ncnn.py",
        ptpath=scratch / "m.pt",
        pnnxparam=scratch / "m.param",
        pnnxbin=scratch / "m.bin",
        pnnxpy=scratch / "m.py",
        pnnxonnx=scratch / "m.onnx",
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.trace deprecation and tracer notes, not ours to act on
            pnnx.export(model, inputs=x, fp16=False, **{k: str(v) for k, v in names.items()})
    finally:
        os.chdir(cwd)
    shutil.rmtree(scratch)
    ExportMeta(
        format="ncnn",
        model="tiny",
        names=NAMES,
        imgsz=[IMGSZ, IMGSZ],
        strides=[8, 16, 32],
        input=Blob("in0", [1, 3, IMGSZ, IMGSZ]),
        output=Blob("out0", [7, 189]),
        fp16=False,
        source={"weights": "tiny.pt"},
    ).save(folder)  # the export module's contract
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        YOLO(str(d / "tiny.pt")).export(format="onnx", imgsz=IMGSZ, simplify=False, verbose=False)  # -> d/tiny.onnx
    return folder


def _export_mode(model):
    model = copy.deepcopy(model).float().eval().fuse(verbose=False)
    for p in model.parameters():
        p.requires_grad = False
    model.model[-1].export = True  # the head returns its (B, 4 + nc, N) tensor alone, as exported
    return model


def _image(h=200, w=190, seed=0) -> np.ndarray:
    """Blurred blocks of noise: every anchor sees different pixels (no score ties), little padding at 96 px."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST), (0, 0), 1.5)


def test_export_meta_and_siblings(exported):
    meta = read_export_meta(exported)
    assert (meta.input.blob, meta.output.blob, meta.names, meta.imgsz) == ("in0", "out0", NAMES, [IMGSZ, IMGSZ])
    assert export_siblings(exported) == {"pt": exported.parent / "tiny.pt", "onnx": exported.parent / "tiny.onnx"}


def test_engine_metadata_fallback(exported, tmp_path):
    import yaml  # the engine writes metadata.yaml with PyYAML; lwdet.edge reads it without

    folder = tmp_path / "engine_ncnn_model"
    folder.mkdir()
    shutil.copy(exported / "model.ncnn.param", folder)
    (folder / "model.ncnn.bin").write_bytes(b"")
    (folder / "metadata.yaml").write_text(
        yaml.safe_dump(
            {
                "description": "x",
                "stride": 32,
                "task": "detect",
                "imgsz": [IMGSZ, 128],
                "names": {0: "person", 1: "traffic light", 2: "yes"},
                "args": {"batch": 1},
            },
            sort_keys=False,
        )
    )
    meta = read_export_meta(folder)
    assert meta.names == ["person", "traffic light", "yes"] and meta.imgsz == [IMGSZ, 128]
    assert (meta.input.blob, meta.output.blob, meta.model) == ("in0", "out0", "engine")
    (folder / "model.ncnn.bin").unlink()
    with pytest.raises(FileNotFoundError, match="model.ncnn.bin"):
        read_export_meta(folder)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_export_meta(tmp_path / "missing_ncnn_model")


def test_ncnn_output_equals_pytorch_export_mode(exported):
    torch = pytest.importorskip("torch")
    from lwdet import YOLO

    x, _ = preprocess(_image(), IMGSZ)
    with NcnnDetector(exported) as det:
        ours = det.infer(x)
    with torch.no_grad():
        ref = _export_mode(YOLO(str(exported.parent / "tiny.pt")).model)(torch.from_numpy(x[None]))[0].numpy()
    assert ours.shape == ref.shape == (7, 189)
    assert np.abs(ours[:4] - ref[:4]).max() < 1e-4 * IMGSZ  # boxes, pixels: the export module's fp32 tolerance
    assert np.abs(ours[4:] - ref[4:]).max() < 1e-4  # scores
    assert ref[4:].max() - ref[4:].min() > 0.5  # the fixture's scores do spread


def test_detections_match_the_engines_predict(exported):
    from lwdet import YOLO

    image = _image()
    with NcnnDetector(exported, conf=0.25) as det:
        ours = det.detect(image)
        with pytest.raises(ValueError, match="fixed"):
            det.infer(np.zeros((3, 64, 64), np.float32))
    res = YOLO(str(exported.parent / "tiny.pt")).predict(image, conf=0.25, imgsz=IMGSZ, rect=False, verbose=False)[0]
    ref = list(zip(res.boxes.xyxy.numpy(), res.boxes.conf.numpy(), res.boxes.cls.numpy().astype(int)))
    k = 10
    assert len(ref) >= k and len(ours) >= k
    for (box, score, cls), d in zip(ref[:k], ours[:k]):
        assert d.class_id == cls and d.class_name == NAMES[cls]
        assert abs(d.score - score) < 1e-3
        assert _iou(np.array(d.xyxy), box) > 0.9
    assert all(0 <= v <= lim for d in ours for v, lim in zip(d.xyxy, (190, 200, 190, 200)))


def _iou(a, b) -> float:
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter))


def test_bench_detector_row(exported):
    row = bench.bench_detector(exported, threads=1, loops=3, warmup=1)
    assert row["kind"] == "lwdet" and row["input"] == f"{IMGSZ}x{IMGSZ}x3" and row["image"].startswith("synthetic")
    assert row["infer_min_ms"] <= row["infer_median_ms"] <= row["infer_max_ms"] and row["e2e_fps"] > 0
    with pytest.raises(ValueError, match="re-export"):
        bench.bench_detector(exported, imgsz=320, loops=1, warmup=0)


def test_bench_all_rounds_pass_round_robin_and_merge(exported):
    seen = []
    rows = bench.bench_all([exported], threads=(1, 2), loops=2, warmup=1, rounds=3, on_row=seen.append)
    assert [r["threads"] for r in seen] == [1, 2] * 3  # whole passes, one after another
    assert [(r["threads"], r["rounds"]) for r in rows] == [(1, 3), (2, 3)]
    for r in rows:
        assert r["infer_min_ms"] == min(s["infer_min_ms"] for s in seen if s["threads"] == r["threads"])
    with pytest.raises(ValueError, match="rounds"):
        bench.bench_all([exported], rounds=0)


# --------------------------------------------------------------------------------- CLIs without torch (as a Pi)
def _run(args, env, cwd=ROOT):
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_edge_imports_without_torch(no_torch_env):
    code = (
        "import lwdet.edge, lwdet.edge.bench, lwdet.edge.bench.projection, lwdet.edge.app.sources, "
        "lwdet.edge.app.outputs, lwdet.edge.app.overlay, lwdet.quantize, sys; "
        "assert not {'torch', 'ultralytics', 'yaml'} & set(sys.modules), sorted(sys.modules)"
    )
    r = _run(["-c", code], no_torch_env)
    assert r.returncode == 0, r.stderr


MOVED = {  # lwdet 0.1.0 split lwdet.edge into the runtime, the bench and the Pi app; no release had the old names
    "timing": "bench",
    "sysinfo": "bench",
    "projection": "bench",
    "output": "bench",
    "sources": "app",
    "outputs": "app",
    "overlay": "app",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_edge_modules_live_only_under_their_part(old):
    import importlib

    importlib.import_module(f"lwdet.edge.{MOVED[old]}.{old}")
    assert not (ROOT / "lwdet" / "edge" / f"{old}.py").exists()  # no alias module for a name no release had
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"lwdet.edge.{old}")


def test_runtime_modules_do_not_import_the_bench_or_the_app():
    runtime = ["boards", "numerics", "postprocess", "preprocess", "runner", "slicing"]
    for name in runtime:
        text = (ROOT / "lwdet" / "edge" / f"{name}.py").read_text()
        assert not re.search(r"lwdet\.edge\.(bench|app)\b", text), name


def test_bench_cli_without_torch(exported, no_torch_env, tmp_path):
    image = tmp_path / "image.jpg"
    cv2.imwrite(str(image), _image(120, 160))
    args = [
        "bench_edge.py",
        "--all",
        exported.parent,
        "--threads",
        "1,2",
        "--loops",
        "3",
        "--warmup",
        "1",
        "--runtimes",
        "ncnn,onnx",
        "--image",
        image,
        "--json",
        tmp_path / "b.json",
        "--csv",
        tmp_path / "b.csv",
    ]
    if FASTESTV2.is_file():
        args += ["--param", FASTESTV2]
    r = _run(args, no_torch_env)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "b.json").read_text())
    assert {"cpu", "arch", "cores", "board", "ncnn", "numpy", "python"} <= set(doc["device"])
    rows = doc["results"]
    ncnn_rows = [x for x in rows if x["kind"] == "lwdet" and x["runtime"] == "ncnn"]
    assert [x["threads"] for x in ncnn_rows] == [1, 2] and all(x["model"] == "tiny" for x in ncnn_rows)
    assert [x["threads"] for x in rows if x["runtime"] == "onnx"] == [1, 2]
    for x in ncnn_rows:
        assert x["infer_min_ms"] <= x["infer_median_ms"] <= x["infer_p90_ms"] <= x["infer_max_ms"]
        assert x["infer_min_ms"] <= x["infer_mean_ms"] <= x["infer_max_ms"]
        assert x["infer_fps"] == pytest.approx(1000 / x["infer_mean_ms"])
        assert x["e2e_mean_ms"] > 0 and x["pre_ms"] > 0 and x["post_ms"] > 0 and x["detections"] >= 0
        assert x["mem_peak_mb"] > 0 and x["param_kb"] > 0 and x["weights_mb"] > 1 and x["fp16"] is False
        assert x["image"] == str(image) and x["input"] == f"{IMGSZ}x{IMGSZ}x3" and x["loops"] == 3
    with open(tmp_path / "b.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(bench.FIELDS) and len(table) == len(rows)
    assert table[0]["cpu"] == doc["device"]["cpu"] and table[0]["ncnn"] == doc["device"]["ncnn"]
    if FASTESTV2.is_file():
        peers = [x for x in rows if x["kind"] == "peer"]
        assert [(x["model"], x["input"], x["threads"]) for x in peers] == [
            ("yolo-fastestv2", "352x352x3", 1),
            ("yolo-fastestv2", "352x352x3", 2),
        ]
        assert all(x["infer_mean_ms"] > 0 and x["e2e_mean_ms"] is None for x in peers)
    assert "yolo-fastestv2" in r.stdout or not FASTESTV2.is_file()


@needs_peers
def test_bench_cli_peers_folder_without_torch(no_torch_env, tmp_path):
    peers = tmp_path / "peers"
    peers.mkdir()
    shutil.copy(FASTESTV2, peers)
    shutil.copy(PEERS / "shufflenet_v2.param", peers)
    r = _run(
        ["bench_edge.py", "--peers", peers, "--loops", "2", "--warmup", "1", "--csv", tmp_path / "p.csv"], no_torch_env
    )
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "p.csv", newline="") as f:
        assert [(x["model"], x["input"]) for x in csv.DictReader(f)] == [
            ("shufflenet_v2", "224x224x3"),
            ("yolo-fastestv2", "352x352x3"),
        ]


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "no/such_ncnn_model"],
        ["--threads", "0", "--model", "x"],
        ["--param", "no/such.param"],
        ["--runtimes", "tflite", "--param", str(FASTESTV2)],
        ["--input-shape", "352,352", "--param", str(FASTESTV2)],
        [],
    ],
    ids=["missing-model", "threads-0", "missing-param", "unknown-runtime", "bad-shape", "nothing"],
)
def test_bench_cli_bad_input(args, no_torch_env):
    r = _run(["bench_edge.py", *args], no_torch_env)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("lwdet bench: error:"), r.stderr


def test_bench_cli_torch_runtime(exported, tmp_path):
    pytest.importorskip("torch")
    r = _run(
        [
            "bench_edge.py",
            "--model",
            exported,
            "--runtimes",
            "ncnn,torch",
            "--loops",
            "2",
            "--warmup",
            "1",
            "--json",
            tmp_path / "t.json",
        ],
        {**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "t.json").read_text())["results"]
    assert [x["runtime"] for x in rows] == ["ncnn", "torch"] and rows[1]["path"].endswith("tiny.pt")


def test_detect_cli_without_torch(exported, no_torch_env, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), _image(seed=i))
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(5):
        writer.write(_image(120, 160, seed=i))
    writer.release()
    script = ROOT / "deploy" / "raspberry-pi" / "detect.py"
    cases = [(folder, tmp_path / "o1", ["0.png", "1.png"]), (video, tmp_path / "o2", ["clip.mp4"])]
    for source, out, expected in cases:
        r = _run(
            [script, "--model", exported, "--source", source, "--save", out, "--threads", "1"],
            no_torch_env,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
        assert "FPS" in r.stdout
        assert sorted(p.name for p in out.iterdir()) == sorted([*expected, "detections.csv"])
        with open(out / "detections.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows and {x["class_name"] for x in rows} <= set(NAMES)
    r = _run([script, "--model", exported, "--source", tmp_path / "missing.mp4"], no_torch_env)
    assert r.returncode == 2 and r.stderr.startswith("detect.py: error:")


def test_numerics_measure_runs_the_export_on_fixed_inputs(exported, tmp_path):
    """tools/pi_numerics.py measure (what the emulated Pi check runs per board): raw outputs and detections."""
    import cv2

    from lwdet.edge.numerics import fixed_inputs, measure, save

    folder = exported
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    raw, result = measure(folder, fixed_inputs((IMGSZ, IMGSZ), [image]), [image], fp16=False)
    n_anchors = sum((IMGSZ // s) ** 2 for s in (8, 16, 32))
    assert raw.shape == (3, 4 + len(NAMES), n_anchors)  # 2 noise inputs + the letterboxed image
    assert result["info"]["fp16_used"] is False and result["info"]["board_default"] in (True, False, None)
    assert result["detections"]["a.jpg"]["hw"] == [50, 70]
    save(tmp_path / "out" / "x86", raw, result)
    assert np.array_equal(np.load(tmp_path / "out" / "x86.npy"), raw)


def test_unchecked_board_runs_ncnn_defaults_with_one_warning(exported, monkeypatch, caplog):
    import logging

    from lwdet.edge import runner

    monkeypatch.setattr(runner, "on_arm", lambda: True)  # as on a Pi 5 whose export records no numerics
    monkeypatch.setattr(runner, "cpu_part", lambda: "Cortex-A76")
    with caplog.at_level(logging.WARNING, logger="lwdet.edge.runner"), NcnnDetector(exported) as det:
        assert det.fp16 is None  # ncnn's defaults
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1 and "Raspberry Pi 5 (Cortex-A76) unchecked" in lines[0]
