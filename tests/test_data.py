"""Tests for lwdet.data: the embedded items, the synthetic detection set and data-YAML handling."""

from __future__ import annotations

import os
import re

os.environ.setdefault("YOLO_OFFLINE", "1")  # before anything imports ultralytics

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from lwdet.data import DEFAULT_DATA, SYNTH_KEY, ensure_dataset, write_engine_yaml
from lwdet.data.synth import ITEMS_NPZ, build_detection_set, load_items, render_image

CLASSES = ["t_shirt", "trouser", "dress", "sneaker", "bag"]
SMALL = dict(classes=CLASSES, n_train=8, n_val=4)
GEOM = dict(classes=CLASSES, min_side=160, max_side=256, objects=(2, 6), scale=(16, 96))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_detection_set(tmp_path_factory.mktemp("synth") / "ds", seed=0, **SMALL)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _labels(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines()]
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def _to_pixels(lab: np.ndarray, w: int, h: int) -> np.ndarray:
    cx, cy, bw, bh = lab[:, 1] * w, lab[:, 2] * h, lab[:, 3] * w, lab[:, 4] * h
    return np.rint(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)).astype(np.int64)


# ----------------------------------------------------------------------------- embedded items
def test_item_bank():
    assert ITEMS_NPZ.is_file() and ITEMS_NPZ.stat().st_size < 1_500_000
    bank = load_items()
    assert bank.images.dtype == np.uint8 and bank.images.shape[1:] == (28, 28)
    assert len(bank.class_names) == 10 and set(CLASSES) <= set(bank.class_names)
    assert bank.split_names == ("train", "t10k")
    assert "Zalando" in bank.licence and "MIT" in bank.licence
    for c in range(10):  # same count per class from each source split
        assert len(bank.rows(c, 0)) == len(bank.rows(c, 1)) > 0
    for s in (0, 1):  # no duplicate source items within a split
        idx = bank.source_index[bank.split == s]
        assert len(np.unique(idx)) == len(idx)


# ----------------------------------------------------------------------------- layout / labels
def test_layout_and_yaml(built):
    data = yaml.safe_load((built / "data.yaml").read_text())
    assert data == {"path": str(built), "train": "images/train", "val": "images/val", "names": dict(enumerate(CLASSES))}
    assert Path(data["path"]).is_absolute()
    for split, n in (("train", 8), ("val", 4)):
        imgs = sorted((built / "images" / split).glob("*.jpg"))
        labs = sorted((built / "labels" / split).glob("*.txt"))
        assert len(imgs) == len(labs) == n
        assert [p.stem for p in imgs] == [p.stem for p in labs]
    assert not list(built.parent.glob(".ds.tmp-*"))  # temp folder renamed away


def test_boxes_normalised_and_tight(built):
    n_obj = 0
    for split, n in (("train", 8), ("val", 4)):
        for i in range(n):
            img = cv2.imread(str(built / "images" / split / f"{i:06d}.jpg"))
            h, w = img.shape[:2]
            assert 160 <= h <= 256 and 160 <= w <= 256
            txt = (built / "labels" / split / f"{i:06d}.txt").read_text()
            for line in txt.splitlines():  # format: cls + 4 values with 6 decimals
                parts = line.split()
                assert len(parts) == 5 and parts[0].isdigit()
                assert all(len(p.split(".")[1]) == 6 for p in parts[1:])
            lab = _labels(built / "labels" / split / f"{i:06d}.txt")
            assert 2 <= len(lab) <= 6
            assert set(lab[:, 0].astype(int)) <= set(range(len(CLASSES)))
            xywh = lab[:, 1:]
            assert (xywh > 0).all() and (xywh <= 1).all()
            assert (xywh[:, :2] - xywh[:, 2:] / 2 >= -1e-6).all() and (xywh[:, :2] + xywh[:, 2:] / 2 <= 1 + 1e-6).all()

            # re-render the same objects on black: labels are exactly the pasted pixels' tight boxes
            r = render_image(0, split, i, background=False, **GEOM)
            assert r.image.shape == img.shape
            boxes = _to_pixels(lab, w, h)
            np.testing.assert_array_equal(boxes, r.boxes)
            np.testing.assert_array_equal(lab[:, 0].astype(int), r.classes)
            ink = r.image.max(axis=2) > 0
            inside = np.zeros_like(ink)
            for x0, y0, x1, y1 in boxes:
                inside[y0:y1, x0:x1] = True
                crop = ink[y0:y1, x0:x1]
                assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()  # tight
            assert not (ink & ~inside).any()  # nothing pasted outside the boxes
            n_obj += len(lab)
    assert n_obj >= 2 * 12


def test_single_object_box_is_tight():
    """One object alone on black: its box is the bounding box of all non-black pixels."""
    for i in range(5):
        r = render_image(3, "train", i, classes=CLASSES, objects=(1, 1), background=False)
        assert len(r.boxes) == 1
        ys, xs = np.nonzero(r.image.max(axis=2))
        assert r.boxes[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        long_side = max(r.boxes[0, 2] - r.boxes[0, 0], r.boxes[0, 3] - r.boxes[0, 1])
        assert 10 <= long_side <= 100
        # the background version has the same boxes and classes
        rb = render_image(3, "train", i, classes=CLASSES, objects=(1, 1))
        np.testing.assert_array_equal(rb.boxes, r.boxes)
        np.testing.assert_array_equal(rb.items, r.items)


def test_objects_do_not_overlap_much(built):
    for split, n in (("train", 8), ("val", 4)):
        for i in range(n):
            b = render_image(0, split, i, **GEOM).boxes.astype(float)
            for j in range(len(b)):
                for k in range(j):
                    ix = max(0.0, min(b[j, 2], b[k, 2]) - max(b[j, 0], b[k, 0]))
                    iy = max(0.0, min(b[j, 3], b[k, 3]) - max(b[j, 1], b[k, 1]))
                    inter = ix * iy
                    union = np.prod(b[j, 2:] - b[j, :2]) + np.prod(b[k, 2:] - b[k, :2]) - inter
                    assert inter / union <= 0.3


# ----------------------------------------------------------------------------- sources, determinism
def test_train_val_item_sources_disjoint():
    bank = load_items()
    used = {"train": set(), "val": set()}
    for split, code in (("train", 0), ("val", 1)):
        for i in range(12):
            r = render_image(0, split, i, **GEOM)
            assert (bank.split[r.items] == code).all()
            used[split] |= {(int(bank.split[x]), int(bank.source_index[x])) for x in r.items}
    assert used["train"] and used["val"] and not used["train"] & used["val"]


def test_deterministic(built, tmp_path):
    again = build_detection_set(tmp_path / "again", seed=0, **SMALL)
    a, b = _files(built), _files(again)
    assert a.keys() == b.keys()
    for k in a:
        if k == "data.yaml":  # differs only by the absolute path
            assert a[k].replace(str(built).encode(), b"") == b[k].replace(str(again).encode(), b"")
        else:
            assert a[k] == b[k], k
    other = _files(build_detection_set(tmp_path / "other", seed=1, **SMALL))
    assert other.keys() == a.keys()
    assert any(other[k] != a[k] for k in a if k.startswith("images/"))
    assert any(other[k] != a[k] for k in a if k.startswith("labels/"))


def test_existing_out_dir_is_left_untouched(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="ds"):
        build_detection_set(out, seed=0, **SMALL)
    assert _files(out) == {"keep.txt": b"mine"}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileExistsError):
        build_detection_set(empty, seed=0, **SMALL)
    assert list(empty.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "empty"]  # no temp leftovers


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown class"):
        build_detection_set(tmp_path / "x", classes=["t_shirt", "unicorn"], n_train=1, n_val=1)
    with pytest.raises(ValueError):
        build_detection_set(tmp_path / "x", classes=CLASSES, n_train=1, n_val=1, objects=(3, 2))
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- ensure_dataset / engine YAML
def _synth_yaml(tmp_path: Path, **extra) -> Path:
    cfg = {
        "path": "mini",
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(CLASSES)),
        SYNTH_KEY: {"classes": CLASSES, "n_train": 4, "n_val": 2, "seed": 0},
        **extra,
    }
    p = tmp_path / "cfg" / "mini.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def test_ensure_dataset_builds_missing_synth(tmp_path):
    y = _synth_yaml(tmp_path)
    root = y.parent / "mini"  # relative to the YAML's folder, not the cwd
    assert not root.exists()
    data = ensure_dataset(y)
    assert data["path"] == str(root.resolve()) and Path(data["path"]).is_absolute()
    assert len(list((root / "images" / "train").glob("*.jpg"))) == 4
    assert len(list((root / "labels" / "val").glob("*.txt"))) == 2
    assert data["names"] == dict(enumerate(CLASSES))
    before = _files(root)
    stamp = (root / "images" / "train" / "000000.jpg").stat().st_mtime_ns
    assert ensure_dataset(str(y))["path"] == data["path"]  # second call: no rebuild
    assert _files(root) == before and (root / "images" / "train" / "000000.jpg").stat().st_mtime_ns == stamp


def test_ensure_dataset_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        ensure_dataset(missing)

    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"path": "absent", "train": "images/train", "val": "images/val", "names": ["a"]}))
    with pytest.raises(FileNotFoundError) as e:
        ensure_dataset(plain)
    msg = str(e.value)
    assert "plain.yaml" in msg and str(tmp_path / "absent") in msg and "\n" not in msg

    for key in ("train", "val", "names"):
        cfg = {"path": ".", "train": "images/train", "val": "images/val", "names": ["a"]}
        del cfg[key]
        bad = tmp_path / f"no_{key}.yaml"
        bad.write_text(yaml.safe_dump(cfg))
        with pytest.raises(ValueError, match=rf"no_{key}\.yaml.*'{key}'"):
            ensure_dataset(bad)

    y = _synth_yaml(tmp_path, names=["t_shirt", "bag"])  # names do not match lwdet_synth.classes
    with pytest.raises(ValueError, match="classes"):
        ensure_dataset(y)
    assert not (y.parent / "mini").exists()


def test_write_engine_yaml(tmp_path):
    y = _synth_yaml(tmp_path)
    user_yaml = y.read_bytes()
    out = write_engine_yaml(y, tmp_path / "run" / "data.yaml")  # builds the dataset on the way
    assert out == tmp_path / "run" / "data.yaml"
    data = yaml.safe_load(out.read_text())
    assert Path(data["path"]).is_absolute() and data["path"] == str((y.parent / "mini").resolve())
    assert SYNTH_KEY not in data and data["names"] == dict(enumerate(CLASSES))
    assert y.read_bytes() == user_yaml  # user's YAML untouched
    root = Path(data["path"])
    snapshot = _files(root)
    write_engine_yaml(y, tmp_path / "run2.yaml")
    assert _files(root) == snapshot  # nothing written into the dataset folder
    with pytest.raises(ValueError, match="inside the dataset folder"):
        write_engine_yaml(y, root / "engine.yaml")
    assert not (root / "engine.yaml").exists()

    from ultralytics.data.utils import check_det_dataset

    checked = check_det_dataset(str(out))
    assert checked["nc"] == len(CLASSES)
    assert Path(checked["train"]) == root / "images" / "train" and Path(checked["val"]).is_dir()


def test_default_data_yaml():
    assert DEFAULT_DATA.is_file() and DEFAULT_DATA.name == "fmnist-det.yaml"
    cfg = yaml.safe_load(DEFAULT_DATA.read_text())
    assert cfg["path"] == "fmnist-det" and cfg["train"] == "images/train" and cfg["val"] == "images/val"
    assert list(cfg["names"].values()) == CLASSES == cfg[SYNTH_KEY]["classes"]
    assert cfg[SYNTH_KEY]["n_train"] == 384 and cfg[SYNTH_KEY]["n_val"] == 96 and cfg[SYNTH_KEY]["seed"] == 0
    # the generator accepts the section as is (checked without building 480 images)
    render_image(
        cfg[SYNTH_KEY]["seed"],
        "val",
        0,
        **{k: v for k, v in cfg[SYNTH_KEY].items() if k not in ("n_train", "n_val", "seed")},
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        ("download: bash get_data.sh\n", "key 'download' is refused: lwdet never runs a data YAML's download script"),
        ("download: |\n  import os; os.system('rm -rf ~')\n", "key 'download' is refused"),
        ("nmes: [a]\n", "unknown key 'nmes'; did you mean 'names'?"),
        ("nc: 3\n", "'nc' is 3 but 'names' lists 2 classes"),
    ],
)
def test_data_yaml_is_data_not_code(tmp_path, extra, message):
    from lwdet.data.check import check_dataset

    for sub in ("images/train", "images/val"):
        (tmp_path / sub).mkdir(parents=True)
    path = tmp_path / "data.yaml"
    path.write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a, b]\n" + extra)
    for fn in (ensure_dataset, check_dataset):
        with pytest.raises(ValueError, match=re.escape(message)):
            fn(path)
