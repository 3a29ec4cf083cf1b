import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import expected_strides
from torch import nn

from lwdet.models import MODEL_DIR, LwdetModel, ModelConfigError, load_spec, model_yaml, shipped_yamls
from lwdet.necks import ASPP

ROOT = Path(__file__).resolve().parents[1]
GHOST = MODEL_DIR / "yolov5n-ghostnet_100.yaml"


@pytest.mark.parametrize("path", shipped_yamls(), ids=lambda p: p.stem)
def test_every_shipped_yaml_builds_and_runs(path):
    model = LwdetModel(path, nc=3, verbose=False)
    strides = expected_strides(path)
    assert model.stride.tolist() == strides
    model.eval()
    with torch.no_grad():
        y = model(torch.zeros(1, 3, 64, 64))[0]
    assert y.shape == (1, 4 + 3, sum((64 // s) ** 2 for s in strides))
    assert torch.isfinite(y).all()


def test_shipped_yamls_cover_every_backbone_with_every_neck_and_head():
    from lwdet.backbones import BACKBONES

    names = {p.stem for p in shipped_yamls()}
    for b in ["yolov5n", *(f"yolov5n-{n}" for n in BACKBONES)]:
        assert {
            b,
            f"{b}-aspp",
            f"{b}-litehead",
            f"{b}-litepan",
            f"{b}-litepan-litehead",
            f"{b}-nanopan-nanohead",
            f"{b}-p45pan-nanohead",
            f"{b}-litepan-slimhead",
            f"{b}-p45pan-slimhead",
            f"{b}-litepan-slimhead-rep",
            f"{b}-p45pan-slimhead-rep",
        } <= names
    assert len(names) == 11 * (1 + len(BACKBONES))


def test_shipped_yamls_are_up_to_date_with_the_generator():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_model_yamls.py"), "--check"], capture_output=True)
    assert r.returncode == 0, r.stdout.decode()


def test_baseline_is_the_engines_yolov5n():
    from ultralytics.nn.tasks import DetectionModel

    ours = LwdetModel(MODEL_DIR / "yolov5n.yaml", nc=80, verbose=False).eval()
    engine = DetectionModel("yolov5n.yaml", nc=80, verbose=False).eval()
    ours.load_state_dict(engine.state_dict())  # same names and shapes, strict
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(ours(x)[0], engine(x)[0])


@pytest.mark.parametrize(
    "backbone, neck, stem",
    [
        ("yolov5n", "sppf", "yolov5n"),
        ("yolov5n", "aspp", "yolov5n-aspp"),
        ("ghostnet", "sppf", "yolov5n-ghostnet_100"),
        ("mobilenetv3_small", "aspp", "yolov5n-mobilenetv3_small_100-aspp"),
        ("shufflenetv2_050", "sppf", "yolov5n-shufflenetv2_050"),
        ("ghostnet_130", "aspp", "yolov5n-ghostnet_130-aspp"),
    ],
)
def test_backbone_and_neck_resolve_to_shipped_yaml(backbone, neck, stem):
    assert model_yaml(backbone, neck) == MODEL_DIR / f"{stem}.yaml"


@pytest.mark.parametrize(
    "backbone, neck, head, stem",
    [
        ("yolov5n", "lite", "lite", "yolov5n-litepan-litehead"),
        ("shufflenetv2_050", "sppf", "lite", "yolov5n-shufflenetv2_050-litehead"),
        ("mobilenetv3_small", "lite", "yolo", "yolov5n-mobilenetv3_small_100-litepan"),
        ("shufflenetv2_050", "nano", "nano", "yolov5n-shufflenetv2_050-nanopan-nanohead"),
        ("shufflenetv2_050", "p45", "nano", "yolov5n-shufflenetv2_050-p45pan-nanohead"),
    ],
)
def test_neck_and_head_resolve_to_shipped_yaml(backbone, neck, head, stem):
    assert model_yaml(backbone, neck, head) == MODEL_DIR / f"{stem}.yaml"


def test_unknown_or_unshipped_head_names_the_choices():
    with pytest.raises(ValueError, match="head 'light' is not known; did you mean 'lite'"):
        model_yaml("ghostnet", "sppf", "light")
    with pytest.raises(
        FileNotFoundError, match="neck 'aspp' and head 'lite'; shipped for it: .*--neck sppf --head lite, "
    ):
        model_yaml("ghostnet", "aspp", "lite")


def test_lite_head_and_neck_cut_the_cost_and_keep_the_outputs():
    from lwdet.heads import LiteDetect

    base = LwdetModel(MODEL_DIR / "yolov5n-shufflenetv2_050.yaml", nc=5, verbose=False)
    lite = LwdetModel(MODEL_DIR / "yolov5n-shufflenetv2_050-litepan-litehead.yaml", nc=5, verbose=False)
    assert isinstance(lite.model[-1], LiteDetect) and lite.model[-1].reg_max == 16 and lite.model[-1].nc == 5
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(lite) < 0.25 * n(base)
    x = torch.rand(2, 3, 96, 96)
    lite.train()
    out = lite(x)  # training output: the engine's loss reads these
    assert out["boxes"].shape == (2, 64, 12 * 12 + 6 * 6 + 3 * 3) and out["scores"].shape == (2, 5, 189)
    # ReLU replaces SiLU in every engine-built layer (the engine's meaning of the key); timm keeps its own
    v5 = LwdetModel(MODEL_DIR / "yolov5n-litepan.yaml", nc=5, verbose=False)
    assert not any(isinstance(m, nn.SiLU) for m in v5.modules()) and any(isinstance(m, nn.ReLU) for m in v5.modules())
    ghost = LwdetModel(MODEL_DIR / "yolov5n-ghostnet_100-litepan.yaml", nc=5, verbose=False)
    assert any(type(m).__name__ == "Hardsigmoid" for m in ghost.model[0].modules())  # GhostNet's SE gate, untouched


def test_nano_head_regresses_box_sides_without_dfl():
    nano = LwdetModel(MODEL_DIR / "yolov5n-shufflenetv2_050-nanopan-nanohead.yaml", nc=5, verbose=False)
    head = nano.model[-1]
    assert head.reg_max == 1 and isinstance(head.dfl, nn.Identity)
    assert [m[-1].out_channels for m in head.cv2] == [4, 4, 4] and head.cv2[0][0].conv.in_channels == 48
    nano.train()
    out = nano(torch.rand(1, 3, 64, 64))
    assert out["boxes"].shape == (1, 4, 84)


def test_two_level_pan_detects_at_p4_and_p5_only():
    m = LwdetModel(MODEL_DIR / "yolov5n-shufflenetv2_050-p45pan-nanohead.yaml", nc=5, verbose=False)
    assert m.stride.tolist() == [16.0, 32.0] and m.model[-1].nl == 2
    m.train()
    out = m(torch.rand(1, 3, 64, 64))
    assert out["boxes"].shape == (1, 4, 4 * 4 + 2 * 2)  # 16x16 and 32x32 cells of a 64 px input
    m.eval()
    assert m(torch.rand(1, 3, 64, 96))[0].shape == (1, 4 + 5, 4 * 6 + 2 * 3)


HEAD_ABLATION = ROOT / "lwdet" / "cfg" / "studies" / "head-ablation"


@pytest.mark.parametrize(
    "variant, head, params",
    [  # (ablation YAML, head class, head parameters at nc=10 on the 64-channel lite PAN)
        ("engine", "LegacyDetect", 458_350),
        ("v8", "DetectV8", 265_966),
        ("slim32", "SlimDetect", 173_998),
        ("lite1", "LiteDetect", 44_014),
        ("lite2", "LiteDetect", 73_582),
        ("shared2k5", "LiteDetect", 50_158),
    ],
)
def test_head_ablation_variants_build_train_and_decode(variant, head, params):
    m = LwdetModel(HEAD_ABLATION / f"{variant}.yaml", nc=10, verbose=False)
    d = m.model[-1]
    assert type(d).__name__ == head and sum(p.numel() for p in d.parameters()) == params
    # the engine's bias priors reach every variant's prediction convs (class prior for 10 classes at 640 px, box 2.0)
    assert all(float(b[-1].bias[0]) == pytest.approx(-9.457 + 1.386 * i, abs=0.01) for i, b in enumerate(d.cv3))
    assert all(float(b[-1].bias.mean()) == 2.0 for b in d.cv2)
    m.train()
    out = m(torch.rand(2, 3, 64, 64))
    assert out["boxes"].shape == (2, 64, 84) and out["scores"].shape == (2, 10, 84)
    m.eval()
    with torch.no_grad():
        assert m(torch.rand(1, 3, 64, 96))[0].shape == (1, 4 + 10, 8 * 12 + 4 * 6 + 2 * 3)


def test_shared_lite_head_runs_its_stack_once_per_level():
    m = LwdetModel(HEAD_ABLATION / "shared2k5.yaml", nc=10, verbose=False).eval()
    d = m.model[-1]
    calls = []
    for stem in d.stem:
        stem.register_forward_hook(lambda *a: calls.append(1))
    assert [type(s[-1]).__name__ for s in d.cv2] == ["Conv2d"] * 3 and d.stem[0][0].conv.kernel_size == (5, 5)
    with torch.no_grad():
        m(torch.rand(1, 3, 64, 64))
    assert len(calls) == 3


def test_new_head_row_arguments_are_checked(tmp_path):
    src = HEAD_ABLATION / "lite2.yaml"
    for new, message in (
        ("LiteDetect, [nc, 16, 0, 3, false]", "depth must be positive integers"),
        ("LiteDetect, [nc, 16, 2, 4, false]", "kernel must be odd, got 4"),
        ("LiteDetect, [nc, 16, 2, 3, 1]", "'shared' must be true or false, got 1"),
    ):
        bad = _edited(tmp_path, "LiteDetect, [nc, 16, 2, 3, false]", new, src)
        with pytest.raises(ModelConfigError, match=message):
            LwdetModel(bad, verbose=False)
    bad = _edited(tmp_path, "SlimDetect, [nc, 32]", "SlimDetect, [nc, -8]", HEAD_ABLATION / "slim32.yaml")
    with pytest.raises(ModelConfigError, match="width must be positive integers"):
        LwdetModel(bad, verbose=False)


def test_lite_detect_row_arguments_are_checked(tmp_path):
    src = MODEL_DIR / "yolov5n-shufflenetv2_050-litehead.yaml"
    bad = _edited(tmp_path, "LiteDetect, [nc, 16]", "LiteDetect, [nc, 0]", src)
    with pytest.raises(ModelConfigError, match=r"bad.yaml:\d+: head row \d+ .*reg_max must be positive integers"):
        LwdetModel(bad, verbose=False)
    bad = _edited(tmp_path, "LiteDetect, [nc, 16]]", "LitDetect, [nc, 16]]", src)
    with pytest.raises(ModelConfigError, match="module 'LitDetect' is not known; did you mean 'LiteDetect'"):
        load_spec(bad)


def test_unknown_backbone_or_neck_names_the_choices():
    with pytest.raises(ValueError, match="did you mean 'shufflenetv2'"):
        model_yaml("shufflenet_v2")
    with pytest.raises(ValueError, match="neck 'asp' is not known; did you mean 'aspp'"):
        model_yaml("ghostnet", "asp")


def _edited(tmp_path, old, new, src=GHOST):
    text = src.read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "Backbone, [ghostnet_100]",
            "Backbone, [ghostnet100]",
            r"bad.yaml:6: backbone row 0 \(layer 0\): backbone 'ghostnet100' is not known; did you mean 'ghostnet_100'",
        ),
        (
            "Index, [80, 1]",
            "Index, [96, 1]",
            r"bad.yaml:8: backbone row 2 \(layer 2\): declares 96 channels but the source's output 1 has 80",
        ),
        (
            "1, C3, [64, False]",
            "1, C3x, [64, False]",
            r"bad.yaml:\d+: head row 7 \(layer 12\): module 'C3x' is not known; did you mean 'C3'",
        ),
        ("nc: 80", "nc: 80\nactivaton: ReLU", r"bad.yaml:4: unknown key 'activaton'; did you mean 'activation'"),
        ("nc: 80", "nc: 80\nactivation: __import__('os').system('true')", r"bad.yaml:4: activation .* is not allowed"),
        (
            "SPPF, [256, 5]",
            "SPPF, [\"__import__('os')\", 5]",
            r"bad.yaml:10: .* is not a plain name; .*never evaluated",
        ),
        ("[[-1, 2], 1, Concat", "[[-1, 30], 1, Concat", r"head row 2 \(layer 7\): 'from' 30 does not name an earlier"),
    ],
)
def test_validation_errors_name_file_line_and_row(tmp_path, old, new, message):
    path = _edited(tmp_path, old, new)
    with pytest.raises(ModelConfigError, match=message):
        LwdetModel(path, verbose=False)


def test_width_mistake_in_a_later_row_fails_at_build(tmp_path):
    # SPPF takes P5 (160 ch); a neck row that would need other input widths than it gets must not build silently.
    path = _edited(tmp_path, "[[12, 15, 18], 1, Detect, [nc]]", "[[12, 15, 18], 1, Detect, [nc]]")
    assert LwdetModel(path, verbose=False)
    path = _edited(
        tmp_path,
        "  - [-1, 1, Conv, [128, 1, 1]] # 5",
        "  - [-1, 1, Conv, [128, 1, 1]] # 5\n  - [-1, 1, Index, [128, 0]]",
    )
    with pytest.raises(ModelConfigError, match=r"head row 1 \(layer 6\): Index must read a multi-output layer"):
        LwdetModel(path, verbose=False)


def test_activation_key_swaps_the_neck_and_head_activation(tmp_path):
    path = _edited(tmp_path, "nc: 80", "nc: 80\nactivation: ReLU")
    model = LwdetModel(path, verbose=False)
    head = [m for m in model.model if m.type != "Backbone"]
    assert not any(isinstance(x, nn.SiLU) for m in head for x in m.modules())
    assert any(isinstance(x, nn.ReLU) for m in head for x in m.modules())


def test_engine_api_builds_lwdet_yamls():
    from lwdet import YOLO

    model = YOLO(str(GHOST))
    assert isinstance(model.model, LwdetModel)
    assert model.task == "detect"
    assert model.model.model[0].type == "Backbone"


def test_engine_api_reports_yaml_errors_with_lines(tmp_path):
    from lwdet import YOLO

    path = _edited(tmp_path, "Index, [40, 0]", "Index, [41, 0]")
    with pytest.raises(ModelConfigError, match=r"bad.yaml:7: backbone row 1"):
        YOLO(str(path))


def test_load_spec_refuses_a_missing_file(tmp_path):
    with pytest.raises(ModelConfigError, match="model YAML not found"):
        load_spec(tmp_path / "none.yaml")


def test_aspp_shapes_and_batch_of_one_in_training():
    aspp = ASPP(160, 256, rates=(1, 2, 3)).train()
    y = aspp(torch.rand(1, 160, 5, 7))
    assert y.shape == (1, 256, 5, 7)
    y.sum().backward()
