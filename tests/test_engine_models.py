"""The engine's own detectors (yolo26n / yolo11n / yolov8n.yaml) as lwdet rows: build, train, export, run, profile."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from ultralytics.nn.tasks import DetectionModel

import lwdet
from lwdet.engine_models import engine_yaml
from lwdet.models import LwdetModel, ModelConfigError, build_model, load_spec

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ["yolo26n.yaml", "yolo11n.yaml", "yolov8n.yaml"]
SIZE = 64
# Published nano figures at 640 px, COCO (80 classes): params (M), FLOPs (G).
PUBLISHED = [
    ("yolo26n.yaml", 2.4, 5.5, "https://docs.ultralytics.com/tasks/detect/ (YOLO26 table)"),
    ("yolo11n.yaml", 2.6, 6.5, "https://docs.ultralytics.com/models/yolo11/"),
    ("yolov8n.yaml", 3.2, 8.7, "https://docs.ultralytics.com/models/yolov8/"),
]


# ------------------------------------------------------------------------------------------------------------ build
@pytest.mark.parametrize("name", ENGINE)
def test_engine_name_builds_the_engines_own_model(name):
    model = build_model(name, nc=5, verbose=False)
    reference = DetectionModel(name, nc=5, verbose=False)  # the engine's own loader and parser
    assert type(model) is DetectionModel and model.yaml["scale"] == "n"
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    assert (getattr(model.model[-1], "one2one_cv2", None) is not None) == (name == "yolo26n.yaml")  # e2e head


def test_lwdet_yolo_builds_engine_names_and_keeps_lwdet_names_for_its_own():
    assert type(lwdet.YOLO("yolo26n.yaml").model) is DetectionModel
    assert type(lwdet.YOLO("yolov5n.yaml").model) is LwdetModel  # lwdet's shipped baseline, not the engine's
    with pytest.raises(FileNotFoundError, match="never downloads"):
        lwdet.YOLO("yolo26n.pt")


def test_lwdet_yolo_builds_engine_names_when_the_engine_is_reached_through_a_symlink(tmp_path, monkeypatch):
    import ultralytics

    from lwdet import engine_models

    link = tmp_path / "site-packages-link"  # a venv behind a symlinked folder: the engine's files are not resolved
    link.symlink_to(Path(ultralytics.__file__).parent.parent, target_is_directory=True)
    monkeypatch.setattr(engine_models, "engine_cfg_dir", lambda: link / "ultralytics" / "cfg" / "models")
    assert engine_models.engine_yaml("yolo26n.yaml").is_relative_to(link)
    model = lwdet.YOLO("yolo26n.yaml").model
    assert type(model) is DetectionModel and model.yaml["scale"] == "n"
    assert type(lwdet.YOLO("yolov5n.yaml").model) is LwdetModel


def _variant(tmp_path, name="yolo26n.yaml", **change):
    spec = yaml.safe_load(engine_yaml("yolo26n.yaml").read_text())
    for key, value in change.items():
        if key == "row":
            spec["backbone"][0] = value
        elif key == "last":
            spec["head"][-1] = value
        else:
            spec[key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "change, name, message",
    [
        ({"activation": "__import__('os').system('true')"}, "yolo26n.yaml", "never evaluated"),
        ({"row": [-1, 1, "Conw", [64, 3, 2]]}, "yolo26n.yaml", "module 'Conw' is not known"),
        ({"row": [-1, 1, "Conv", ["os.system('x')", 3, 2]]}, "yolo26n.yaml", "never evaluated"),
        ({"last": [[16, 19, 22], 1, "Segment", ["nc", 32, 256]]}, "yolo26n.yaml", "last row must be one of Detect"),
        ({"scalez": 1}, "yolo26n.yaml", "unknown key 'scalez'"),
        ({}, "mynet.yaml", "no scale ''"),
    ],
)
def test_bad_engine_yaml_is_one_clear_error_naming_the_file(tmp_path, change, name, message):
    path = _variant(tmp_path, name, **change)
    with pytest.raises(ModelConfigError, match=message) as e:
        build_model(path, verbose=False)
    assert str(path) in str(e.value) or name in str(e.value)


def test_unknown_model_name_lists_the_engines_names():
    with pytest.raises(ModelConfigError, match="yolo26n.yaml"):
        load_spec("yolo99n.yaml")


def test_parts_split_engine_yaml_at_its_backbone_section():
    from lwdet.parts import split

    model = build_model("yolo26n.yaml", nc=5, verbose=False).eval()
    parts = split(model)
    assert len(parts["backbone"].layers) == 11 and parts["backbone"].outputs == [4, 6, 10]
    assert parts["backbone+neck"].outputs == [16, 19, 22]
    x = torch.zeros(1, 3, SIZE, SIZE)
    with torch.no_grad():
        assert [t.shape[-1] for t in parts["backbone+neck"](x)] == [8, 4, 2]


@pytest.mark.slow
@pytest.mark.parametrize("name, params_m, gflops, where", PUBLISHED)
def test_profile_reproduces_published_nano_numbers(name, params_m, gflops, where):
    from lwdet.profile import profile_detector

    p = profile_detector(name, 640, nc=80)  # the deployed graph: YOLO26 without its unused one-to-one branch
    assert abs(p.params / 1e6 - params_m) <= 0.05, (p.params, where)
    assert abs(p.gflops - gflops) <= 0.05 * gflops, (p.gflops, where)


# ------------------------------------------------------------------------------------- train, export, edge, tune
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """name -> run folder of a 1-epoch CLI training, made on first use and shared by the tests below."""
    project, runs = tmp_path_factory.mktemp("runs"), {}

    def get(name):
        if name not in runs:
            stem = Path(name).stem
            cmd = [
                sys.executable,
                "train.py",
                "--model",
                name,
                "--epochs",
                "1",
                "--imgsz",
                str(SIZE),
                "--batch",
                "32",
                "--no-plots",
                "--workers",
                "0",
                "--project",
                str(project),
                "--name",
                stem,
            ]
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stderr[-3000:]
            runs[name] = project / stem
        return runs[name]

    return get


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.export
@pytest.mark.parametrize("name", ENGINE)
def test_engine_yaml_trains_from_the_cli_and_exports_to_ncnn_with_parity(name, trained):
    from lwdet.export import export_ncnn

    run = trained(name)
    header = (run / "results.csv").read_text().splitlines()[0]
    assert "metrics/mAP50-95(B)" in header and "metrics/F1(B)" in header
    assert (run / name).is_file()  # the run keeps the engine YAML it was trained from, by its scaled name
    folder = export_ncnn(run / "weights" / "best.pt", imgsz=SIZE, data=run / "data.yaml", map_check=False)
    report = json.loads((folder / "parity.json").read_text())
    assert report["passed"] and report["n_images"] == 4
    assert report["box_max_abs_diff"] <= report["box_tolerance"]
    meta = json.loads((folder / "lwdet.json").read_text())
    assert meta["model"] == Path(name).stem
    assert meta["output"]["shape"] == [4 + 5, (SIZE // 8) ** 2 + (SIZE // 16) ** 2 + (SIZE // 32) ** 2]  # raw Detect


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.export
def test_ncnn_detector_runs_the_yolo26n_export(trained):
    from lwdet.edge import NcnnDetector

    folder = trained("yolo26n.yaml") / "weights" / "best_ncnn_model"
    if not folder.is_dir():
        from lwdet.export import export_ncnn

        export_ncnn(folder.parent / "best.pt", imgsz=SIZE, map_check=False)
    image = cv2.imread(str(sorted((ROOT / "datasets" / "fmnist-det" / "images" / "val").iterdir())[0]))
    with NcnnDetector(folder) as det:
        assert det.infer(np.zeros((3, SIZE, SIZE), np.float32)).shape == (9, 84)
        rows = det.predict(image, conf=0.0, max_det=10)
        found = det.detect(image, conf=0.0, max_det=10)
    assert rows.shape == (10, 6) and rows.dtype == np.float32 and np.all(np.diff(rows[:, 4]) <= 0)
    h, w = image.shape[:2]
    assert np.all(rows[:, [0, 2]] <= w) and np.all(rows[:, [1, 3]] <= h) and np.all(rows[:, :4] >= 0)
    assert [d.class_name for d in found] == [det.names[int(c)] for c in rows[:, 5]]


@pytest.mark.slow
@pytest.mark.train
def test_lwdet_best_pt_fine_tunes_through_lwdet_yolo(tmp_path):
    from lwdet.data import DEFAULT_DATA
    from lwdet.training import train

    run = tmp_path / "base"
    train(
        "yolov5n-shufflenetv2_050.yaml",
        DEFAULT_DATA,
        run,
        epochs=1,
        imgsz=SIZE,
        batch=32,
        workers=0,
        plots=False,
        fraction=0.25,
    )
    best = run / "weights" / "best.pt"
    model = lwdet.YOLO(best)
    assert type(model.model) is LwdetModel
    start = {k: v.clone() for k, v in model.model.state_dict().items()}
    model.train(
        data=str(run / "data.yaml"),
        epochs=1,
        imgsz=SIZE,
        batch=32,
        workers=0,
        plots=False,
        fraction=0.25,
        project=str(tmp_path),
        name="tuned",
    )
    tuned = lwdet.YOLO(tmp_path / "tuned" / "weights" / "last.pt")
    assert type(tuned.model) is LwdetModel
    after = tuned.model.state_dict()
    assert start.keys() == after.keys()
    # started from best.pt, not from scratch: one short epoch moves the weights only a little
    moved = [
        float((after[k].float() - v.float()).norm() / (v.float().norm() + 1e-12))
        for k, v in start.items()
        if v.dtype.is_floating_point and v.ndim == 4
    ]
    assert 0 < np.median(moved) < 0.5


def test_model_spec_is_below_models_and_engine_models():
    """models -> engine_models, and both -> model_spec; never engine_models -> models (issue 34: no import cycle)."""
    import ast
    import inspect

    from lwdet import engine_models, model_spec

    def imported(module):
        names = set()
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        return {n for n in names if n.startswith("lwdet")}

    assert "lwdet.models" not in imported(engine_models)
    assert imported(model_spec) <= {"lwdet.errors", "lwdet.backbones"}
    assert issubclass(model_spec.ModelConfigError, ValueError)
    from lwdet.models import ModelConfigError

    assert ModelConfigError is model_spec.ModelConfigError
