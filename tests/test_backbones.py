import pytest
import torch

from lwdet.backbones import BACKBONES, FAMILIES, STRIDES, build_backbone, get_spec


@pytest.mark.parametrize("name", list(BACKBONES))
def test_outputs_match_declared_channels_and_strides(name):
    net = build_backbone(name).eval()
    with torch.no_grad():
        feats = net(torch.zeros(1, 3, 96, 64))
    assert len(feats) == 3
    assert [f.shape[1] for f in feats] == list(net.channels)
    assert [(96 // f.shape[2], 64 // f.shape[3]) for f in feats] == [(s, s) for s in STRIDES]


def test_every_family_default_is_registered():
    assert set(FAMILIES) == {
        "efficientnet_lite",
        "ghostnet",
        "mnasnet",
        "mobilenetv3",
        "mobilenetv3_small",
        "shufflenetv2",
        "mobilenetv2",
        "repghostnet",
        "lcnet",
        "mobilenetv4",
        "mobileone",
    }
    assert all(name in BACKBONES for name in FAMILIES.values())


def test_unknown_backbone_suggests_a_close_name():
    with pytest.raises(KeyError, match="did you mean 'ghostnet_100'"):
        get_spec("ghostnet100")


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrained weights for backbone 'mnasnet_050' not found"):
        build_backbone("mnasnet_050", pretrained=tmp_path / "nope.pth")


@pytest.mark.parametrize("name", ["mobilenetv2_050", "shufflenetv2_050"])
def test_pretrained_classifier_weights_load(tmp_path, name):
    spec = get_spec(name)
    if spec.source == "timm":
        import timm

        classifier = timm.create_model(spec.model, pretrained=False)
        key, prefix = "conv_stem.weight", "body."
    else:
        import torchvision

        classifier = getattr(torchvision.models, spec.model)(weights=None)
        key, prefix = "conv1.0.weight", ""
    path = tmp_path / "weights.pth"
    torch.save(classifier.state_dict(), path)
    net = build_backbone(name, pretrained=path)
    assert torch.equal(net.state_dict()[prefix + key], classifier.state_dict()[key])


def test_pretrained_weights_of_another_model_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="no tensor name matches"):
        build_backbone("ghostnet_050", pretrained=path)


def test_mobilenetv4_p5_is_tapped_before_its_wide_classifier_layer():
    """timm's last features_only map of MobileNetV4-small is a 1x1 conv to 960 channels; lwdet taps the block before."""
    import timm

    net = build_backbone("mobilenetv4_conv_small")
    assert timm.create_model("mobilenetv4_conv_small", features_only=True).feature_info.channels()[-1] == 960
    assert net.channels == (64, 96, 128) and len(net.body.blocks) == 4  # pruned after the tap: no 960-wide layer
    assert not any(p.shape[0] == 960 for p in net.parameters())


@pytest.mark.parametrize("name", ["mobilenetv4_conv_small_050", "repghostnet_050"])
def test_pretrained_classifier_weights_load_into_tapped_and_rep_backbones(tmp_path, name):
    import timm

    classifier = timm.create_model(name, pretrained=False)
    path = tmp_path / "weights.pth"
    torch.save(classifier.state_dict(), path)
    net = build_backbone(name, pretrained=path)
    key = "conv_stem.weight"
    assert torch.equal(net.state_dict()["body." + key], classifier.state_dict()[key])
