import copy
import json
import os
from functools import cache
from pathlib import Path

import pytest
import torch
from torch import nn

from lwdet.backbones import BACKBONES, BackboneSpec
from lwdet.cli.profile import main
from lwdet.models import MODEL_DIR, LwdetModel, shipped_yamls
from lwdet.profile import CATEGORIES, measure, profile_classifier, profile_detector, profile_model


def _paper(title, authors, venue, table):
    return f"{title} ({authors}, {venue}, {table})"


GHOSTNET = _paper("GhostNet: More Features from Cheap Operations", "Han et al.", "CVPR 2020", "Table 7")
MOBILENETV2 = _paper("MobileNetV2: Inverted Residuals and Linear Bottlenecks", "Sandler et al.", "CVPR 2018", "Table 4")
MOBILENETV3 = _paper("Searching for MobileNetV3", "Howard et al.", "ICCV 2019", "Table 3")
SHUFFLENETV2 = _paper(
    "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
    "Ma et al.",
    "ECCV 2018",
    "Table 5, FLOPs and # of weights rows",
)
MNASNET = _paper("MnasNet: Platform-Aware Neural Architecture Search for Mobile", "Tan et al.", "CVPR 2019", "Table 1")
REPGHOST = _paper(
    "RepGhost: A Hardware-Efficient Ghost Module via Re-parameterization",
    "Chen et al.",
    "arXiv 2211.06088",
    "ImageNet table",
)
LCNET = _paper(
    "PP-LCNet: A Lightweight CPU Convolutional Neural Network", "Cui et al.", "arXiv 2109.15099", "ImageNet table"
)
MOBILENETV4 = _paper(
    "MobileNetV4: Universal Models for the Mobile Ecosystem", "Qin et al.", "ECCV 2024", "ImageNet table, MACs to 0.1 G"
)
MOBILEONE = _paper(
    "MobileOne: An Improved One millisecond Mobile Backbone", "Vasu et al.", "CVPR 2023", "ImageNet table"
)
EFFICIENTNET_LITE = "tensorflow/tpu models/official/efficientnet/lite/README.md (the EfficientNet-Lite authors' table)"
# Widths the papers give no number for: the authors' own releases.
MOBILENETV2_RELEASE = "tensorflow/models research/slim/nets/mobilenet/README.md (the MobileNetV2 authors' checkpoints)"
MNASNET_RELEASE = "tensorflow/tpu models/official/mnasnet/README.md (the MnasNet authors' checkpoints, MnasNet-A1)"

# Architectures the paper names but lwdet does not register; built from timm for this check only.
MOBILENETV2_140 = BackboneSpec("mobilenetv2_140", "timm", "mobilenetv2_140", "mobilenetv2")
MNASNET_A1 = BackboneSpec("mnasnet_a1", "timm", "semnasnet_100", "mnasnet")  # timm's name for MnasNet-A1
MNASNET_A1_050 = BackboneSpec("mnasnet_a1_050", "timm", "semnasnet_050", "mnasnet")


def _row(backbone, macs_m, params_m, where, known_deviation=None, macs_digit_m=None):
    """(backbone, published multiply-adds in M, published params in M, where published, the MACs' last published
    digit in M when coarser than TOLERANCE), classifier at 224 x 224."""
    marks = pytest.mark.xfail(strict=True, reason=known_deviation) if known_deviation else ()
    name = backbone if isinstance(backbone, str) else backbone.name
    return pytest.param(
        backbone, macs_m, params_m, where, macs_digit_m, marks=marks, id=name + ("-paper" if marks else "")
    )


# "FLOPs" in the GhostNet and ShuffleNet V2 papers are multiply-adds, as are MAdds / Mult-Adds in the others.
PUBLISHED = [
    _row("ghostnet_050", 42, 2.6, GHOSTNET),
    _row("ghostnet_100", 141, 5.2, GHOSTNET),
    _row("ghostnet_130", 226, 7.3, GHOSTNET),
    _row("mobilenetv2_100", 300, 3.4, MOBILENETV2),
    # Measured 582 M / 6.11 M: the paper's 6.9 M parameters at width 1.4 disagree with the authors' own release of
    # that model (6.06 M, next row), which timm matches. The paper's number stays, expected to fail, rather than a
    # wider tolerance.
    _row(MOBILENETV2_140, 585, 6.9, MOBILENETV2, "paper's 6.9 M params != authors' release 6.06 M (timm: 6.11 M)"),
    _row(MOBILENETV2_140, 582, 6.06, MOBILENETV2_RELEASE),
    _row("mobilenetv2_050", 97, 1.95, MOBILENETV2_RELEASE),  # the paper plots width 0.5 (Fig. 5) but tables none
    _row("mobilenetv3_large_100", 219, 5.4, MOBILENETV3),
    _row("mobilenetv3_large_075", 155, 4.0, MOBILENETV3),
    _row("mobilenetv3_small_100", 56, 2.5, MOBILENETV3),
    _row("mobilenetv3_small_075", 44, 2.0, MOBILENETV3),
    _row("shufflenetv2_050", 41, 1.4, SHUFFLENETV2),
    _row("shufflenetv2_100", 146, 2.3, SHUFFLENETV2),
    _row("shufflenetv2_150", 299, 3.5, SHUFFLENETV2),
    _row("shufflenetv2_200", 591, 7.4, SHUFFLENETV2),
    _row(MNASNET_A1, 312, 3.9, MNASNET),
    _row(MNASNET_A1_050, 105.2, 2.1, MNASNET_RELEASE),
    # backbones built for ARM CPUs; the re-parameterizable ones are counted folded, as their papers count them
    _row("repghostnet_050", 43, 2.3, REPGHOST),
    _row("repghostnet_080", 96, 3.3, REPGHOST),
    _row("repghostnet_100", 142, 4.1, REPGHOST),
    _row("lcnet_050", 47, 1.9, LCNET),
    _row("lcnet_075", 99, 2.4, LCNET),
    _row("lcnet_100", 161, 3.0, LCNET),
    _row("mobilenetv4_conv_small", 200, 3.8, MOBILENETV4, macs_digit_m=100),  # "0.2 G": 150-250 M; measured 186 M
    _row("mobileone_s0", 275, 2.1, MOBILEONE),
    # EfficientNet-Lite has no paper; its authors' README gives 407 M MAdds / 4.7 M params for lite0 at 224 px. timm's
    # network (whose 296 tensors the authors' checkpoint fills one to one) measures 385 M / 4.65 M: -5.4 %, outside
    # the tolerance; a PyTorch reproduction (d-li14/efficientnet-lite.pytorch) also counts 0.385 G. The README's
    # lite1 / lite2 (631 M at 240 px, 899 M at 260 px) are 9 % / 14 % above the same count scaled to their inputs,
    # so the README counts more than multiply-adds of convs; its number stays, expected to fail.
    _row("efficientnet_lite0", 407, 4.7, EFFICIENTNET_LITE, "authors' README 407 M vs 385 M counted (-5.4 %)"),
]
# Registered backbones no row above covers, and why. lwdet's mnasnet_100 / mnasnet_050 are timm's mnasnet_100 /
# mnasnet_050 (= torchvision's mnasnet1_0 / mnasnet0_5): MnasNet-B1, the variant without squeeze-excite defined in
# the authors' tensorflow/tpu mnasnet_models.py. The paper's Table 1 lists A1-A3, not B1, and no published B1
# number was found to check against. B1 measures 314 M / 4.38 M at width 1.0 (A1: 312 M / 3.9 M, so +12 %
# params) and 104.5 M / 2.22 M at 0.5. A1 itself is checked above through timm's semnasnet_100 / semnasnet_050.
# mobilenetv4_conv_small_050 is a width timm defines and trained itself (not in the MobileNetV4 paper): 64.7 M MACs,
# 2.24 M params measured.
# efficientnet_lite0: its one published count disagrees by 5.4 % (the xfail row above); efficientnet_lite1 / _lite2:
# the README counts them at 240 / 260 px (this check runs at 224; see the lite0 row).
UNPUBLISHED = {
    "mnasnet_100", "mnasnet_050", "mobilenetv4_conv_small_050", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"
}  # fmt: skip
TOLERANCE = 0.05


@cache
def _classifier(backbone):
    return profile_classifier(backbone, 224, engine_gflops=False)


@pytest.mark.parametrize("backbone, macs_m, params_m, where, macs_digit_m", PUBLISHED)
def test_classifier_reproduces_published_macs_and_params(backbone, macs_m, params_m, where, macs_digit_m):
    p = _classifier(backbone)
    assert p.kind == "classifier" and p.imgsz == [224, 224]
    if macs_digit_m:  # published rounded to that digit: anything that rounds to it
        assert abs(p.macs / 1e6 - macs_m) <= macs_digit_m / 2, where
    else:
        assert p.macs / 1e6 == pytest.approx(macs_m, rel=TOLERANCE), where
    assert p.params / 1e6 == pytest.approx(params_m, rel=TOLERANCE), where


def test_re_parameterizable_classifiers_are_counted_folded():
    """MobileOne-S0 trains with ~4x the multiply-adds it deploys with; the paper's 275 M is the folded graph."""
    import timm

    from lwdet.profile import profile_model

    trained = profile_model(timm.create_model("mobileone_s0", pretrained=False).eval(), 224, engine_gflops=False)
    assert trained.macs / 1e6 > 3 * 275 and _classifier("mobileone_s0").macs / 1e6 == pytest.approx(275, rel=0.01)


def test_every_registered_backbone_is_checked_against_a_published_number():
    checked = {row.values[0] for row in PUBLISHED if not row.marks and isinstance(row.values[0], str)}
    assert checked | UNPUBLISHED == set(BACKBONES)


# ----------------------------------------------------------------------------------------------- counting rules
@pytest.mark.parametrize(
    "conv, per_output",
    [
        (nn.Conv2d(8, 16, 3, stride=2, padding=1), 8 * 3 * 3),  # dense
        (nn.Conv2d(16, 16, 3, padding=1, groups=16), 3 * 3),  # depthwise: one input channel per output
        (nn.Conv2d(16, 32, 5, padding=2, groups=4), 16 // 4 * 5 * 5),  # grouped
        (nn.Conv2d(8, 24, 1, bias=False), 8),  # pointwise
        (nn.Conv2d(8, 8, 3, padding=2, dilation=2), 8 * 3 * 3),  # dilation changes the reach, not the cost
    ],
)
def test_conv_macs_match_the_formula(conv, per_output):
    x = torch.zeros(1, conv.in_channels, 20, 20)
    h, w = conv(x).shape[-2:]
    ops, _, _ = measure(conv, x)
    assert len(ops) == 1
    assert ops[0].macs == conv.out_channels * h * w * per_output
    weights = conv.weight.numel() + (conv.bias.numel() if conv.bias is not None else 0)
    assert ops[0].elements == x.numel() + conv.out_channels * h * w + weights


def test_memory_access_of_a_1x1_conv_is_the_shufflenetv2_formula():
    h, w, c1, c2 = 14, 10, 24, 40
    ops, _, _ = measure(nn.Conv2d(c1, c2, 1, bias=False), torch.zeros(1, c1, h, w))
    assert ops[0].elements == h * w * (c1 + c2) + c1 * c2  # MAC = hw(c1 + c2) + c1 c2 (Ma et al., Sec. 2, G1)
    assert ops[0].category == "conv1x1"


def test_linear_and_elementwise_ops_are_counted():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act, self.fc = nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(), nn.Linear(4, 10)

        def forward(self, x):
            y = self.act(self.conv(x)) + x  # (1, 4, 8, 8): a depthwise conv, a ReLU and a residual add
            return self.fc(y.mean((2, 3)))  # a mean over H, W (other) and a linear layer

    ops, _, _ = measure(Block(), torch.zeros(1, 4, 8, 8))
    by_op = {o.op: o for o in ops}
    n = 4 * 8 * 8
    assert by_op["Conv2d 3x3/1 g=4"].category == "depthwise"
    assert by_op["relu"].category == "elementwise" and by_op["relu"].elements == 2 * n
    assert by_op["add"].category == "elementwise" and by_op["add"].elements == 3 * n
    assert by_op["mean"].category == "other" and by_op["mean"].elements == n + 4
    assert by_op["Linear"].macs == 4 * 10 and by_op["Linear"].elements == 4 + 10 + 4 * 10 + 10


def test_peak_activation_memory_counts_live_tensors():
    # input (3 x 8 x 8) stays alive; the ReLU output and the last conv's output overlap with their inputs
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1))
    _, peak, at = measure(model, torch.zeros(1, 3, 8, 8))
    assert peak == 4 * 64 * (3 + 8 + 16)  # input + ReLU output + last conv output (the conv0 output is freed)
    assert at == "2"


# ------------------------------------------------------------------------------------------ engine cross-check
@cache
def _detector(stem: str) -> nn.Module:
    return LwdetModel(MODEL_DIR / f"{stem}.yaml", nc=5, verbose=False).eval()


def _without_norms(model: nn.Module) -> nn.Module:
    """A copy with every normalisation layer replaced by Identity (BatchNorm folded, as at inference)."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.batchnorm._NormBase):
                setattr(parent, name, nn.Identity())
    return model


# timm's squeeze-excite pools with x.mean(), which the engine's get_flops cannot see: it extrapolates the cost it
# measures on a 32-pixel-high proxy image in proportion to the image area, so the size-independent SE convs grow
# with the image too (+2 to +10 % at 64 px, +5 to +14 % at 320 px over the exact count). For those families the
# engine's counter is run exactly (thop without the proxy) instead.
SQUEEZE_EXCITE = ("ghostnet", "mobilenetv3")
# One YAML per backbone family and neck keeps the suite fast (all 32 take 20-90 s here, by load);
# LWDET_ALL_YAMLS=1 checks every shipped YAML.
SUBSET = [
    "yolov5n",
    "yolov5n-aspp",
    "yolov5n-shufflenetv2_050",
    "yolov5n-mobilenetv2_050",
    "yolov5n-mnasnet_050-aspp",
    "yolov5n-ghostnet_050-aspp",
    "yolov5n-mobilenetv3_small_075",
    "yolov5n-mobilenetv3_large_075",
]
STEMS = [p.stem for p in shipped_yamls()] if os.environ.get("LWDET_ALL_YAMLS") == "1" else SUBSET
ENGINE_CHECKED = [s for s in STEMS if not any(f in s for f in SQUEEZE_EXCITE)]
EXACT_CHECKED = [s for s in STEMS if any(f in s for f in SQUEEZE_EXCITE)]


def test_baseline_gflops_match_the_engines_get_flops():
    """The literal cross-check: as the engine reports yolov5n (its extra 1.6 % is BatchNorm, see below)."""
    from ultralytics.utils.torch_utils import get_flops

    model = _detector("yolov5n")
    assert profile_model(model, 64, engine_gflops=False).gflops == pytest.approx(get_flops(model, 64), rel=0.02)


@pytest.mark.parametrize("stem", ENGINE_CHECKED)
def test_detector_gflops_match_the_engines_get_flops_with_batchnorm_folded(stem):
    """Same count as the engine once BatchNorm is folded (get_flops charges thop's 4 ops per BN element, which
    adds 1.6 % on yolov5n and up to 5 % on depthwise backbones)."""
    from ultralytics.utils.torch_utils import get_flops

    model = _detector(stem)
    ours = profile_model(model, 64, engine_gflops=False).gflops
    assert ours == pytest.approx(get_flops(_without_norms(model), 64), rel=0.02)


@pytest.mark.parametrize("stem", EXACT_CHECKED)
def test_detector_macs_match_the_engines_counter_with_squeeze_excite(stem):
    import thop

    model = _detector(stem)
    ours = profile_model(model, 64, engine_gflops=False).macs
    exact, _ = thop.profile(_without_norms(model), inputs=[torch.zeros(1, 3, 64, 64)], verbose=False)
    assert ours == pytest.approx(exact, rel=0.02)


def test_detector_profile_adds_up():
    p = profile_detector(MODEL_DIR / "yolov5n-shufflenetv2_050.yaml", 64, nc=5)
    assert p.name == "yolov5n-shufflenetv2_050" and p.kind == "detector"
    assert p.gflops == pytest.approx(2 * p.macs / 1e9)
    assert list(p.breakdown) == list(CATEGORIES)
    assert sum(b["macs"] for b in p.breakdown.values()) == p.macs
    assert sum(r["macs"] for r in p.layers) == p.macs
    assert sum(b["memory_access_mb"] for b in p.breakdown.values()) == pytest.approx(p.memory_access_mb)
    assert p.breakdown["depthwise"]["macs"] > 0 and p.breakdown["elementwise"]["memory_access_mb"] > 0
    assert [r["type"] for r in p.layers][:2] == ["Backbone", "Index"]
    assert p.engine_gflops > p.gflops  # BatchNorm is charged there
    assert p.peak_activation_mb > 3 * 64 * 64 * 4 / 1e6  # at least the input


# ---------------------------------------------------------------------------------------- sources, files, CLI
def test_run_folder_profiles_best_pt_and_lists_files(tmp_path):
    from lwdet.export import ParityReport

    weights = tmp_path / "run" / "weights"
    weights.mkdir(parents=True)
    model = LwdetModel(MODEL_DIR / "yolov5n.yaml", nc=3, verbose=False)
    torch.save({"model": copy.deepcopy(model).half()}, weights / "best.pt")  # as the engine saves it
    n = sum(p.numel() for p in model.parameters())
    fp16 = weights / "best_ncnn_model"
    fp16.mkdir()
    (fp16 / "model.ncnn.bin").write_bytes(b"\0" * (2 * n))
    ParityReport(
        format="ncnn",
        path=str(fp16),
        source="best.pt",
        imgsz=[64, 64],
        half=True,
        n_random=1,
        n_images=0,
        max_abs_diff=0,
        box_max_abs_diff=0,
        score_max_abs_diff=0,
        box_tolerance=1,
        score_tolerance=1,
    ).save(fp16 / "parity.json")
    (weights / "best.onnx").write_bytes(b"\0" * (4 * n))  # no parity report: precision from bytes per parameter

    p = profile_detector(tmp_path / "run", 64)
    assert p.params == n and p.source == str(tmp_path / "run")
    files = {Path(f["path"]).name: f for f in p.files}
    assert files["best.pt"]["format"] == "pt" and files["best.pt"]["bytes"] == (weights / "best.pt").stat().st_size
    assert files["model.ncnn.bin"]["fp16"] is True and files["model.ncnn.bin"]["bytes"] == 2 * n
    assert files["best.onnx"]["fp16"] is False


def test_cli_writes_json_and_prints_a_table(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main([str(MODEL_DIR / "yolov5n.yaml"), "--imgsz", "64", "--nc", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "memory-access cost" in printed and "depthwise" in printed and "model.24" in printed
    d = json.loads(out.read_text())
    assert d["imgsz"] == [64, 64] and d["macs"] > 0 and d["ops"] and "macs" in d["conventions"]


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    assert main(["--backbone", "ghostnet_10", "--classifier"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "backbone 'ghostnet_10' is not known; did you mean" in err
    assert main([str(tmp_path / "missing.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"error: {tmp_path / 'missing.yaml'}: no such file or folder"]
