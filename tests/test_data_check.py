"""Tests for lwdet.data.check and `python -m lwdet.data check`: a corpus of bad input, each problem found, nothing touched."""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from lwdet.data import DEFAULT_DATA, ensure_dataset
from lwdet.data.__main__ import main
from lwdet.data.check import (
    IMG_FORMATS,
    KINDS,
    check_dataset,
    format_report,
    good_samples,
    label_path_for,
    write_good_yaml,
)

NAMES = ["a", "b", "c", "d", "e"]
OK = "0 0.5 0.5 0.2 0.3\n"

# image -> label text (None: no label file); special images are made in _corpus
CORPUS = {
    "good.jpg": OK + "3 0.25 0.25 0.1 0.1\n",
    "truncated.jpg": OK,
    "zero.jpg": OK,
    "png_as.jpg": OK,
    "cls99.jpg": OK + "99 0.5 0.5 0.1 0.1\n",
    "coord.jpg": "0 0.5 1.7 0.1 0.1\n",
    "negw.jpg": "1 0.5 0.5 -0.1 0.2\n",
    "empty.jpg": "",
    "nonnum.jpg": OK + "2 0.5 abc 0.1 0.1\n2 0.5 0.5 0.1\n",
    "dup.jpg": "1 0.40 0.40 0.20 0.20\n1 0.401 0.40 0.20 0.20\n2 0.40 0.40 0.20 0.20\n",
    "exif.jpg": OK,
    "nolabel.jpg": None,
    "tinybox.jpg": "0 0.5 0.5 0.001 0.2\n",
}
# (kind, file relative to the dataset, line, words in the message)
EXPECTED = [
    ("corrupt_image", "images/train/truncated.jpg", None, "truncated"),
    ("unreadable_image", "images/train/zero.jpg", None, "zero-byte"),
    ("format_mismatch", "images/train/png_as.jpg", None, "PNG data in a .jpg file"),
    ("class_out_of_range", "labels/train/cls99.txt", 2, "class 99 is not in names (0..4)"),
    ("out_of_bounds", "labels/train/coord.txt", 1, "cy=1.7 outside [0, 1]"),
    ("negative_size", "labels/train/negw.txt", 1, "negative width -0.1"),
    ("empty_label", "labels/train/empty.txt", None, "negative"),
    ("non_numeric", "labels/train/nonnum.txt", 2, "cy 'abc' is not a number"),
    ("bad_columns", "labels/train/nonnum.txt", 3, "expected 5 columns"),
    ("duplicate_box", "labels/train/dup.txt", 2, "line 1"),
    ("exif_rotated", "images/train/exif.jpg", None, "orientation 6"),
    ("missing_label", "images/train/nolabel.jpg", None, "no label file"),
    ("orphan_label", "labels/train/orphan.txt", None, "without an image"),
    ("degenerate_box", "labels/train/tinybox.txt", 1, "under 1 px"),
]
BAD = {"truncated.jpg", "zero.jpg", "cls99.jpg", "coord.jpg", "negw.jpg", "nonnum.jpg", "tinybox.jpg"}


@pytest.fixture(autouse=True)
def _isolated_check_cache(tmp_path_factory, monkeypatch):
    """The check's image cache goes to a per-session temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("LWDET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lwdet-cache"))


def _noise(h: int, w: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _dataset(root: Path, labels: bool = True) -> Path:
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        if labels:
            (root / "labels" / split).mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "val" / "v.jpg"), _noise(120, 160, 99))
    if labels:
        (root / "labels" / "val" / "v.txt").write_text(OK)
    y = root / "data.yaml"
    y.write_text(
        yaml.safe_dump(
            {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(enumerate(NAMES))}
        )
    )
    return y


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad") / "ds"
    y = _dataset(root)
    img_dir, lab_dir = root / "images" / "train", root / "labels" / "train"
    for i, (name, label) in enumerate(CORPUS.items()):
        p = img_dir / name
        if name == "truncated.jpg":
            data = cv2.imencode(".jpg", _noise(150, 200, i))[1].tobytes()
            p.write_bytes(data[: len(data) // 2])
        elif name == "zero.jpg":
            p.write_bytes(b"")
        elif name == "png_as.jpg":
            p.write_bytes(cv2.imencode(".png", _noise(150, 200, i))[1].tobytes())
        elif name == "exif.jpg":
            exif = Image.Exif()
            exif[274] = 6  # stored 200x150, shown 150x200
            Image.fromarray(_noise(150, 200, i)).save(p, exif=exif)
        else:
            cv2.imwrite(str(p), _noise(150, 200, i))
        if label is not None:
            (lab_dir / f"{Path(name).stem}.txt").write_text(label)
    (lab_dir / "orphan.txt").write_text(OK)

    no_labels = _dataset(tmp_path_factory.mktemp("nolabels") / "ds", labels=False)
    cv2.imwrite(str(no_labels.parent / "images" / "train" / "t.jpg"), _noise(120, 160, 7))
    return y, no_labels


def test_bad_corpus(corpus):
    y, _ = corpus
    root = y.parent
    before = _snapshot(root)
    report = check_dataset(y)
    assert _snapshot(root) == before  # nothing modified, moved, deleted or cached

    found = {(i.kind, str(Path(i.file).relative_to(root)), i.line): i for i in report.issues}
    for kind, file, line, words in EXPECTED:
        issue = found.get((kind, file, line))
        assert issue is not None, (kind, file, line, [str(i) for i in report.issues])
        assert words in issue.message, (kind, issue.message)
        assert issue.severity == KINDS[kind]
        assert issue.file == str(root / file)
    per_file = {k: n for k, n in report.counts().items() if k != "class_missing_in_split"}  # dataset-wide: tested below
    assert per_file == dict(Counter(k for k, *_ in EXPECTED)), report.counts()  # nothing else
    assert {i.severity for i in report.issues if i.kind == "empty_label"} == {"info"}  # a negative, not an error
    assert [i.kind for i in report.issues if i.image and i.image.endswith("dup.jpg")] == [
        "duplicate_box"
    ]  # class 2 differs

    assert not report.ok and len(report.errors) == 8 and len(report.warnings) == 5 + 3  # + b, c, d: none in val
    t = report.totals
    assert (t["images"], t["label_files"], t["negatives"], t["missing_labels"], t["orphan_labels"]) == (14, 13, 1, 1, 1)
    assert t["errors"] == 8 and t["warnings"] == 8

    good = {Path(p).name for p in good_samples(report)}
    assert good == (set(CORPUS) - BAD) | {"v.jpg"}
    assert {Path(p).name for p in good_samples(report, "val")} == {"v.jpg"}
    stricter = {Path(p).name for p in good_samples(report, also_bad={"exif_rotated", "duplicate_box"})}
    assert stricter == good - {"exif.jpg", "dup.jpg"}
    with pytest.raises(ValueError, match="unknown issue kind"):
        good_samples(report, also_bad={"exif"})

    text = format_report(report, max_issues=50)
    assert "labels/train/cls99.txt:2: class 99 is not in names" in text
    assert (
        "images/train/zero.jpg: zero-byte file" in text
        and "FAILED (8 errors): 7 of 14 images have no errors of their own" in text
    )
    assert text.index("error") < text.index("warning")  # errors listed first


def test_missing_labels_folder(corpus):
    _, y = corpus
    report = check_dataset(y)
    dirs = [i for i in report.issues if i.kind == "missing_labels_dir"]
    assert sorted(i.where(report.root) for i in dirs) == ["labels/train", "labels/val"]  # no line: the folder
    assert all(i.severity == "error" for i in dirs)
    assert not any(i.kind == "missing_label" for i in report.issues)  # one error per folder, not one per image
    assert main(["check", str(y)]) == 1


def test_cli(corpus, tmp_path, capsys):
    y, _ = corpus
    root = y.parent
    before = _snapshot(root)
    out = tmp_path / "report.json"
    assert main(["check", str(y), "--json", str(out), "--max-issues", "5"]) == 1
    text = capsys.readouterr().out
    assert "first 5 of 17 issues" in text and "class_out_of_range" in text
    rep = json.loads(out.read_text())
    assert rep["ok"] is False and rep["counts"]["duplicate_box"] == 1 and len(rep["issues"]) == 17
    assert rep["class_counts"]["val"] == {"a": 1, "b": 0, "c": 0, "d": 0, "e": 0} and rep["imgsz"] == 640
    assert any(i["file"].endswith("cls99.txt") and i["line"] == 2 for i in rep["issues"])
    assert len(rep["good"]["train"]) == 6

    assert main(["check", str(y), "--json", str(root / "r.json")]) == 2  # never writes into the dataset
    assert "refusing to write inside the dataset folder" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "absent.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: dataset YAML not found")
    with pytest.raises(SystemExit) as e:
        main(["check"])
    assert e.value.code == 2
    r = subprocess.run(
        [sys.executable, "-m", "lwdet.data", "check", str(y)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1 and "FAILED" in r.stdout
    assert _snapshot(root) == before


def test_warnings_alone_exit_zero(tmp_path):
    root = tmp_path / "ds"
    y = _dataset(root)
    cv2.imwrite(str(root / "images" / "train" / "t.jpg"), _noise(120, 160, 1))  # no label: a warning
    cv2.imwrite(str(root / "images" / "train" / "u.jpg"), _noise(120, 160, 2))
    (root / "labels" / "train" / "u.txt").write_text("\n")  # empty: a negative
    (root / "labels" / "train" / "x.txt").write_text(OK)  # no image: a warning
    report = check_dataset(y)
    assert report.ok and {i.kind for i in report.issues} == {
        "missing_label",
        "orphan_label",
        "empty_label",
        "class_missing_in_split",
    }
    assert main(["check", str(y)]) == 0


def test_write_good_yaml(corpus, tmp_path):
    y, _ = corpus
    report = check_dataset(y)
    with pytest.raises(ValueError, match="inside the dataset folder"):
        write_good_yaml(report, y.parent / "good")
    out = write_good_yaml(report, tmp_path / "good")
    data = ensure_dataset(out)  # a valid data YAML: lists of absolute image paths, labels found by the engine's rule
    listed = (tmp_path / "good" / "train.txt").read_text().splitlines()
    assert sorted(Path(p).name for p in listed) == sorted(set(CORPUS) - BAD)
    assert all(Path(p).is_absolute() for p in listed) and data["names"] == dict(enumerate(NAMES))
    again = check_dataset(out)
    assert again.ok and not {i.kind for i in again.errors}
    with pytest.raises(FileExistsError):
        write_good_yaml(report, tmp_path / "good")


def test_mirrors_engine():
    from ultralytics.data.utils import IMG_FORMATS as ENGINE_FORMATS
    from ultralytics.data.utils import img2label_paths

    assert IMG_FORMATS == set(ENGINE_FORMATS)
    paths = ["/d/images/train/a.jpg", "/d/images/x/images/b.PNG", "/d/pics/c.jpeg", "/images/d.e.jpg"]
    assert [str(label_path_for(p)) for p in paths] == img2label_paths(paths)


def test_default_dataset_is_clean():
    ensure_dataset(DEFAULT_DATA)
    report = check_dataset(DEFAULT_DATA)
    assert report.ok and not report.warnings, format_report(report)
    assert report.totals["images"] == 480 and report.totals["label_files"] == 480
    assert len(good_samples(report)) == 480


# ----------------------------------------------------------------------------- per-class counts, dataset-wide warnings
def test_class_counts_per_split_and_missing_class_warning(tmp_path):
    root = tmp_path / "ds"
    y = _dataset(root)  # val: one box of class a
    cv2.imwrite(str(root / "images" / "train" / "t.jpg"), _noise(120, 160, 1))
    (root / "labels" / "train" / "t.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n1 0.7 0.7 0.1 0.1\n")
    report = check_dataset(y)
    assert report.class_counts == {
        "train": {"a": 1, "b": 2, "c": 0, "d": 0, "e": 0},
        "val": {"a": 1, "b": 0, "c": 0, "d": 0, "e": 0},
    }
    missing = [i for i in report.issues if i.kind == "class_missing_in_split"]
    assert [(i.severity, i.file, i.message) for i in missing] == [
        (
            "warning",
            str(y),
            "class 'b' has boxes in one split and none in val (2 in train): its accuracy cannot be measured",
        )
    ]
    text = format_report(report)
    assert "  class       train      val\n  a               1        1\n  b               2        0\n" in text

    (root / "labels" / "val" / "v.txt").write_text("3 0.5 0.5 0.2 0.2\n")  # class d only in val: not learnable
    msgs = sorted(i.message for i in check_dataset(y).issues if i.kind == "class_missing_in_split")
    assert msgs == [
        "class 'a' has boxes in one split and none in val (1 in train): its accuracy cannot be measured",
        "class 'b' has boxes in one split and none in val (2 in train): its accuracy cannot be measured",
        "class 'd' has boxes in one split and none in train (1 in val): the model cannot learn it",
    ]


def test_tiny_objects_warning(tmp_path):
    root = tmp_path / "ds"
    y = _dataset(root)
    cv2.imwrite(str(root / "images" / "train" / "big.jpg"), np.full((1200, 1600, 3), 90, np.uint8))
    # an 8 x 40 px box and a 100 x 100 px one in a 1600 x 1200 image
    (root / "labels" / "train" / "big.txt").write_text(
        f"0 0.5 0.5 {8 / 1600:.6f} {40 / 1200:.6f}\n1 0.2 0.2 {100 / 1600:.6f} {100 / 1200:.6f}\n"
    )
    tiny = [i for i in check_dataset(y, imgsz=320).issues if i.kind == "tiny_objects"]
    # at 320 the image shrinks 5x: 8 px -> 1.6 px; 4 px needs 320 * 4 / 1.6 = 800; a 640 px tile keeps 8 * 320 / 640 = 4 px
    assert [(i.severity, i.file, i.message) for i in tiny] == [
        (
            "warning",
            str(y),
            "1 of 2 boxes in train will be under 4 px at --imgsz 320 (smallest: 1.6 px, a 8 px box in a "
            "1600x1200 image); --imgsz 800 would keep them all at >= 4 px; or tile the source at import (--tile 640) and "
            "train at --imgsz 320",
        )
    ]
    assert not [i for i in check_dataset(y, imgsz=800).issues if i.kind == "tiny_objects"]
    assert not [i for i in check_dataset(y, imgsz=None).issues if i.kind == "tiny_objects"]
    assert main(["check", str(y), "--imgsz", "320"]) == 0  # a warning, not an error


# ----------------------------------------------------------------------------- the per-image cache
def test_cache_skips_unchanged_images_and_rechecks_modified(tmp_path, monkeypatch):
    from lwdet.data.check import scan

    root = tmp_path / "ds"
    y = _dataset(root)
    for i in range(3):
        cv2.imwrite(str(root / "images" / "train" / f"t{i}.jpg"), _noise(120, 160, i))
        (root / "labels" / "train" / f"t{i}.txt").write_text(OK)
    decoded = []
    real = scan.scan_image
    monkeypatch.setattr(scan, "scan_image", lambda p: decoded.append(Path(p).name) or real(p))
    parsed = []
    real_label = scan.check_label
    monkeypatch.setattr(scan, "check_label", lambda p, *a: parsed.append(Path(p).name) or real_label(p, *a))
    cache = tmp_path / "cache"
    before = _snapshot(root)

    first = check_dataset(y, cache=cache, workers=2)
    assert sorted(decoded) == ["t0.jpg", "t1.jpg", "t2.jpg", "v.jpg"] and first.ok
    assert [p.name for p in cache.iterdir()] == ["images-v1.sqlite"]
    assert len(parsed) == 4
    decoded.clear()
    parsed.clear()
    second = check_dataset(y, cache=cache)
    assert decoded == parsed == [] and second.to_dict() == first.to_dict()  # nothing read again, the same report
    (root / "labels" / "train" / "t2.txt").write_text("0 0.5 0.5 0.2 0.3\n9 0.5 0.5 0.1 0.1\n")  # an edited label

    bad = root / "images" / "train" / "t1.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated: another size and mtime
    third = check_dataset(y, cache=cache)
    assert decoded == ["t1.jpg"] and sorted(parsed) == ["t1.txt", "t2.txt"]  # t1.txt: its image's size is unknown now
    assert sorted((i.kind, Path(i.file).name) for i in third.errors) == [
        ("class_out_of_range", "t2.txt"),
        ("corrupt_image", "t1.jpg"),
    ]
    edited = ("images/train/t1.jpg", "labels/train/t2.txt")
    assert _snapshot(root) == {**before, **{k: _snapshot(root)[k] for k in edited}}  # only my edits

    decoded.clear()
    check_dataset(y, cache=False)
    assert len(decoded) == 4
    with pytest.raises(ValueError, match="refusing to write inside the dataset folder"):
        check_dataset(y, cache=root / "cache")


def test_cache_default_folder_and_cli_flags(tmp_path, monkeypatch, capsys):
    from lwdet.data.check import default_cache_dir

    monkeypatch.setenv("LWDET_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "check"
    monkeypatch.delenv("LWDET_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "lwdet" / "check"
    monkeypatch.setenv("LWDET_CACHE_DIR", str(tmp_path / "c"))
    y = _dataset(tmp_path / "ds")
    cv2.imwrite(str(tmp_path / "ds" / "images" / "train" / "t.jpg"), _noise(120, 160, 1))
    (tmp_path / "ds" / "labels" / "train" / "t.txt").write_text(OK)
    assert main(["check", str(y), "--no-cache", "--workers", "1"]) == 0
    assert not (tmp_path / "c").exists()
    assert main(["check", str(y)]) == 0
    assert (tmp_path / "c" / "check" / "images-v1.sqlite").is_file()
