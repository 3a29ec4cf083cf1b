"""Re-parameterization through a model's life: trained with branches, folded (exactly) before export, profile and
bench; the --rep neck and head; the backbones built for ARM CPUs train a step with the engine's loss."""

import copy
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn
from ultralytics.nn.modules import RepConv

from lwdet import reparam
from lwdet.backbones import BACKBONES
from lwdet.models import MODEL_DIR, LwdetModel

ROOT = Path(__file__).resolve().parents[1]
ARM_FAMILIES = ("repghostnet", "lcnet", "mobilenetv4", "mobileone")  # issue 28's families, every width registered
NEW_BACKBONES = [name for name, spec in BACKBONES.items() if spec.family in ARM_FAMILIES]
MOBILEONE = MODEL_DIR / "yolov5n-mobileone_s0-litepan-slimhead.yaml"


def calibrated(path: Path, seed: int = 0) -> LwdetModel:
    """A detector whose BatchNorm statistics come from random inputs (not the identity), in eval mode."""
    torch.manual_seed(seed)
    model = LwdetModel(path, nc=3, verbose=False)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(2, 3, 64, 64))
    return model.eval()


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        y = model(x)
    return y[0] if isinstance(y, (list, tuple)) else y


@pytest.mark.parametrize(
    "stem",
    [
        "yolov5n-shufflenetv2_050-litepan-slimhead-rep",  # the --rep neck and head alone
        "yolov5n-shufflenetv2_050-p45pan-slimhead-rep",
        "yolov5n-repghostnet_050-litepan-slimhead-rep",  # and with a re-parameterizable backbone
        "yolov5n-mobileone_s0-litepan-slimhead",
    ],
)
def test_fuse_folds_every_branch_exactly(stem):
    """In float64, so the fold's arithmetic is compared and not fp32 rounding (random MobileOne nets amplify it)."""
    model = calibrated(MODEL_DIR / f"{stem}.yaml").double()
    x = torch.rand(1, 3, 96, 96, dtype=torch.float64)
    before, n = outputs(model, x), reparam.branches(model)
    fused = copy.deepcopy(model).fuse(verbose=False)
    after = outputs(fused, x)
    assert n > 0 and reparam.branches(fused) == 0
    assert fused.reparameterized["blocks"] == n
    assert fused.reparameterized["params_deployed"] < fused.reparameterized["params_trained"]
    scale = before.abs().max()
    assert (after - before).abs().max() <= 1e-9 * scale  # rounding, nothing more
    for m in fused.modules():  # one 3x3 conv per rep block, no branch left
        if isinstance(m, RepConv):
            assert isinstance(m.conv, nn.Conv2d) and m.conv.kernel_size == (3, 3)
            assert not any(hasattr(m, a) for a in ("conv1", "conv2", "bn"))


def test_rep_yaml_deploys_the_same_graph_as_the_plain_one():
    """--rep costs nothing at inference: fused, the rep detector has the plain detector's convs and parameters."""
    rep = calibrated(MODEL_DIR / "yolov5n-shufflenetv2_050-litepan-slimhead-rep.yaml").fuse(verbose=False)
    plain = calibrated(MODEL_DIR / "yolov5n-shufflenetv2_050-litepan-slimhead.yaml").fuse(verbose=False)

    def convs(m):
        return Counter(
            (c.in_channels, c.out_channels, c.kernel_size, c.stride, c.groups)
            for c in m.modules()
            if isinstance(c, nn.Conv2d)
        )

    assert convs(rep) == convs(plain)
    assert sum(p.numel() for p in rep.parameters()) == sum(p.numel() for p in plain.parameters())


def test_training_keeps_the_branches():
    model = LwdetModel(MODEL_DIR / "yolov5n-repghostnet_050-litepan-slimhead-rep.yaml", nc=3, verbose=False)
    n = reparam.branches(model)
    model.train()
    model(torch.rand(2, 3, 64, 64))
    assert n > 0 and reparam.branches(model) == n and not hasattr(model, "reparameterized")


@pytest.mark.parametrize("backbone", NEW_BACKBONES)
def test_every_new_backbone_trains_a_step_with_the_engines_loss(backbone):
    """One SGD step through the engine's detection loss: finite loss, every parameter (branches too) gets a gradient."""
    from types import SimpleNamespace

    from ultralytics.cfg import get_cfg

    torch.manual_seed(0)
    model = LwdetModel(MODEL_DIR / f"yolov5n-{backbone}-litepan-slimhead.yaml", nc=3, verbose=False)
    model.args = SimpleNamespace(**vars(get_cfg()))  # the engine's default hyperparameters (box, cls, dfl gains)
    model.train()
    batch = {
        "img": torch.rand(2, 3, 64, 64),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[0.0], [2.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.3], [0.3, 0.6, 0.2, 0.5]]),
    }
    loss, items = model.loss(batch)
    loss.sum().backward()
    parts = items.values() if isinstance(items, dict) else [items]
    assert torch.isfinite(loss).all() and all(torch.isfinite(torch.as_tensor(v)).all() for v in parts)
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    live = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert len(moved) > 0.8 * len(before) and moved <= live  # the rest: zero-initialised layers, tiny gradients


def test_profile_counts_the_deployed_graph_and_says_so():
    from lwdet.profile import profile_detector, profile_model

    p = profile_detector(MOBILEONE, imgsz=160)
    trained = profile_model(LwdetModel(MOBILEONE, verbose=False).eval(), 160, engine_gflops=False)
    assert p.reparameterized["blocks"] > 0 and p.reparameterized["params_deployed"] == p.params
    assert p.params < 0.5 * trained.params and p.macs < 0.5 * trained.macs  # MobileOne trains ~4x wider
    from lwdet.profile.text import format_profile

    assert "re-parameterized" in format_profile(p) and "re-parameterized" not in format_profile(trained)
    plain = profile_detector(MODEL_DIR / "yolov5n-shufflenetv2_050-litepan-slimhead.yaml", imgsz=160)
    rep = profile_detector(MODEL_DIR / "yolov5n-shufflenetv2_050-litepan-slimhead-rep.yaml", imgsz=160)
    assert plain.reparameterized == {} and rep.macs == plain.macs


# ------------------------------------------------------------------------------------------------ exports (pnnx)
def ncnn_layer_types(export: Path) -> Counter:
    lines = (export / "model.ncnn.param").read_text().splitlines()[2:]
    return Counter(line.split()[0] for line in lines)


@pytest.mark.export
def test_mobileone_ncnn_weights_hold_the_fused_parameter_count(tmp_path):
    from test_export import randomized

    from lwdet import export as lx

    model = randomized(MOBILEONE)
    out = lx.export_ncnn(model, tmp_path, 64)
    meta = json.loads((out / "lwdet.json").read_text())["reparameterized"]
    parity = lx.read_parity(out)
    assert parity.passed and parity.reference_branches == meta["blocks"] > 0  # unfused PyTorch vs the fused export
    fp32_params = (out / "model.ncnn.bin").stat().st_size / 4
    assert fp32_params == pytest.approx(meta["params_deployed"], rel=0.02)
    assert fp32_params < 0.4 * meta["params_trained"]


@pytest.mark.export
def test_rep_export_has_the_plain_exports_layers(tmp_path):
    """In ncnn, --rep leaves one conv per block: the same layer types and counts as the plain detector."""
    from test_export import randomized

    from lwdet import export as lx

    stems = ["yolov5n-shufflenetv2_050-litepan-slimhead", "yolov5n-shufflenetv2_050-litepan-slimhead-rep"]
    plain, rep = (lx.export_ncnn(randomized(MODEL_DIR / f"{s}.yaml"), tmp_path / s, 64) for s in stems)
    assert ncnn_layer_types(rep) == ncnn_layer_types(plain)
    assert json.loads((rep / "lwdet.json").read_text())["reparameterized"]["blocks"] > 0
    assert json.loads((plain / "lwdet.json").read_text())["reparameterized"] == {}


@pytest.mark.train
@pytest.mark.export
def test_rep_detector_trains_with_branches_and_exports_fused_from_the_cli(tmp_path):
    def cli(script, *args):
        r = subprocess.run(
            [sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=900
        )
        assert r.returncode == 0, r.stderr[-3000:]
        return r

    cli(
        "train.py",
        *("--backbone", "repghostnet_050", "--neck", "lite", "--head", "slim", "--rep", "--epochs", 1),
        *("--imgsz", 64, "--batch", 32, "--no-plots", "--project", tmp_path, "--name", "rep"),
    )
    run = tmp_path / "rep"
    assert (run / "yolov5n-repghostnet_050-litepan-slimhead-rep.yaml").is_file()
    from lwdet.checkpoints import load_weights

    trained, _ = load_weights(run / "weights" / "best.pt")
    assert reparam.branches(trained) > 0  # the checkpoint keeps its branches
    cli("export.py", run, "--format", "ncnn", "--imgsz", 64, "--no-map")
    export = run / "weights" / "best_ncnn_model"
    meta = json.loads((export / "lwdet.json").read_text())["reparameterized"]
    parity = json.loads((export / "parity.json").read_text())
    assert meta["blocks"] == reparam.branches(trained) and parity["passed"]
    assert parity["reference_branches"] == meta["blocks"]
