"""Package layout: the library finds its files through the package, a clone's top-level folders are views of
them (one copy), generated datasets stay out of the package, and no code edits sys.path."""

import os
import re
import subprocess
from pathlib import Path

import pytest

import lwdet
from lwdet import cfg
from lwdet.data import DEFAULT_DATA, _load_yaml, dataset_root

ROOT = Path(__file__).resolve().parents[1]
PKG = Path(lwdet.__file__).resolve().parent


def test_cfg_folders_are_inside_the_package():
    for folder, first in (
        (cfg.MODELS, "yolov5n.yaml"),
        (cfg.DATASETS, "fmnist-det.yaml"),
        (cfg.STUDIES, "study-cpu.yaml"),
    ):
        assert folder.is_relative_to(PKG) and (folder / first).is_file()
    assert DEFAULT_DATA == cfg.DATASETS / "fmnist-det.yaml"


def test_clone_folders_are_views_of_the_package_files():
    assert (ROOT / "models" / "yaml").resolve() == cfg.MODELS
    assert (ROOT / "configs").resolve() == cfg.STUDIES
    shipped = sorted(p.name for p in cfg.DATASETS.glob("*.yaml"))
    assert sorted(p.name for p in (ROOT / "datasets").glob("*.yaml")) == shipped
    for name in shipped:
        assert (ROOT / "datasets" / name).resolve() == cfg.DATASETS / name


def test_shipped_data_yaml_builds_outside_the_package(tmp_path, monkeypatch):
    data = _load_yaml(DEFAULT_DATA)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(cfg.DATASETS_ENV, raising=False)
    assert dataset_root(DEFAULT_DATA, data) == tmp_path / "datasets" / "fmnist-det"
    monkeypatch.setenv(cfg.DATASETS_ENV, str(tmp_path / "elsewhere"))
    assert dataset_root(DEFAULT_DATA, data) == tmp_path / "elsewhere" / "fmnist-det"
    # the clone's datasets/*.yaml (a symlink) and any other data YAML: relative to its own folder
    assert dataset_root(ROOT / "datasets" / "fmnist-det.yaml", data) == ROOT / "datasets" / "fmnist-det"
    (tmp_path / "mine.yaml").write_text("path: sub\n")
    assert dataset_root(tmp_path / "mine.yaml", {"path": "sub"}) == tmp_path / "sub"


def test_no_code_edits_sys_path():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    if not files.stdout.strip():
        pytest.skip("not a git checkout")
    pattern = re.compile(r"sys\.path\.(insert|append)\(")
    offenders = [f for f in files.stdout.split() if pattern.search((ROOT / f).read_text(encoding="utf-8"))]
    assert offenders == []


def test_library_never_reaches_into_the_checkout():
    pattern = re.compile(r"parents\[\d\]")
    for path in PKG.rglob("*.py"):
        assert not pattern.search(path.read_text(encoding="utf-8")), path


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_model_yaml_resolves_through_the_package():
    from lwdet.models import MODEL_DIR, model_yaml

    assert MODEL_DIR == cfg.MODELS and model_yaml("ghostnet").parent == cfg.MODELS


def test_every_shipped_study_config_loads_and_its_model_files_exist():
    """A study config may name model YAMLs beside it (studies/<name>/*.yaml): they ship with it."""
    from lwdet.study import load_config, plan

    for config in sorted(cfg.STUDIES.glob("*.yaml")):
        for run in plan(load_config(config)):
            if str(run["yaml"]).endswith(".yaml") and "/" in str(run["yaml"]):
                assert Path(run["yaml"]).is_file(), f"{config.name}: {run['name']}: {run['yaml']}"


def test_every_shipped_search_config_loads():
    from lwdet.search import load_search

    shipped = sorted((cfg.STUDIES / "searches").glob("*.yaml"))
    assert shipped
    for config in shipped:
        s = load_search(config)
        assert Path(s["data"]).name.endswith(".yaml") and s["max_latency"]["kind"] in ("ratio", "board")
