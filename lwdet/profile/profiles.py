"""The ``Profile`` record and what it is measured on: any module, a detector (YAML, weights, run folder or export,
resolved by ``lwdet.artifacts``), a backbone, or the ImageNet classifier a backbone comes from."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from lwdet.artifacts import NCNN_BIN, NCNN_SUFFIX, ONNX_SUFFIX, WEIGHTS_DIR, check_imgsz, parity_file, resolve_source
from lwdet.backbones import BackboneSpec, get_spec
from lwdet.profile.counting import BYTES_PER_ELEMENT, CATEGORIES, measure
from lwdet.reparam import fold_all, fold_timm
from lwdet.units import MB

LOGGER = logging.getLogger(__name__)

CONVENTIONS = {
    "macs": "multiply-adds of Conv2d and Linear (out x C_in/groups x kh x kw; out x in_features); bias, BatchNorm, "
    "activations and element-wise ops not counted (the papers' convention)",
    "gflops": "2 x MACs / 1e9 (the engine's GFLOPs unit)",
    "engine_gflops": "ultralytics get_flops on the same model: also charges BatchNorm and extrapolates from a proxy "
    "input (overcounts size-independent squeeze-excite costs)",
    "memory_access": "ShuffleNetV2 MAC: elements read + written per op (conv/linear: input + output + weights and "
    "bias; element-wise and other data-moving ops: inputs + output); BatchNorm (folded), views and "
    "tensor factories not counted; MB = 1e6 bytes at 4 bytes per element",
    "peak_activation": "largest total size of tensor storages alive at once during one batch-1 eval forward "
    "(input + tensors the forward creates; parameters and buffers excluded; kernel scratch "
    "not included)",
}


@dataclass
class Profile:
    """Everything ``profile_*`` measures; ``to_dict`` / ``save`` give the JSON form."""

    name: str
    kind: str  # "detector" | "classifier" | "backbone" | "model"
    source: str | None
    imgsz: list[int]  # [H, W]
    params: int
    macs: int
    gflops: float  # 2 x macs / 1e9
    engine_gflops: float | None
    memory_access_mb: float
    breakdown: dict[str, dict]  # category -> {"ops", "macs", "memory_access_mb"}
    peak_activation_mb: float
    peak_activation_at: str  # module running when the peak was reached
    weights_mb: dict[str, float]  # {"fp32": params x 4, "fp16": params x 2} in MB
    layers: list[dict] = field(default_factory=list)  # per top-level block
    ops: list[dict] = field(default_factory=list)  # per counted op
    files: list[dict] = field(default_factory=list)  # {"path", "format", "fp16", "bytes"} of what exists
    # counted on the deployed graph: training-time branches folded first (lwdet.reparam); what that changed
    # ({"blocks", "params_trained", "params_deployed"}), empty when the model had none
    reparameterized: dict = field(default_factory=dict)
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, file: str | Path) -> Path:
        file = Path(file)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return file


# --------------------------------------------------------------------------------------------------------- reports
def _groups(model: nn.Module) -> dict[str, nn.Module]:
    """Top-level blocks to report on: root children, with containers of blocks (timm 'blocks', the YAML's rows)
    opened one level."""
    groups = {}
    for name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and any(any(True for _ in c.children()) for c in child):
            groups.update({f"{name}.{k}": c for k, c in child.named_children()})
        else:
            groups[name] = child
    return groups


def _group_of(module: str, names: list[str]) -> str:
    for g in names:
        if module == g or module.startswith(g + "."):
            return g
    return "(root)"


def _type_name(m: nn.Module) -> str:
    """The model YAML's module name of a row ('C3', 'nn.Upsample'), else the class name."""
    row_type = getattr(m, "type", None)  # nn.Module.type is also a method
    return row_type if isinstance(row_type, str) else type(m).__name__


def _mb(elements: int) -> float:
    return elements * BYTES_PER_ELEMENT / MB


def _engine_gflops(model: nn.Module, hw: tuple[int, int]) -> float | None:
    from ultralytics.utils.torch_utils import get_flops

    return get_flops(model, list(hw)) or None  # 0.0 means thop failed


def profile_model(
    model: nn.Module,
    imgsz: int | tuple[int, int],
    *,
    name: str = "model",
    kind: str = "model",
    source: str | None = None,
    engine_gflops: bool = True,
) -> Profile:
    """Profile any module that takes one (1, 3, H, W) image; see the module docstring for what is measured."""
    hw = check_imgsz(imgsz)
    ops, peak, peak_at = measure(model, torch.zeros(1, 3, *hw))
    params = sum(p.numel() for p in model.parameters())
    macs = sum(o.macs for o in ops)
    elements = sum(o.elements for o in ops)
    breakdown = {c: {"ops": 0, "macs": 0, "memory_access_mb": 0.0} for c in CATEGORIES}
    for o in ops:
        b = breakdown[o.category]
        b["ops"] += o.calls
        b["macs"] += o.macs
        b["memory_access_mb"] += _mb(o.elements)
    groups = _groups(model)
    names = sorted(groups, key=len, reverse=True)  # longest prefix wins
    per_group = defaultdict(lambda: [0, 0])
    for o in ops:
        g = per_group[_group_of(o.module, names)]
        g[0] += o.macs
        g[1] += o.elements
    layers = [
        {
            "name": g,
            "type": _type_name(m),
            "params": sum(p.numel() for p in m.parameters()),
            "macs": per_group[g][0],
            "memory_access_mb": _mb(per_group[g][1]),
        }
        for g, m in groups.items()
    ]
    if "(root)" in per_group:  # functional ops in the root's own forward (a classifier's flatten / mean)
        layers.append(
            {
                "name": "(root)",
                "type": "functional",
                "params": 0,
                "macs": per_group["(root)"][0],
                "memory_access_mb": _mb(per_group["(root)"][1]),
            }
        )
    return Profile(
        name=name,
        kind=kind,
        source=source,
        imgsz=list(hw),
        params=params,
        macs=macs,
        gflops=2 * macs / 1e9,
        engine_gflops=_engine_gflops(model, hw) if engine_gflops else None,
        memory_access_mb=_mb(elements),
        breakdown=breakdown,
        peak_activation_mb=peak / MB,
        peak_activation_at=peak_at,
        weights_mb={"fp32": params * 4 / MB, "fp16": params * 2 / MB},
        layers=layers,
        ops=[{**asdict(o), "memory_access_mb": _mb(o.elements)} for o in ops],
    )


# ------------------------------------------------------------------------------------------------------ detectors
def resolve_detector(source: str | Path, nc: int | None = None, trust: bool = False) -> tuple[nn.Module, Path | None]:
    """(detector, weights file or None) from a model YAML, a .pt checkpoint, a run folder (weights/best.pt) or an
    export (a *_ncnn_model folder or a .onnx file, profiled through the weights it was exported from)."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") and (path.is_file() or path.parent == Path(".")):  # or a shipped/engine name
        from lwdet.models import build_model

        return build_model(path, nc=nc, verbose=False), None
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    weights = resolve_source(path).weights
    if nc is not None:
        LOGGER.warning("--nc %d ignored: %s fixes its number of classes", nc, weights)
    from lwdet.checkpoints import load_weights

    model, _ = load_weights(weights, trust=trust)  # a .pt is a pickle: only allow-listed classes unless trusted
    return model, weights


def file_sizes(folder: str | Path) -> list[dict]:
    """Sizes of the weights and exports in ``folder``: .pt, .onnx, ncnn .bin (fp16 read from lwdet's parity report
    where there is one, else guessed from bytes per parameter by the caller)."""
    from lwdet.export import read_parity

    folder = Path(folder)
    found = []
    for p in sorted(folder.iterdir()):
        if p.suffix in (".pt", ONNX_SUFFIX) and p.is_file():
            fmt, file = p.suffix[1:], p
        elif p.is_dir() and p.name.endswith(NCNN_SUFFIX) and (p / NCNN_BIN).is_file():
            fmt, file = "ncnn", p / NCNN_BIN
        else:
            continue
        fp16 = read_parity(p).half if fmt != "pt" and parity_file(p).is_file() else None
        found.append({"path": str(file), "format": fmt, "fp16": fp16, "bytes": file.stat().st_size})
    return found


def _folders_of(source: Path, weights: Path | None) -> list[Path]:
    if source.is_dir() and (source / WEIGHTS_DIR).is_dir():
        return [source / WEIGHTS_DIR]
    if weights is not None:
        return [weights.parent]
    return []


def profile_detector(
    source: str | Path, imgsz: int | tuple[int, int] = 320, nc: int | None = None, trust: bool = False
) -> Profile:
    """Profile a detector from a model YAML, .pt, run folder or export; lists the weights and exports beside it."""
    source = Path(source)
    from lwdet.engine_models import deployed

    model, weights = resolve_detector(source, nc, trust)
    model = deployed(model.float().eval())  # what export runs: a YOLO26 head without its unused branch
    folded = fold_all(model)  # ... and re-parameterized: the counts are the deployed graph's
    hw = check_imgsz(imgsz, int(max(model.stride)))  # lwdet.artifacts: the one input-size rule
    stem = Path(getattr(model, "yaml", {}).get("yaml_file", "") or source).stem
    profile = profile_model(model, hw, name=stem, kind="detector", source=str(source))
    profile.reparameterized = folded
    profile.files = [f for d in _folders_of(source, weights) for f in file_sizes(d)]
    for f in profile.files:  # no parity report: fp16 weights take about half the fp32 bytes
        if f["fp16"] is None and f["format"] != "pt":
            f["fp16"] = f["bytes"] < 0.75 * profile.params * BYTES_PER_ELEMENT
    return profile


# ----------------------------------------------------------------------------------------------------- classifiers
def build_classifier(backbone: str | BackboneSpec, num_classes: int = 1000) -> nn.Module:
    """The full ImageNet classifier that a registered backbone comes from, as its paper describes it (random init);
    re-parameterizable blocks are folded, as the papers count them (deployed)."""
    spec = backbone if isinstance(backbone, BackboneSpec) else get_spec(backbone)
    if spec.source == "timm":
        import timm

        classifier = timm.create_model(spec.model, pretrained=False, num_classes=num_classes).eval()
        fold_timm(classifier)
        return classifier
    import torchvision

    return getattr(torchvision.models, spec.model)(weights=None, num_classes=num_classes)


def profile_classifier(backbone: str | BackboneSpec, imgsz: int = 224, engine_gflops: bool = True) -> Profile:
    """Profile a backbone as its ImageNet classifier (1000 classes), to compare with the paper's numbers."""
    spec = backbone if isinstance(backbone, BackboneSpec) else get_spec(backbone)
    return profile_model(
        build_classifier(spec),
        imgsz,
        name=spec.name,
        kind="classifier",
        source=f"{spec.source}:{spec.model}",
        engine_gflops=engine_gflops,
    )


def profile_backbone(backbone: str, imgsz: int = 320) -> Profile:
    """Profile a backbone as lwdet builds it for a detector (features at strides 8/16/32, no classifier)."""
    from lwdet.backbones import build_backbone

    spec = get_spec(backbone)
    net = build_backbone(backbone).eval()
    folded = fold_all(net)
    profile = profile_model(net, imgsz, name=spec.name, kind="backbone", source=f"{spec.source}:{spec.model}")
    profile.reparameterized = folded
    return profile
