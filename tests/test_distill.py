"""Distillation through the engine: train.py --teacher, the allow-list and the level check, the logged loss."""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", 1, "--imgsz", 64, "--batch", 32, "--workers", 0, "--no-plots"]


def run_train(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        env=env,
    )


class Foreign:
    """A class outside lwdet's allow-list, pickled into a 'teacher'."""


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A 1-epoch lwdet YOLOv5n run (LwdetModel, 3 levels) to teach with."""
    project = tmp_path_factory.mktemp("teach")
    r = run_train("--backbone", "yolov5n", *TINY, "--project", project, "--name", "t")
    assert r.returncode == 0, r.stderr[-3000:]
    return project / "t"


@pytest.mark.train
@pytest.mark.slow
def test_teacher_run_folder_distils_and_logs_the_loss(teacher, tmp_path):
    # student: an lwdet backbone swap with the lite PAN (Backbone / Index rows, lwdet modules); teacher: lwdet YOLOv5n
    r = run_train(
        "--backbone",
        "mobilenetv3_small",
        "--neck",
        "lite",
        *TINY,
        "--teacher",
        teacher,
        "--distill-weight",
        2.5,
        "--project",
        tmp_path,
        "--name",
        "s",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "s"
    rows = list(csv.DictReader((run / "results.csv").open()))
    dis = float(rows[-1]["train/dis_loss"])
    assert math.isfinite(dis) and dis > 0  # the engine's feature loss, weighted by dis=2.5
    assert float(rows[-1]["val/dis_loss"]) == 0.0  # the engine computes it on training batches only
    args = (run / "args.yaml").read_text()
    assert f"distill_model: {teacher / 'weights' / 'best.pt'}" in args and "dis: 2.5" in args
    from lwdet.checkpoints import load_checkpoint
    from lwdet.models import LwdetModel

    model = load_checkpoint(run / "weights" / "best.pt")["model"]
    assert type(model) is LwdetModel  # the engine saves the student alone, not the teacher wrapper
    assert model.stride.tolist() == [8, 16, 32]


@pytest.mark.train
def test_teacher_with_other_levels_is_refused(teacher, tmp_path):
    r = run_train(
        "--backbone",
        "mobilenetv3_small",
        "--neck",
        "p45",
        "--head",
        "nano",
        *TINY,
        "--teacher",
        teacher,
        "--project",
        tmp_path,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip().splitlines()[-1]
    assert f"teacher {teacher / 'weights' / 'best.pt'} detects at strides 8, 16, 32 (3 levels)" in err
    assert "student yolov5n-mobilenetv3_small_100-p45pan-nanohead.yaml at strides 16, 32 (2 levels)" in err
    assert not any(tmp_path.iterdir())


def test_untrusted_teacher_is_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model": torch.nn.Sequential(), "extra": Foreign()}, evil)
    r = run_train("--backbone", "yolov5n", *TINY, "--teacher", evil, "--project", tmp_path / "runs")
    assert r.returncode == 2
    assert f"error: {evil}: refers to test_distill.Foreign, outside lwdet's allow-list" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--teacher", "nowhere"], "--teacher: not found: nowhere"),
        (["--distill-weight", "3"], "a distillation weight needs a teacher"),
    ],
)
def test_teacher_usage_errors(tmp_path, args, message):
    r = run_train("--backbone", "yolov5n", *TINY, *args, "--project", tmp_path)
    assert r.returncode == 2 and message in r.stderr
    assert not any(tmp_path.iterdir())


def test_teacher_without_weights_names_the_folder(tmp_path):
    from lwdet.distill import resolve_teacher

    with pytest.raises(FileNotFoundError, match=f"teacher run folder {tmp_path} has no weights/best.pt"):
        resolve_teacher(tmp_path)


def test_a_distillation_checkpoint_passes_the_allow_list(tmp_path):
    """last.pt of a distillation run holds the engine's DistillationModel EMA (teacher stripped): resume loads it."""
    from copy import deepcopy

    from ultralytics.cfg import get_cfg
    from ultralytics.nn.distill_model import DistillationModel
    from ultralytics.utils.torch_utils import ModelEMA

    from lwdet.checkpoints import load_checkpoint
    from lwdet.models import LwdetModel, model_yaml

    student = LwdetModel(model_yaml("mobilenetv3_small", "lite"), nc=5, verbose=False)
    student.args = get_cfg(overrides={"imgsz": 64})
    teacher = LwdetModel(model_yaml("yolov5n"), nc=5, verbose=False)
    ema = deepcopy(ModelEMA(DistillationModel(teacher, student)).ema)  # what the trainer saves as "ema"
    torch.save({"ema": ema, "model": None}, tmp_path / "last.pt")
    loaded = load_checkpoint(tmp_path / "last.pt")["ema"]
    assert type(loaded) is DistillationModel and type(loaded.student_model) is LwdetModel
    assert loaded.teacher_model is None
