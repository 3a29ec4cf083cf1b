"""The ``lwdet_import:`` section of a data YAML (lwdet.data.recipe): a real-annotation import built on first use."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from lwdet.data import ensure_dataset, write_engine_yaml
from lwdet.data.recipe import DEFAULTS, IMPORT_KEY

ROOT = Path(__file__).resolve().parents[1]
# name -> (width, height, boxes x0, y0, x1, y1): all "Tree"
SOURCE = {
    "a": (200, 150, [(10, 10, 40, 40), (120, 60, 160, 100), (150, 100, 190, 140)]),
    "b": (160, 120, [(20, 20, 50, 60), (90, 40, 130, 80)]),
}


def _voc(folder: Path) -> Path:
    """A two-image Pascal VOC folder (PNG + XML each), one class."""
    folder.mkdir(parents=True)
    for name, (w, h, boxes) in SOURCE.items():
        img = np.full((h, w, 3), 90, np.uint8)
        objs = ""
        for x0, y0, x1, y1 in boxes:
            cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (40, 200, 40), -1)
            objs += (
                f"<object><name>Tree</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            )
        cv2.imwrite(str(folder / f"{name}.png"), img)
        (folder / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.png</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objs}</annotation>"
        )
    return folder


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
    } | {"": str(sorted(p.stat().st_mtime_ns for p in folder.rglob("*")))}


def _data_yaml(folder: Path, section: dict, name: str = "d.yaml", **extra) -> Path:
    spec = {"path": "ds", "train": "images/train", "val": "images/val", "names": {0: "Tree"}, IMPORT_KEY: section}
    path = folder / name
    path.write_text(yaml.safe_dump({**spec, **extra}, sort_keys=False))
    return path


@pytest.fixture
def src(tmp_path) -> Path:
    return _voc(tmp_path / "src")


def test_builds_tiles_and_untiled_val_split_by_source_image_source_untouched(tmp_path, src):
    before = _hashes(src)
    section = {"format": "voc", "source": "src", "val": ["b.png"], "tile": 96, "overlap": 16, "full_val": True}
    data_yaml = _data_yaml(tmp_path, section)
    data = ensure_dataset(data_yaml)
    root = tmp_path / "ds"
    assert data["path"] == str(root) and data["names"] == {0: "Tree"}
    stems = {s: sorted(p.stem for p in (root / "images" / s).iterdir()) for s in ("train", "val", "val-full")}
    # a (200 x 150) -> x 0, 80, 104 (the last tile flush right) x y 0, 54, empty tiles dropped; b (160 x 120) -> 2 x 2
    assert all(s.startswith("a_x") for s in stems["train"]) and len(stems["train"]) >= 3
    assert stems["val"] == ["b_x0_y0", "b_x0_y24", "b_x64_y0", "b_x64_y24"]  # no tile of the val image in train
    assert stems["val-full"] == ["b"]
    full = cv2.imread(str(root / "images" / "val-full" / "b.png"))
    assert full.shape == (120, 160, 3)
    rows = np.loadtxt(root / "labels" / "val-full" / "b.txt", ndmin=2)
    w, h, boxes = SOURCE["b"]
    want = [[0, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h] for x0, y0, x1, y1 in boxes]
    np.testing.assert_allclose(rows[np.argsort(rows[:, 1])], want, atol=1e-6)
    tile = np.loadtxt(root / "labels" / "val" / "b_x0_y0.txt", ndmin=2)  # both boxes of b, in tile pixels
    np.testing.assert_allclose(tile[0, 1:] * 96, [35, 40, 30, 40], atol=1e-3)
    assert _hashes(src) == before  # the source is only read
    assert not list(tmp_path.glob(".ds.tmp-*"))  # built in a temporary folder, renamed into place

    engine = yaml.safe_load(write_engine_yaml(data_yaml, tmp_path / "engine.yaml").read_text())
    assert IMPORT_KEY not in engine and engine["path"] == str(root)
    mtime = (root / "images" / "val" / "b_x0_y0.png").stat().st_mtime_ns
    ensure_dataset(data_yaml)  # built once: not again
    assert (root / "images" / "val" / "b_x0_y0.png").stat().st_mtime_ns == mtime


def test_split_fractions_and_source_beside_the_yaml_before_the_working_folder(tmp_path, src, monkeypatch):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    monkeypatch.chdir(tmp_path)  # "src" is not beside cfg/d.yaml: found in the working folder
    data_yaml = _data_yaml(cfg, {"format": "voc", "source": "src", "split": [0.5, 0.5], "seed": 1})
    ensure_dataset(data_yaml)
    names = {s: sorted(p.name for p in (cfg / "ds" / "images" / s).iterdir()) for s in ("train", "val")}
    assert sorted(names["train"] + names["val"]) == ["a.png", "b.png"]  # untiled: whole images, one in each split
    assert not (cfg / "ds" / "images" / "val-full").exists()  # full_val defaults to false

    _voc(cfg / "src")  # now one beside the YAML too: it wins
    (cfg / "src" / "b.png").unlink()
    (cfg / "src" / "b.xml").unlink()
    _voc_a_only = _data_yaml(cfg, {"format": "voc", "source": "src", "val": ["a"]}, name="e.yaml", path="ds2")
    with pytest.raises(ValueError, match=r"e.yaml: 'lwdet_import': .*lists every image; nothing is left to train on"):
        ensure_dataset(_voc_a_only)
    assert not (cfg / "ds2").exists()


def test_missing_source_names_the_yaml_the_key_and_the_paths_tried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data_yaml = _data_yaml(tmp_path, {"format": "voc", "source": "nowhere/neon"})
    with pytest.raises(FileNotFoundError) as e:
        ensure_dataset(data_yaml)
    msg = str(e.value)
    assert msg.startswith(f"{data_yaml}: 'lwdet_import.source' 'nowhere/neon' not found; tried ")
    assert str(tmp_path / "nowhere" / "neon") in msg and not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "section, message",
    [
        ({"format": "voc", "source": "src", "tiles": 320}, r"unknown key\(s\) in 'lwdet_import': tiles \(allowed: "),
        ({"source": "src"}, r"'lwdet_import.format' is missing"),
        ({"format": "yolo", "source": "src"}, r"'lwdet_import.format' is 'yolo'; choose from voc, coco, csv"),
        ({"format": "voc", "source": "src", "val": ["a"], "split": [0.5, 0.5]}, "give 'val' .* or 'split' .*not both"),
        ({"format": "voc", "source": "src", "overlap": 16}, "overlap, min_visible and keep_empty need tile"),
        ({"format": "voc", "source": "src", "tile": 96, "overlap": 96}, r"tile overlap must be in \[0, 96\)"),
        ({"format": "voc", "source": "src", "classes": ["Bush"]}, r"'lwdet_import.classes' \['Bush'\] must equal"),
        (
            {"format": "voc", "source": "src", "val": ["c.png"]},
            r"'lwdet_import': val\[0\]: 'c.png' matches no imported image",
        ),
        ({"format": "voc", "source": "src", "full_val": "yes"}, "'lwdet_import.full_val' must be true or false"),
    ],
)
def test_section_errors_name_the_yaml_and_key(tmp_path, src, monkeypatch, section, message):
    monkeypatch.chdir(tmp_path)
    data_yaml = _data_yaml(tmp_path, section)
    with pytest.raises(ValueError, match=message) as e:
        ensure_dataset(data_yaml)
    assert str(e.value).startswith(str(data_yaml)) and not (tmp_path / "ds").exists()


def test_unknown_key_lists_the_allowed_ones(tmp_path, src):
    with pytest.raises(ValueError) as e:
        ensure_dataset(_data_yaml(tmp_path, {"format": "voc", "source": "src", "tiles": 320}))
    assert str(e.value).endswith(f"(allowed: format, source, {', '.join(DEFAULTS)})")


def test_one_build_section_only_and_no_build_into_the_source(tmp_path, src):
    bad = _data_yaml(tmp_path, {"format": "voc", "source": "src"}, lwdet_bench={"n_train": 1, "n_val": 1})
    with pytest.raises(ValueError, match="give one build section, not lwdet_bench and lwdet_import"):
        ensure_dataset(bad)
    inside = _data_yaml(tmp_path, {"format": "voc", "source": "src"}, path="src/ds")
    with pytest.raises(ValueError, match="is inside the source"):
        ensure_dataset(inside)
    assert not (src / "ds").exists()


def test_cli_reports_a_missing_source_in_one_line_with_exit_2(tmp_path, capsys):
    from lwdet.cli.train import main

    data_yaml = _data_yaml(tmp_path, {"format": "voc", "source": str(tmp_path / "gone")})
    assert main(["--backbone", "yolov5n", "--data", str(data_yaml), "--epochs", "1", "--imgsz", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "'lwdet_import.source'" in err[0]


NEON = ROOT.parent / "shared" / "datasets" / "neon-trees"


def test_shipped_neon_trees_yaml_is_valid_and_credits_its_sources():
    from lwdet import cfg
    from lwdet.data import _load_yaml
    from lwdet.data.recipe import import_kwargs

    path = cfg.DATASETS / "neon-trees.yaml"
    assert (ROOT / "datasets" / "neon-trees.yaml").resolve() == path
    text = path.read_text()
    assert all(s in text for s in ("NEON", "deepforest 2.1.0", "MIT", "Weecology"))
    data = _load_yaml(path)
    kw = import_kwargs(path, data[IMPORT_KEY], {0: "Tree"})
    assert kw["val_names"] == ["2019_YELL_2_541000_4977000_image_crop.png"] and kw["full_val"]
    assert (kw["tiling"].size, kw["tiling"].overlap) == (320, 64) and kw["fmt"] == "voc"


@pytest.mark.skipif(not NEON.is_dir(), reason="../shared/datasets/neon-trees is not there")
def test_shipped_neon_trees_builds_from_the_clone_root(tmp_path, monkeypatch):
    from lwdet import cfg

    monkeypatch.chdir(ROOT)  # source ../shared/datasets/neon-trees: found from the working folder
    monkeypatch.setenv(cfg.DATASETS_ENV, str(tmp_path))
    before = _hashes(NEON)
    data = ensure_dataset(cfg.DATASETS / "neon-trees.yaml")
    root = Path(data["path"])
    assert root == tmp_path / "neon-trees" and _hashes(NEON) == before
    counts = {s: len(list((root / "labels" / s).iterdir())) for s in ("train", "val", "val-full")}
    assert counts == {"train": 82, "val": 20, "val-full": 1}
    assert all(p.name.startswith("2019_YELL_2_528000_4978000") for p in (root / "images" / "train").iterdir())
    assert (
        len((root / "labels" / "val-full" / "2019_YELL_2_541000_4977000_image_crop.txt").read_text().split("\n")) == 280
    )


def test_data_check_builds_a_missing_recipe_dataset_first_unless_no_build(tmp_path, src, capsys, monkeypatch):
    from lwdet.cli.data import main

    monkeypatch.setenv("LWDET_CACHE_DIR", str(tmp_path / "cache"))
    data_yaml = _data_yaml(tmp_path, {"format": "voc", "source": "src", "val": ["b"], "tile": 96, "full_val": True})
    assert main(["check", str(data_yaml), "--no-build"]) == 1  # reported missing, not built
    assert "built on first use from its 'lwdet_import' section" in capsys.readouterr().out
    assert not (tmp_path / "ds").exists()
    assert main(["check", str(data_yaml)]) == 0
    out = capsys.readouterr().out
    assert f"built   {tmp_path / 'ds'}" in out and "0 errors" in out
