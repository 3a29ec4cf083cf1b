import os

import pytest
import torch

from lwdet.backbones import FAMILIES
from lwdet.checkpoints import UntrustedCheckpointError, load_checkpoint
from lwdet.models import LwdetModel, model_yaml


class Payload:
    """Unpickling this runs a shell command: what a malicious .pt can do."""

    def __reduce__(self):
        return os.system, ("touch pwned",)


class Foreign:
    """A class of the user's, not an allow-listed model class."""


@pytest.mark.parametrize("backbone", ["yolov5n", *FAMILIES])
def test_every_backbone_family_checkpoint_loads_restricted(tmp_path, backbone):
    model = LwdetModel(model_yaml(backbone, "aspp"), nc=2, verbose=False)
    path = tmp_path / "ok.pt"
    torch.save({"model": model, "epoch": 3, "train_args": {"imgsz": 64}}, path)
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 3
    assert type(ckpt["model"]).__name__ == "LwdetModel"


def test_foreign_code_is_refused_unless_trusted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(UntrustedCheckpointError, match=r"evil.pt: refers to posix.system, outside lwdet's allow-list"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    load_checkpoint(path, trust=True)  # the user's explicit choice
    assert (tmp_path / "pwned").exists()


def test_foreign_class_is_refused(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"model": torch.nn.Sequential(), "extra": Foreign()}, path)
    with pytest.raises(UntrustedCheckpointError, match="test_checkpoints.Foreign"):
        load_checkpoint(path)


def test_missing_or_non_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a torch checkpoint"):
        load_checkpoint(bad)


def test_export_cli_refuses_an_untrusted_checkpoint(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    r = subprocess.run(
        [sys.executable, str(root / "export.py"), str(path), "--no-map"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "outside lwdet's allow-list" in r.stderr and "--trust-checkpoint" in r.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "loader",
    [
        "lwdet.export.load_model",
        "lwdet.checkpoints.load_weights",
        "lwdet.profile.resolve_detector",
        "lwdet.export.check_parity",
    ],
)
def test_library_loaders_refuse_an_untrusted_pickle(loader, tmp_path, monkeypatch):
    """Every library path from a .pt to a model goes through the allow-list, not only the CLIs."""
    import importlib

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    module, _, name = loader.rpartition(".")
    fn = getattr(importlib.import_module(module), name)
    args = (path, tmp_path / "x_ncnn_model", 64) if name == "check_parity" else (path,)
    with pytest.raises(UntrustedCheckpointError, match="outside lwdet's allow-list"):
        fn(*args)
    assert not (tmp_path / "pwned").exists()


def test_yolo_vets_a_checkpoint_once_per_load(tmp_path, monkeypatch):
    """``lwdet.YOLO(pt)`` is the checked way to evaluate a .pt: the allow-list runs once, then the engine loads it."""
    from lwdet import YOLO, checkpoints

    model = LwdetModel(model_yaml("yolov5n"), nc=2, verbose=False)
    path = tmp_path / "ok.pt"
    torch.save({"model": model, "train_args": {}}, path)
    calls = []
    real = checkpoints.check_checkpoint
    monkeypatch.setattr(checkpoints, "check_checkpoint", lambda p: calls.append(p) or real(p))
    YOLO(str(path))
    assert len(calls) == 1
    assert not hasattr(checkpoints, "load_yolo")  # one loader path, not two (issue 34: the import cycle)

    evil = tmp_path / "evil.pt"
    monkeypatch.chdir(tmp_path)
    torch.save({"model": Payload()}, evil)
    with pytest.raises(UntrustedCheckpointError):
        YOLO(str(evil))
    assert not (tmp_path / "pwned").exists()


def test_checkpoints_imports_nothing_of_lwdet_above_it():
    """checkpoints is below training/distill/yolo: no load_yolo -> yolo -> training -> distill -> checkpoints cycle."""
    import ast
    import inspect

    from lwdet import checkpoints

    tree = ast.parse(inspect.getsource(checkpoints))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.startswith("lwdet")}
