"""Tests for sliced inference (lwdet.edge.slicing), its full-image evaluation (lwdet.sliced_eval) and detect.py --tile.

Geometry tests use a pixel-reading detector (it finds solid rectangles in whatever crop it is given), so what is
under test is the slicing and the merge; one test runs a real tiny ncnn export end to end.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_edge import exported  # noqa: F401  (the module-scoped tiny export fixture, pnnx)

from lwdet.edge.bench.sliced import time_sliced
from lwdet.edge.slicing import cut_mask, merge_detections, sliced_predict
from lwdet.tilegrid import tile_windows

ROOT = Path(__file__).resolve().parents[1]
COLORS = [(0, 0, 255), (0, 255, 0)]  # class 0 red, class 1 green (BGR)


class RectDetector:
    """Finds solid red / green rectangles in a BGR image: one box per connected blob, score from its size."""

    names = ["red", "green"]

    def __init__(self):
        self.calls = []

    def predict(self, image, conf=None, iou=None, max_det=None, classes=None):
        self.calls.append(image.shape[:2])
        rows = []
        for c, color in enumerate(COLORS):
            mask = np.all(image == color, axis=2).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
            for x, y, w, h, _ in stats[1:]:
                rows.append([x, y, x + w, y + h, 0.5 + 0.4 * min(w * h / 4000, 1), c])
        rows.sort(key=lambda r: -r[4])
        return np.array(rows, np.float32).reshape(-1, 6)


def _scene(h, w, objects):
    image = np.full((h, w, 3), 40, np.uint8)
    for x1, y1, x2, y2, c in objects:
        image[y1:y2, x1:x2] = COLORS[c]
    return image


def _boxes(det):
    return sorted(tuple(int(round(v)) for v in d[[0, 1, 2, 3, 5]]) for d in det)


def test_tile_windows_cover_the_image_like_import():
    from lwdet.data.tiling import TileOptions, tile_boxes

    wins = tile_windows(1000, 700, 256, 64)
    assert wins[0] == (0, 0, 256, 256) and wins[-1] == (744, 444, 1000, 700)
    tiles = tile_boxes(1000, 700, np.zeros((0, 4)), TileOptions(256, 64))
    assert wins == [(t.x0, t.y0, t.x1, t.y1) for t in tiles]  # the windows a tiled import cut
    assert tile_windows(200, 100, 256, 64) == [(0, 0, 200, 100)]
    with pytest.raises(ValueError, match="overlap"):
        tile_windows(1000, 700, 256, 256)


def test_boxes_come_back_in_full_image_coordinates():
    objects = [(10, 12, 50, 40, 0), (300, 100, 340, 150, 1), (900, 600, 950, 690, 0), (520, 400, 560, 430, 1)]
    det = RectDetector()
    out = sliced_predict(det, _scene(700, 1000, objects), tile=256, overlap=64)
    assert len(det.calls) == len(tile_windows(1000, 700, 256, 64)) and set(det.calls) == {(256, 256)}
    assert _boxes(out) == sorted(objects)
    assert out.shape == (4, 6) and (np.diff(out[:, 4]) <= 0).all()  # best first


@pytest.mark.parametrize(
    "obj",
    [
        (230, 100, 270, 140, 0),  # across the seam at x=256, IoU of its halves > 0.5
        (240, 90, 300, 130, 1),  # a 16 px sliver in the left tile: IoU 0.27, NMS keeps it
        (180, 180, 236, 236, 0),
    ],
)  # in the corner where four tiles overlap
def test_an_object_on_a_seam_is_found_once(obj):
    image = _scene(448, 448, [obj])
    out = sliced_predict(RectDetector(), image, tile=256, overlap=64)  # windows at 0 and 192 on each axis
    assert _boxes(out) == [obj]


def test_without_the_cut_rule_a_sliver_would_be_a_duplicate():
    obj = (240, 90, 300, 130, 1)
    det = RectDetector()
    parts = [det.predict(_scene(448, 448, [obj])[:256, :256]), det.predict(_scene(448, 448, [obj])[:256, 192:])]
    parts[1][:, [0, 2]] += 192
    both = np.concatenate(parts)
    assert len(merge_detections(both)) == 2  # NMS alone: the sliver (IoU 0.27) survives
    cut = np.concatenate(
        [cut_mask(parts[0], (0, 0, 256, 256), 448, 448), cut_mask(parts[1], (192, 0, 448, 256), 448, 448)]
    )
    assert cut.tolist() == [True, False]
    assert _boxes(merge_detections(both, cut)) == [obj]


def test_large_objects_need_the_full_image_pass():
    obj = (100, 50, 400, 200, 0)  # 300 px wide: no 256 px window holds it
    image = _scene(256, 512, [obj])
    assert len(sliced_predict(RectDetector(), image, tile=256, overlap=64)) > 1  # pieces
    assert _boxes(sliced_predict(RectDetector(), image, tile=256, overlap=64, full_image=True)) == [obj]


def test_an_image_smaller_than_a_tile_is_whole_image_inference():
    image = _scene(150, 200, [(10, 10, 60, 50, 0), (100, 80, 190, 140, 1)])
    det = RectDetector()
    np.testing.assert_array_equal(sliced_predict(det, image, tile=256, overlap=64, full_image=True), det.predict(image))
    assert det.calls == [(150, 200)] * 2


def test_merge_keeps_classes_apart_and_caps():
    det = np.array([[0, 0, 10, 10, 0.9, 0], [0, 0, 10, 10, 0.8, 1], [0, 0, 10, 10, 0.7, 0]], np.float32)
    out = merge_detections(det)
    assert out[:, 5].tolist() == [0, 1] and out[:, 4].tolist() == pytest.approx([0.9, 0.8])
    assert len(merge_detections(det, max_det=1)) == 1 and merge_detections(np.zeros((0, 6))).shape == (0, 6)


def test_time_sliced_counts_tiles():
    row = time_sliced(RectDetector(), _scene(448, 448, [(10, 10, 40, 40, 0)]), tile=256, overlap=64, loops=2, warmup=0)
    assert row["tiles"] == 4 and row["detections"] == 1 and row["sliced_mean_ms"] > 0
    assert row["tiles_per_s"] == pytest.approx(4e3 / row["sliced_mean_ms"])


# ------------------------------------------------------------------------------------------------ without torch
def _run(args, env, cwd=ROOT):
    return subprocess.run(
        [sys.executable, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_sliced_inference_runs_without_torch(no_torch_env):
    code = """
import sys
import numpy as np
from test_slicing import RectDetector, _scene, _boxes
from lwdet.edge.bench.sliced import time_sliced
from lwdet.edge.slicing import sliced_predict
obj = (240, 90, 300, 130, 1)
assert _boxes(sliced_predict(RectDetector(), _scene(448, 448, [obj]), tile=256, overlap=64)) == [obj]
time_sliced(RectDetector(), _scene(448, 448, [obj]), 256, 64, loops=1, warmup=0)
assert not {'torch', 'ultralytics', 'yaml'} & set(sys.modules), sorted(sys.modules)
print('ok')
"""
    r = _run(["-c", code], no_torch_env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# ------------------------------------------------------------------------------------------------- evaluation
def _truth(objects):
    return np.array([o[4] for o in objects], float), np.array([o[:4] for o in objects], float)


def test_evaluation_perfect_and_shifted_predictions():
    from lwdet.coco import coco_map as pycoco
    from lwdet.sliced_eval import coco_inputs, engine_map

    def coco_map(truths, preds, names):  # the one pycocotools mAP, on the sliced evaluation's inputs
        return pycoco(*coco_inputs(truths, preds, names))

    objects = [(10, 10, 60, 50, 0), (100, 80, 190, 140, 1), (300, 300, 340, 330, 0)]
    truths = [_truth(objects), _truth(objects[:1])]
    perfect = [np.array([[*o[:4], 0.9, o[4]] for o in objs], np.float32) for objs in (objects, objects[:1])]
    # 0.995, not 1: the engine integrates its 101-point precision curve with the trapezoid rule (its val's ceiling)
    assert engine_map(truths, perfect, ["red", "green"]) == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "mAP50": 0.995, "mAP50-95": 0.995}
    )
    assert coco_map(truths, perfect, ["red", "green"]) == pytest.approx({"mAP50": 1.0, "mAP50-95": 1.0})

    # every box shifted so its IoU with the truth is 0.72: correct at IoU 0.50-0.70, wrong at 0.75-0.95 -> 5/10
    shifted = []
    for det in perfect:
        det = det.copy()
        w = det[:, 2] - det[:, 0]
        s = w * (1 - 0.72) / (1 + 0.72)  # IoU of a box with its copy shifted by s along x: (w - s) / (w + s)
        det[:, [0, 2]] += s[:, None]
        shifted.append(det)
    ours, coco = engine_map(truths, shifted, ["red", "green"]), coco_map(truths, shifted, ["red", "green"])
    assert ours["mAP50"] == pytest.approx(0.995) and ours["mAP50-95"] == pytest.approx(0.995 / 2)
    assert coco == pytest.approx({"mAP50": 1.0, "mAP50-95": 0.5})

    # 150 objects in one image (more than COCOeval's default maxDets of 100): every detection still counts, unless
    # the cap is asked for
    many = [(10 * i, 0, 10 * i + 8, 8, 0) for i in range(150)]
    det = [np.array([[*o[:4], 0.9, 0] for o in many], np.float32)]
    assert coco_map([_truth(many)], det, ["red"]) == pytest.approx({"mAP50": 1.0, "mAP50-95": 1.0})
    capped = pycoco(*coco_inputs([_truth(many)], det, ["red"]), max_dets=100)
    assert capped["mAP50-95"] == pytest.approx(100 / 150, abs=0.02)


def test_evaluate_sliced_vs_letterbox_on_files(tmp_path):
    from lwdet.sliced_eval import evaluate, table

    objects = [(10, 12, 50, 40, 0), (240, 90, 300, 130, 1), (380, 300, 420, 340, 0)]
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), _scene(448, 448, objects))
    (tmp_path / "labels" / "a.txt").write_text(
        "".join(
            f"{c} {(x1 + x2) / 896} {(y1 + y2) / 896} {(x2 - x1) / 448} {(y2 - y1) / 448}\n"
            for x1, y1, x2, y2, c in objects
        )
    )
    rows = {r["mode"]: r for r in table(evaluate(RectDetector(), tmp_path / "images", tile=256, overlap=64))}
    assert rows["sliced"]["boxes"] == 3 and rows["sliced"]["detections"] == 3
    assert rows["sliced"]["mAP50-95"] == pytest.approx(0.995) and rows["sliced"]["coco_mAP50-95"] == pytest.approx(1)
    assert rows["letterbox"]["mAP50-95"] == pytest.approx(0.995)  # this detector reads pixels at any scale


# ------------------------------------------------------------------------------------ a real ncnn export, and detect.py


@pytest.mark.export
@pytest.mark.slow  # the shared export fixture takes ~1-3 min on 2 busy cores
def test_ncnn_export_sliced_end_to_end(request):
    folder = request.getfixturevalue("exported")
    from lwdet.edge import NcnnDetector

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (250, 330, 3), dtype=np.uint8), (7, 7), 0)
    det = NcnnDetector(folder, conf=0.01)
    whole = det.predict(image[:90, :90])
    np.testing.assert_array_equal(sliced_predict(det, image[:90, :90], tile=96, overlap=32), whole)
    out = sliced_predict(det, image, tile=96, overlap=32, full_image=True, max_det=1000)
    assert out.ndim == 2 and out.shape[1] == 6 and len(out) > 0
    assert (out[:, 0] >= 0).all() and (out[:, 2] <= 330).all() and (out[:, 3] <= 250).all()
    assert out[:, 2].max() > 96 and out[:, 3].max() > 96  # boxes beyond the first window: shifted back
    assert set(out[:, 5].astype(int)) <= {0, 1, 2}


@pytest.mark.export
@pytest.mark.slow  # the shared export fixture takes ~1-3 min on 2 busy cores
def test_detect_cli_tiles_without_torch(request, no_torch_env, tmp_path):
    folder = request.getfixturevalue("exported")
    rng = np.random.default_rng(1)
    cv2.imwrite(str(tmp_path / "big.png"), cv2.GaussianBlur(rng.integers(0, 256, (250, 330, 3), np.uint8), (7, 7), 0))
    script = ROOT / "deploy" / "raspberry-pi" / "detect.py"
    r = _run(
        [
            script,
            "--model",
            folder,
            "--source",
            tmp_path / "big.png",
            "--save",
            tmp_path / "out",
            "--tile",
            "96",
            "--overlap",
            "32",
            "--conf",
            "0.01",
            "--threads",
            "1",
        ],
        no_torch_env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "tiles" in r.stdout
    with open(tmp_path / "out" / "detections.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and max(float(x["x2"]) for x in rows) > 96
    r = _run(
        [script, "--model", folder, "--source", tmp_path / "big.png", "--tile", "96", "--overlap", "96"], no_torch_env
    )
    assert r.returncode == 2 and "overlap" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.export
@pytest.mark.slow  # the shared export fixture takes ~1-3 min on 2 busy cores
def test_bench_sliced_row(request):
    folder = request.getfixturevalue("exported")
    from lwdet.edge.bench.sliced import bench_sliced

    row = bench_sliced(folder, np.zeros((250, 330, 3), np.uint8), tile=96, overlap=32, loops=2, warmup=1)
    assert row["tiles"] == 20 and row["model"] == "tiny" and row["input"] == "96x96x3"  # 5 x 4 windows
    assert row["tiles_per_s"] > 0 and row["sliced_median_ms"] > 0


def test_sliced_eval_cli_bad_input(tmp_path, capsys):
    from lwdet.cli import sliced_eval

    (tmp_path / "m_ncnn_model").mkdir()
    assert sliced_eval.main([str(tmp_path / "m_ncnn_model"), "--images", str(tmp_path), "--overlap", "640"]) == 2
    assert capsys.readouterr().err == "error: tile overlap must be in [0, 640) px, got 640\n"
    assert sliced_eval.main([str(tmp_path / "m_ncnn_model"), "--images", str(tmp_path)]) == 2  # not an export
    assert "not an ncnn export folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        sliced_eval.main([str(tmp_path / "missing"), "--images", str(tmp_path)])
    assert e.value.code == 2


@pytest.mark.export
@pytest.mark.slow  # the shared export fixture takes ~1-3 min on 2 busy cores
def test_engine_predictor_slices_like_the_ncnn_export(request):
    """The workstation path (the engine's predictor per tile) and the Pi path give the same merged boxes."""
    folder = request.getfixturevalue("exported")
    from lwdet.edge import NcnnDetector
    from lwdet.sliced_eval import EngineDetector, load_detector

    image = cv2.GaussianBlur(np.random.default_rng(2).integers(0, 256, (250, 330, 3), np.uint8), (7, 7), 0)
    torch_det = EngineDetector(folder.parent / "tiny.pt", imgsz=96, conf=0.3)
    ncnn_det = NcnnDetector(folder, conf=0.3)
    assert isinstance(load_detector(folder.parent / "tiny.pt", 96), EngineDetector)
    assert isinstance(load_detector(folder), NcnnDetector)
    ours, theirs = (sliced_predict(d, image, tile=96, overlap=32) for d in (torch_det, ncnn_det))
    assert len(ours) == len(theirs) > 0
    np.testing.assert_allclose(ours[np.argsort(-ours[:, 4])], theirs[np.argsort(-theirs[:, 4])], atol=0.05)
