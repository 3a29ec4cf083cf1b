"""Tests for lwdet.data.augment: the 'topdown' preset through the engine's own flip and Albumentations hook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lwdet.data.augment import AUG_PRESETS, augment_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_presets():
    assert AUG_PRESETS == ("engine", "topdown") and augment_overrides("engine") == {}
    with pytest.raises(ValueError, match="choose from engine, topdown"):
        augment_overrides("aerial")
    o = augment_overrides("topdown")
    assert o["flipud"] == 0.5 and o["fliplr"] == 0.5
    assert [type(t).__name__ for t in o["augmentations"]] == ["Blur", "MedianBlur", "ToGray", "CLAHE", "RandomRotate90"]


def test_topdown_without_albumentations_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", None)  # import fails as if not installed
    with pytest.raises(ValueError, match=r"needs the albumentations package \(pip install albumentations==2.0.8\)"):
        augment_overrides("topdown")


def test_engine_hook_rotates_boxes_with_the_pixels():
    """The engine's Albumentations step with the preset's rotation: each box still frames its object."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data.augment import Albumentations
    from ultralytics.utils.instance import Instances

    rot = [t for t in augment_overrides("topdown")["augmentations"] if type(t).__name__ == "RandomRotate90"]
    assert get_cfg(overrides=augment_overrides("topdown")).flipud == 0.5  # a valid engine argument set
    aug = Albumentations(p=1.0, transforms=rot)
    img = np.zeros((64, 64, 3), np.uint8)
    img[8:20, 30:60] = 255  # the object: x 30..60, y 8..20
    seen = set()
    for _ in range(40):
        labels = {
            "img": img.copy(),
            "cls": np.zeros((1, 1)),
            "instances": Instances(
                bboxes=np.array([[45 / 64, 14 / 64, 30 / 64, 12 / 64]], np.float32),
                segments=np.zeros((0, 1000, 2), np.float32),
                bbox_format="xywh",
                normalized=True,
            ),
        }
        out = aug(labels)
        ys, xs = np.nonzero(out["img"][..., 0] > 128)
        inst = out["instances"]
        inst.convert_bbox("xyxy")
        inst.denormalize(64, 64)
        np.testing.assert_allclose(inst.bboxes[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=0.5)
        seen.add(tuple(int(v) for v in np.round(inst.bboxes[0])))
    assert len(seen) == 4  # all four rotations happen


@pytest.mark.train
@pytest.mark.slow
def test_train_cli_aug_topdown(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--backbone",
            "ghostnet",
            "--epochs",
            "1",
            "--imgsz",
            "64",
            "--batch",
            "32",
            "--no-plots",
            "--aug",
            "topdown",
            "--project",
            str(tmp_path),
            "--name",
            "td",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    args = yaml.safe_load((tmp_path / "td" / "args.yaml").read_text())
    assert args["flipud"] == 0.5
    assert [a["transform"]["__class_fullname__"] for a in args["augmentations"]][-1] == "RandomRotate90"
    assert "RandomRotate90(p=1.0" in r.stdout + r.stderr  # the engine's hook announced it
