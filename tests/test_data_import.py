"""Tests for lwdet.data.importers / tiling / the import CLI: VOC, COCO and CSV round trips on generated data."""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from lwdet.data import ensure_dataset
from lwdet.data.__main__ import main
from lwdet.data.check import check_dataset
from lwdet.data.importers import apply_difficult, import_dataset, read_coco, read_csv, read_voc, split_records
from lwdet.data.tiling import TileOptions, tile_boxes, tile_offsets

# name -> (width, height, [(label, x0, y0, x1, y1), ...]); "neg" has no objects
TRUTH = {
    "a.jpg": (160, 120, [("cat", 10.25, 12.5, 70.75, 90.0), ("dog", 80.0, 20.0, 150.5, 110.0)]),
    "b.jpg": (200, 150, [("bird", 0.0, 0.0, 40.0, 30.0), ("cat", 120.0, 60.0, 200.0, 150.0)]),
    "c.png": (128, 128, [("dog", 30.0, 30.0, 98.0, 98.0)]),
    "d.jpg": (
        96,
        160,
        [("bird", 5.5, 100.0, 90.0, 155.0), ("bird", 20.0, 10.0, 60.0, 50.0), ("cat", 1.0, 1.0, 95.0, 159.0)],
    ),
    "neg.jpg": (144, 112, []),
    # tiled at 640/64: x offsets 0 576 1152 1728 1760, y offsets 0 576 960
    "aerial.jpg": (
        2400,
        1600,
        [
            ("cat", 100.0, 100.0, 200.0, 180.0),  # inside tile (0, 0) only
            ("dog", 600.0, 300.0, 700.0, 400.0),  # 40% in tile x0=0 (dropped there), whole in x0=576
            ("bird", 1100.0, 500.0, 1300.0, 700.0),  # split over 4 tiles, >= 50% only in (1152, 0)
            ("dog", 2300.0, 1500.0, 2390.0, 1590.0),  # 76% in (1728, 960), whole in (1760, 960)
            ("cat", 50.0, 1000.0, 150.0, 1100.0),  # whole in (0, 576) and (0, 960)
        ],
    ),
}
SMALL = [n for n in TRUTH if n != "aerial.jpg"]
TILE_X, TILE_Y = [0, 576, 1152, 1728, 1760], [0, 576, 960]


@pytest.fixture(autouse=True)
def _isolated_check_cache(tmp_path_factory, monkeypatch):
    """The check's image cache goes to a per-session temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("LWDET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lwdet-cache"))


def _image(w: int, h: int, boxes, seed: int) -> np.ndarray:
    """Smooth background (compresses well even at 2400 px) with the boxes drawn in."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    c = rng.uniform(40, 215, 3)
    img = np.stack([c[0] + 30 * np.sin(xx / 37.0), c[1] + 30 * np.cos(yy / 23.0), c[2] + 0 * xx], -1)
    img = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    for _, x0, y0, x1, y1 in boxes:
        cv2.rectangle(
            img, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), tuple(int(v) for v in rng.integers(0, 256, 3)), -1
        )
    return img


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _labels(path: Path) -> np.ndarray:
    return np.array([line.split() for line in path.read_text().splitlines()], np.float64).reshape(-1, 5)


def _expected_norm(boxes, names: list[str], w: int, h: int, dx: float = 0, dy: float = 0) -> np.ndarray:
    rows = [
        [names.index(lab), ((x0 + x1) / 2 - dx) / w, ((y0 + y1) / 2 - dy) / h, (x1 - x0) / w, (y1 - y0) / h]
        for lab, x0, y0, x1, y1 in boxes
    ]
    return np.array(rows, np.float64).reshape(-1, 5)


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])] if len(a) else a


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    """One corpus written three ways: VOC (Annotations + JPEGImages), COCO JSON, CSV."""
    root = tmp_path_factory.mktemp("src")
    pics = root / "pics"
    pics.mkdir()
    for i, (name, (w, h, boxes)) in enumerate(TRUTH.items()):
        cv2.imwrite(str(pics / name), _image(w, h, boxes, i))

    voc = root / "voc"
    (voc / "Annotations").mkdir(parents=True)
    shutil.copytree(pics, voc / "JPEGImages")
    for name, (w, h, boxes) in TRUTH.items():
        objs = "".join(
            f"<object><name>{lab}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for lab, x0, y0, x1, y1 in boxes
        )
        xml = f"<annotation><folder>JPEGImages</folder><filename>{name}</filename><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>"
        (voc / "Annotations" / f"{Path(name).stem}.xml").write_text(xml)

    # COCO: categories deliberately not in sorted order; one crowd annotation that must be skipped
    cats = [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 5, "name": "bird"}]
    cid = {c["name"]: c["id"] for c in cats}
    images, anns = [], []
    for i, (name, (w, h, boxes)) in enumerate(TRUTH.items()):
        images.append({"id": 100 + i, "file_name": name, "width": w, "height": h})
        for lab, x0, y0, x1, y1 in boxes:
            anns.append(
                {
                    "id": len(anns),
                    "image_id": 100 + i,
                    "category_id": cid[lab],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                }
            )
    anns.append({"id": len(anns), "image_id": 100, "category_id": 7, "bbox": [0, 0, 50, 50], "iscrowd": 1})
    (root / "coco.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))

    rows = ["image_path,xmin,ymin,xmax,ymax,label"]
    for name, (_, _, boxes) in TRUTH.items():
        rows += [f"pics/{name},{x0},{y0},{x1},{y1},{lab}" for lab, x0, y0, x1, y1 in boxes] or [f"pics/{name},,,,,"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _import(fmt: str, src: Path, dst: Path, **kw):
    where = {"voc": src / "voc", "coco": src / "coco.json", "csv": src / "labels.csv"}[fmt]
    if fmt == "coco":
        kw.setdefault("images", src / "pics")
    return import_dataset(fmt, where, dst, **kw)


# ----------------------------------------------------------------------------- readers
def test_readers_agree(src):
    voc, coco, csv_ = read_voc(src / "voc"), read_coco(src / "coco.json", src / "pics"), read_csv(src / "labels.csv")
    assert voc.names == csv_.names == ["bird", "cat", "dog"]  # sorted
    assert coco.names == ["dog", "cat", "bird"]  # the COCO category order
    crowd = {r.name: r.is_difficult().tolist() for r in coco.records if r.difficult}
    assert crowd == {"a.jpg": [False, False, True]}  # the iscrowd annotation is read, flagged difficult
    coco = apply_difficult(coco, "drop")
    assert any("crowd" in n and ": 1" in n for n in coco.notes)
    for rs, prefix in ((voc, ""), (coco, ""), (csv_, "pics/")):
        by_name = {r.name: r for r in rs.records}
        assert sorted(by_name) == sorted(prefix + n for n in TRUTH)
        for name, (w, h, boxes) in TRUTH.items():
            r = by_name[prefix + name]
            assert (r.width, r.height) == (w, h)
            assert list(r.labels) == [b[0] for b in boxes]
            np.testing.assert_allclose(r.boxes, np.array([b[1:] for b in boxes]).reshape(-1, 4))


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["voc", "coco", "csv"])
def test_round_trip(src, tmp_path, fmt):
    before = _tree(src)
    dst = tmp_path / "yolo"
    s = _import(fmt, src, dst, split=(0.5, 0.5), seed=0)
    assert _tree(src) == before  # sources never modified
    assert not list(tmp_path.glob(".yolo.tmp-*"))
    data = yaml.safe_load((dst / "data.yaml").read_text())
    names = ["dog", "cat", "bird"] if fmt == "coco" else ["bird", "cat", "dog"]
    assert data["names"] == dict(enumerate(names)) and data["path"] == str(dst)
    assert ensure_dataset(dst / "data.yaml")["names"] == dict(enumerate(names))
    stem = (lambda n: f"pics__{Path(n).stem}") if fmt == "csv" else (lambda n: Path(n).stem)
    written = {}
    for split in ("train", "val"):
        for img in (dst / "images" / split).iterdir():
            written[img.stem] = img
    assert sorted(written) == sorted(stem(n) for n in TRUTH)
    assert sum(st["images"] for st in s.splits.values()) == len(TRUTH)
    for name, (w, h, boxes) in TRUTH.items():
        img = written[stem(name)]
        assert img.suffix == Path(name).suffix
        assert img.read_bytes() == (src / "pics" / name).read_bytes()  # copied, not re-encoded
        got = _labels(dst / "labels" / img.parent.name / f"{img.stem}.txt")
        want = _expected_norm(boxes, names, w, h)
        np.testing.assert_array_equal(got[:, 0], want[:, 0])
        np.testing.assert_allclose(got[:, 1:], want[:, 1:], atol=1.1e-6)  # 6 decimals
        xyxy = np.c_[
            got[:, 1] - got[:, 3] / 2, got[:, 2] - got[:, 4] / 2, got[:, 1] + got[:, 3] / 2, got[:, 2] + got[:, 4] / 2
        ]
        np.testing.assert_allclose(xyxy * [w, h, w, h], np.array([b[1:] for b in boxes]).reshape(-1, 4), atol=1e-2)
    report = check_dataset(dst / "data.yaml")
    assert report.ok and not report.warnings, [str(i) for i in report.issues]
    assert report.totals["negatives"] == 1  # neg.jpg


# ----------------------------------------------------------------------------- tiling
def test_tile_offsets():
    assert tile_offsets(2400, 640, 64) == TILE_X
    assert tile_offsets(1600, 640, 64) == TILE_Y
    assert tile_offsets(640, 640, 64) == [0] and tile_offsets(300, 640, 0) == [0]
    assert tile_offsets(1280, 640, 0) == [0, 640]
    for n in (641, 1000, 2401):
        offs = tile_offsets(n, 640, 100)
        assert offs[-1] + 640 == n and all(b - a <= 540 for a, b in zip(offs, offs[1:]))
    with pytest.raises(ValueError, match="overlap"):
        TileOptions(640, 640)
    with pytest.raises(ValueError, match="min_visible"):
        TileOptions(640, 64, min_visible=0)


def _tile_expectation(boxes, names, min_visible=0.5):
    """Brute force: (x0, y0) -> normalised rows of the boxes at least ``min_visible`` inside that 640 px tile."""
    out = {}
    for y0 in TILE_Y:
        for x0 in TILE_X:
            keep = []
            for lab, a, b, c, d in boxes:
                ca, cb, cc, cd = max(a, x0), max(b, y0), min(c, x0 + 640), min(d, y0 + 640)
                if cc > ca and cd > cb and (cc - ca) * (cd - cb) >= min_visible * (c - a) * (d - b):
                    keep.append((lab, ca, cb, cc, cd))
            out[(x0, y0)] = _expected_norm(keep, names, 640, 640, x0, y0)
    return out


@pytest.mark.parametrize("keep_empty", [False, True])
def test_tiling(src, tmp_path, keep_empty):
    before = _tree(src)
    val_list = tmp_path / "val.txt"
    val_list.write_text("# val images\nb.jpg\nc\n")  # by file name and by stem
    dst = tmp_path / "tiled"
    s = _import("voc", src, dst, val_list=val_list, tiling=TileOptions(640, 64, 0.5, keep_empty))
    assert _tree(src) == before
    assert sorted(p.name for p in (dst / "images" / "val").iterdir()) == ["b.jpg", "c.png"]
    names = ["bird", "cat", "dog"]
    w, h, boxes = TRUTH["aerial.jpg"]
    expect = _tile_expectation(boxes, names)
    train = dst / "images" / "train"
    tiles = sorted(p for p in train.iterdir() if p.name.startswith("aerial_"))
    offsets = {(int(p.stem.split("_x")[1].split("_y")[0]), int(p.stem.split("_y")[1])) for p in tiles}
    non_empty = {k for k, v in expect.items() if len(v)}
    assert offsets == (set(expect) if keep_empty else non_empty)
    assert len(non_empty) == 7 and len(expect) == 15
    # the bird box is cut over four tiles but kept only where >= 50% of it is visible
    assert [k for k, v in expect.items() if 0 in v[:, 0]] == [(1152, 0)]
    source = np.asarray(Image.open(src / "voc" / "JPEGImages" / "aerial.jpg").convert("RGB"), np.float32)
    for p in tiles:
        x0, y0 = (int(p.stem.split("_x")[1].split("_y")[0]), int(p.stem.split("_y")[1]))
        assert p.name == f"aerial_x{x0}_y{y0}.jpg"
        tile = np.asarray(Image.open(p).convert("RGB"), np.float32)
        assert tile.shape == (640, 640, 3)
        assert np.abs(tile - source[y0 : y0 + 640, x0 : x0 + 640]).mean() < 3  # the right crop
        got = _labels(train.parent.parent / "labels" / "train" / f"{p.stem}.txt")
        want = expect[(x0, y0)]
        assert got.shape == want.shape, p.name
        np.testing.assert_allclose(_sorted_rows(got), _sorted_rows(want), atol=1.1e-6)
    # images that fit in one tile are copied unchanged
    assert (train / "a.jpg").read_bytes() == (src / "pics" / "a.jpg").read_bytes()
    assert s.splits["train"]["source_images"] == 4 and s.splits["train"]["boxes_in_no_tile"] == 0
    assert s.splits["train"]["empty_tiles_dropped"] == (0 if keep_empty else 8)
    assert check_dataset(dst / "data.yaml").ok


def test_tile_boxes_lost_and_min_visible():
    box = np.array([[100.0, 0.0, 800.0, 100.0]])  # 700 px wide: at most 540/700 of it fits in a 640 px tile
    assert sum(len(t.index) for t in tile_boxes(1300, 640, box, TileOptions(640, 64, 0.95))) == 0  # lost
    tiles = tile_boxes(1300, 640, box, TileOptions(640, 64, 0.5))
    assert [(t.x0, t.x1, len(t.index)) for t in tiles] == [(0, 640, 1), (576, 1216, 0), (660, 1300, 0)]
    np.testing.assert_allclose(tiles[0].boxes, [[100, 0, 640, 100]])  # clipped to the tile
    half = tile_boxes(1280, 640, np.array([[540.0, 0.0, 740.0, 10.0]]), TileOptions(640, 0, 0.5))
    assert [len(t.index) for t in half] == [1, 1]  # exactly half inside counts as 0.5 visible


# ----------------------------------------------------------------------------- splits, refusals, errors
def test_split_deterministic(src, tmp_path):
    pics = tmp_path / "many"
    pics.mkdir()
    rows = []
    for i in range(12):
        cv2.imwrite(str(pics / f"{i:02d}.jpg"), _image(40, 40, [], i))
        rows.append(f"many/{i:02d}.jpg,5,5,30,30,{'ab'[i % 2]}")
    (tmp_path / "many.csv").write_text("\n".join(rows))  # no header
    rs = read_csv(tmp_path / "many.csv")

    def val_names(seed):
        return [r.name for r in split_records(rs.records, (0.8, 0.2), seed)["val"]]

    assert val_names(0) == val_names(0) and len(val_names(0)) == 2
    assert any(val_names(s) != val_names(0) for s in (1, 2, 3))
    three = split_records(rs.records, (0.7, 0.2, 0.1), 0)
    assert [len(three[k]) for k in ("train", "val", "test")] == [9, 2, 1]
    assert sorted(r.name for v in three.values() for r in v) == sorted(r.name for r in rs.records)
    a = import_dataset("csv", tmp_path / "many.csv", tmp_path / "a", seed=5)
    b = import_dataset("csv", tmp_path / "many.csv", tmp_path / "b", seed=5)
    assert _tree(a.dst).keys() == _tree(b.dst).keys()
    with pytest.raises(ValueError, match="summing to 1"):
        split_records(rs.records, (0.8, 0.3))


def test_existing_dst_is_refused_and_untouched(src, tmp_path, capsys):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="out"):
        _import("csv", src, dst)
    assert main(["import", "--format", "voc", str(src / "voc"), str(dst)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: destination already exists") and err.count("\n") == 1
    assert _tree(dst) == {"mine.txt": hashlib.sha256(b"keep").hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp leftovers


def test_cli_import(src, tmp_path, capsys):
    before = _tree(src)
    dst = tmp_path / "cli"
    argv = [
        "import",
        "--format",
        "coco",
        str(src / "coco.json"),
        str(dst),
        "--images",
        str(src / "pics"),
        "--split",
        "0.6,0.4",
        "--seed",
        "3",
        "--tile",
        "640",
        "--overlap",
        "64",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "classes 3: dog, cat, bird" in out and str(dst / "data.yaml") in out and "crowd" in out
    assert _tree(src) == before
    assert check_dataset(dst / "data.yaml").ok


def test_cli_bad_arguments(src, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["import", "--format", "csv", str(src / "labels.csv"), str(tmp_path / "x"), "--images", str(src)])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["import", "--format", "csv", str(src / "labels.csv"), str(tmp_path / "x"), "--overlap", "10"])
    assert e.value.code == 2
    assert (
        main(
            [
                "import",
                "--format",
                "csv",
                str(src / "labels.csv"),
                str(tmp_path / "x"),
                "--tile",
                "640",
                "--overlap",
                "700",
            ]
        )
        == 2
    )
    assert "overlap" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_clear_errors(src, tmp_path):
    shutil.copy(src / "pics" / "a.jpg", tmp_path / "a.jpg")
    ok_xml = "<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object></annotation>"

    def voc(xml: str):
        d = tmp_path / "voc"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        shutil.copy(tmp_path / "a.jpg", d / "a.jpg")
        (d / "a.xml").write_text(xml)  # XML beside its image
        return d

    assert read_voc(voc(ok_xml)).records[0].labels == ("cat",)
    with pytest.raises(ValueError) as e:
        read_voc(voc(ok_xml.replace("<ymin>2</ymin>", "<ymin>abc</ymin>")))
    assert "a.xml" in _one_line(e) and "<object[1]/bndbox/ymin>" in str(e.value) and "'abc'" in str(e.value)
    with pytest.raises(ValueError, match=r"a\.xml: not valid XML \(.*line 1"):
        read_voc(voc(ok_xml[:-5]))
    with pytest.raises(ValueError, match=r"a\.xml: <object\[1\]/name> missing"):
        read_voc(voc(ok_xml.replace("<name>cat</name>", "")))
    with pytest.raises(ValueError, match=r"a\.xml: <object\[1\]>: inverted box \(xmax < xmin\)"):
        read_voc(voc(ok_xml.replace("<xmax>30</xmax>", "<xmax>0.5</xmax>")))
    with pytest.raises(ValueError, match=r"stated image size 640x480 does not match"):
        read_voc(voc(ok_xml.replace("</filename>", "</filename><size><width>640</width><height>480</height></size>")))
    with pytest.raises(FileNotFoundError, match=r"a\.xml: <filename> 'zz.jpg'"):
        d = voc(ok_xml.replace("a.jpg", "zz.jpg"))
        (d / "a.jpg").rename(d / "other.jpg")
        read_voc(d)

    csv_path = tmp_path / "l.csv"
    csv_path.write_text("image_path,xmin,ymin,xmax,ymax,label\na.jpg,1,2,30,40,cat\na.jpg,1,2,30,cat\n")
    with pytest.raises(ValueError) as e:
        read_csv(csv_path)
    assert _one_line(e) == f"{csv_path}:3: expected 6 columns (image_path,xmin,ymin,xmax,ymax,label), got 5"
    csv_path.write_text("a.jpg,1,2,30,40,cat\na.jpg,1,2,x3,40,cat\n")
    with pytest.raises(ValueError, match=rf"{csv_path}:2: xmax: 'x3' is not a number"):
        read_csv(csv_path)
    csv_path.write_text("a.jpg,1,2,30,40,cat\nmissing.jpg,1,2,30,40,cat\n")
    with pytest.raises(FileNotFoundError, match=rf"{csv_path}:2: image not found: .*missing.jpg"):
        read_csv(csv_path)
    csv_path.write_text("a.jpg,1,2,30,40,cat\na.jpg,500,2,530,40,cat\n")
    with pytest.raises(ValueError, match=rf"{csv_path}:2: box .* lies outside the 160x120 image"):
        read_csv(csv_path)
    # recoverable: clipped to the border, sub-pixel boxes dropped, both reported
    csv_path.write_text("a.jpg,1,2,170,40,cat\na.jpg,10,10,10.5,40,dog\n")
    rs = read_csv(csv_path)
    np.testing.assert_allclose(rs.records[0].boxes, [[1, 2, 160, 40]])
    assert rs.names == ["cat"] and any("clipped" in n for n in rs.notes) and any("under 1 px" in n for n in rs.notes)

    base = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 160, "height": 120}],
        "categories": [{"id": 1, "name": "cat"}],
    }
    coco = tmp_path / "c.json"
    for anns, pattern in (
        (
            [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}],
            r"annotations\[0\]\.bbox: expected \[x, y, width, height\]",
        ),
        (
            [
                {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                {"image_id": 1, "category_id": 9, "bbox": [1, 2, 3, 4]},
            ],
            r"annotations\[1\]\.category_id: 9 is not the id of any category",
        ),
        ([{"image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]}], r"annotations\[0\]\.image_id: 2 is not the id"),
        (
            [{"image_id": 1, "category_id": 1, "bbox": [1, 2, "w", 4]}],
            r"annotations\[0\]\.bbox\[2\]: 'w' is not a number",
        ),
        ([{"image_id": 1, "category_id": 1}], r"annotations\[0\]\.bbox: missing"),
    ):
        coco.write_text(json.dumps({**base, "annotations": anns}))
        with pytest.raises(ValueError, match=rf"c\.json: {pattern}"):
            read_coco(coco, tmp_path)
    coco.write_text('{"images": [,]}')
    with pytest.raises(ValueError, match=r"c\.json: not valid JSON \(line 1 column 13"):
        read_coco(coco, tmp_path)


def test_exif_orientation(tmp_path):
    """Boxes on the stored pixels (VOC size says so) vs on the rotated view (CSV: assumed); output is upright, untagged."""
    raw = _image(200, 100, [("x", 10, 20, 60, 70)], 0)  # stored 200x100, shown 100x200 (orientation 6)
    pics = tmp_path / "voc"
    pics.mkdir()
    exif = Image.Exif()
    exif[274] = 6
    Image.fromarray(raw[..., ::-1]).save(pics / "r.jpg", exif=exif, quality=95)
    (pics / "r.xml").write_text(
        "<annotation><filename>r.jpg</filename><size><width>200</width><height>100</height></size>"
        "<object><name>x</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>60</xmax><ymax>70</ymax></bndbox></object></annotation>"
    )
    (pics / "n.jpg").write_bytes((pics / "r.jpg").read_bytes())
    (pics / "n.xml").write_text("<annotation><filename>n.jpg</filename></annotation>")
    (tmp_path / "r.csv").write_text("voc/r.jpg,10,20,60,70,x\nvoc/n.jpg,,,,,\n")
    before = _tree(tmp_path)
    a = import_dataset("voc", pics, tmp_path / "a", val_list=_write(tmp_path / "v.txt", "n\n"))
    b = import_dataset("csv", tmp_path / "r.csv", tmp_path / "b", val_list=_write(tmp_path / "v2.txt", "n.jpg\n"))
    assert any("stored pixels" in n for n in a.notes) and any("rotated view" in n for n in b.notes)
    for dst, size in ((a.dst, (200, 100)), (b.dst, (100, 200))):
        out = next((dst / "images" / "train").iterdir())
        with Image.open(out) as im:
            assert im.size == size and im.getexif().get(274, 1) == 1
        np.testing.assert_allclose(
            _labels(dst / "labels" / "train" / f"{out.stem}.txt")[0, 1:],
            [35 / size[0], 45 / size[1], 50 / size[0], 50 / size[1]],
            atol=1e-6,
        )
        report = check_dataset(dst / "data.yaml")
        assert report.ok and [i.kind for i in report.warnings] == ["class_missing_in_split"], (
            report.issues
        )  # val: a negative
    assert {k: v for k, v in _tree(tmp_path).items() if k in before} == before


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- class choice, difficult boxes
def _box_labels(dst: Path) -> dict[str, list[int]]:
    """Image stem -> sorted class ids, over every split."""
    return {p.stem: sorted(int(r[0]) for r in _labels(p)) for p in dst.glob("labels/*/*.txt")}


def test_rename_merge_and_keep_list(src, tmp_path, caplog):
    s = _import("voc", src, tmp_path / "merged", split=(0.5, 0.5), rename={"cat": "pet", "dog": "pet"})
    assert s.names == ["bird", "pet"] and any("merged classes cat, dog into 'pet'" in n for n in s.notes)
    labels = _box_labels(s.dst)
    assert labels["a"] == [1, 1] and labels["d"] == [0, 0, 1] and labels["neg"] == []

    s = _import("coco", src, tmp_path / "renamed", split=(0.5, 0.5), rename={"dog": "canine"})
    assert s.names == ["canine", "cat", "bird"]  # a rename keeps the COCO category order

    with caplog.at_level("INFO", logger="lwdet.data.importers"):
        s = _import(
            "voc", src, tmp_path / "kept", split=(0.5, 0.5), rename={"cat": "pet", "dog": "pet"}, classes=["pet"]
        )
    assert s.names == ["pet"]
    note = next(n for n in s.notes if n.startswith("--classes"))
    assert note == "--classes kept 1 of 2 classes; dropped 4 boxes (bird 4)" and note in caplog.text
    labels = _box_labels(s.dst)
    assert labels["d"] == [0] and labels["aerial"] == [0, 0, 0, 0] and labels["neg"] == []
    assert sum(st["boxes"] for st in s.splits.values()) == 13 - 4

    s = _import("voc", src, tmp_path / "birds", split=(0.5, 0.5), classes=["bird"])
    assert (
        s.notes[-1]
        == "--classes kept 1 of 3 classes; dropped 9 boxes (cat 5, dog 4); 2 images left without boxes are kept as negatives"
    )
    assert _box_labels(s.dst)["a"] == [] and _box_labels(s.dst)["c"] == []

    s = _import("voc", src, tmp_path / "order", split=(0.5, 0.5), classes=["dog", "bird"])  # ids follow --classes
    assert s.names == ["dog", "bird"] and _box_labels(s.dst)["c"] == [0]

    with pytest.raises(ValueError, match=r"--rename: 'cow' not a class of the source; its classes: bird, cat, dog"):
        _import("voc", src, tmp_path / "x1", rename={"cow": "x"})
    with pytest.raises(
        ValueError, match=r"--classes: 'cat': not a class of the source \(after --rename\); its classes: bird, pet"
    ):
        _import("voc", src, tmp_path / "x2", rename={"cat": "pet", "dog": "pet"}, classes=["cat"])
    assert not (tmp_path / "x1").exists() and not (tmp_path / "x2").exists()


def test_cli_rename_classes_errors(src, tmp_path, capsys):
    assert main(["import", "--format", "voc", str(src / "voc"), str(tmp_path / "d"), "--rename", "cow=x"]) == 2
    assert "its classes: bird, cat, dog" in capsys.readouterr().err
    assert main(["import", "--format", "voc", str(src / "voc"), str(tmp_path / "d"), "--rename", "cat"]) == 2
    assert "expected OLD=NEW" in capsys.readouterr().err
    assert (
        main(
            [
                "import",
                "--format",
                "voc",
                str(src / "voc"),
                str(tmp_path / "d"),
                "--split",
                "0.5,0.5",
                "--rename",
                "cat=pet,dog=pet",
                "--classes",
                "pet,bird",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "classes 2: pet, bird" in out and "dropped 0 boxes" in out
    assert yaml.safe_load((tmp_path / "d" / "data.yaml").read_text())["names"] == {0: "pet", 1: "bird"}


def test_difficult_modes(tmp_path):
    pics = tmp_path / "voc"
    pics.mkdir()
    cv2.imwrite(str(pics / "h.png"), np.full((100, 120, 3), 30, np.uint8))
    cv2.imwrite(str(pics / "e.png"), np.full((100, 120, 3), 30, np.uint8))
    obj = "<object><name>{}</name><difficult>{}</difficult><bndbox><xmin>{}</xmin><ymin>10</ymin><xmax>{}</xmax><ymax>50</ymax></bndbox></object>"
    (pics / "h.xml").write_text(
        f"<annotation><filename>h.png</filename>{obj.format('car', 0, 10, 40)}{obj.format('car', 1, 60, 100)}</annotation>"
    )
    (pics / "e.xml").write_text(f"<annotation><filename>e.png</filename>{obj.format('car', 0, 10, 40)}</annotation>")
    val = _write(tmp_path / "val.txt", "e\n")
    got = {}
    for mode in ("drop", "keep", "mask"):
        s = import_dataset("voc", pics, tmp_path / mode, val_list=val, difficult=mode)
        rows = _labels(s.dst / "labels" / "train" / "h.txt")
        got[mode] = len(rows)
        img = cv2.imread(str(s.dst / "images" / "train" / "h.png"))
        masked = (img[10:50, 60:100] == 114).all()
        assert masked == (mode == "mask") and (img[10:50, 10:40] == 30).all()
        if mode != "keep":
            assert any(
                f"difficult / crowd boxes {'dropped' if mode == 'drop' else 'masked'}" in n and n.endswith(": 1")
                for n in s.notes
            )
    assert got == {"drop": 1, "keep": 2, "mask": 1}
    assert "difficult/crowd boxes: drop" in (tmp_path / "drop" / "data.yaml").read_text()  # the choice is recorded
    with pytest.raises(ValueError, match="choose from drop, keep, mask"):
        import_dataset("voc", pics, tmp_path / "bad", val_list=val, difficult="ignore")


def test_coco_crowd_default_drop_and_keep(src, tmp_path):
    kept = _import("coco", src, tmp_path / "keep", split=(0.5, 0.5), difficult="keep")
    dropped = _import("coco", src, tmp_path / "drop", split=(0.5, 0.5))
    assert _box_labels(kept.dst)["a"] == [0, 0, 1] and _box_labels(dropped.dst)["a"] == [0, 1]


def test_split_by_source_image_before_tiling(src, tmp_path):
    """No tile of a val image is trained on: every source image's tiles all land in one split."""
    s = _import("voc", src, tmp_path / "t", split=(0.5, 0.5), seed=3, tiling=TileOptions(64, 16, keep_empty=True))
    owner: dict[str, set[str]] = {}
    for img in s.dst.glob("images/*/*"):
        source = img.stem.rsplit("_x", 1)[0] if "_x" in img.stem else img.stem
        owner.setdefault(source, set()).add(img.parent.name)
    assert sorted(owner) == sorted(Path(n).stem for n in TRUTH)
    assert all(len(splits) == 1 for splits in owner.values()), owner
    assert {next(iter(v)) for v in owner.values()} == {"train", "val"}
    assert sum(st["tiles"] for st in s.splits.values()) > len(TRUTH)  # they were tiled
